"""Python requirements inside 3D Slicer, installed at first use (never when a module is imported).

torch comes from the PyTorch extension (PyTorchUtils: it picks the build that matches the machine's CUDA); the
other requirements are listed in Resources/requirements.txt (the package's dependencies without torch) and are
pip-installed into Slicer's Python after the user agrees. The background process (PythonSlicer) uses the same
site-packages, so what is installed here is what the analysis runs with.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

REQUIREMENTS_FILE = Path(__file__).resolve().parent.parent / "Resources" / "requirements.txt"
#: pip name -> import name, where they differ
IMPORT_NAMES = {"scikit-image": "skimage", "scikit-learn": "sklearn", "pillow": "PIL", "SimpleITK": "SimpleITK"}


def requirements(path: Path = REQUIREMENTS_FILE) -> list[str]:
    """The requirement lines (comments and blank lines dropped)."""
    lines = [line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line]


def import_name(requirement: str) -> str:
    name = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]
    return IMPORT_NAMES.get(name, name.replace("-", "_"))


def missing_requirements(path: Path = REQUIREMENTS_FILE) -> list[str]:
    """Requirements whose package cannot be imported in this Python."""
    return [r for r in requirements(path) if importlib.util.find_spec(import_name(r)) is None]


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def ensure_dependencies(need_torch: bool) -> bool:
    """Install what is missing after asking the user (Slicer only); False when the user declined or it failed."""
    import slicer

    missing = missing_requirements()
    # monai depends on torch: without torch installed first, pip would pull a generic torch build from PyPI
    need_torch = need_torch or any(import_name(r) == "monai" for r in missing)
    if need_torch and not torch_available():
        try:
            import PyTorchUtils
        except ImportError:
            slicer.util.errorDisplay("The classifiers need PyTorch: install the 'PyTorch' extension with the "
                                     "Extensions Manager, restart Slicer and try again.")
            return False
        torch = PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=True)
        if torch is None:
            return False
    if not missing:
        return True
    if not slicer.util.confirmOkCancelDisplay(
            "COVID-19 CT analysis needs these Python packages, which will be installed now:\n"
            + "\n".join(missing), "Install Python packages"):
        return False
    try:
        slicer.util.pip_install(missing)
    except Exception as exc:  # noqa: BLE001 - pip's failure, shown in one message box
        slicer.util.errorDisplay(f"Installing Python packages failed: {exc}")
        return False
    return True
