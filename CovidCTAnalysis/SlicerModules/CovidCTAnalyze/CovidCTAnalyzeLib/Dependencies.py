"""Python requirements inside 3D Slicer, installed at first use (never when a module is imported).

``ensure_dependencies(need_torch)`` works out what is missing or too old (``install_plan``), asks once with the whole
list, then installs:

- PyTorch through the PyTorch extension (PyTorchUtils picks the build that matches the machine's CUDA driver, or the
  CPU build), at least ``TORCH_MINIMUM``, and before monai, which would otherwise pull a generic build from PyPI;
- the other requirements of ``Resources/requirements.txt`` (the package's dependencies without torch, each with its
  version floor) with pip; monai and captum, which build on PyTorch, only when PyTorch is needed;
- and, when a package that this Slicer session had already imported was upgraded, offers a restart (Python cannot
  reload a compiled extension module).

Only lungs-classic and the lesion pseudo-mask run without PyTorch; every other model needs it. The background process
(PythonSlicer) uses the same site-packages, so what is installed here is what the analysis runs with. Everything but
``ensure_dependencies`` is plain Python, tested without Slicer.
"""

import importlib.util
import re
import sys
from pathlib import Path

REQUIREMENTS_FILE = Path(__file__).resolve().parent.parent / "Resources" / "requirements.txt"
#: the oldest PyTorch the package supports (pyproject.toml: torch>=2.1)
TORCH_MINIMUM = "2.1"
#: requirements built on PyTorch: installed only for the models that need PyTorch (never for lungs-classic)
NEEDS_TORCH = {"monai", "captum"}
#: pip name -> import name, where they differ
IMPORT_NAMES = {"scikit-image": "skimage", "scikit-learn": "sklearn", "pillow": "PIL", "SimpleITK": "SimpleITK"}


def requirements(path: Path = REQUIREMENTS_FILE) -> list:
    """The requirement lines (comments and blank lines dropped)."""
    lines = [line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line]


def split_requirement(requirement: str) -> tuple:
    """('scikit-image', '0.21') for 'scikit-image>=0.21'; the floor is None without a '>=' clause."""
    name = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]
    floor = re.search(r">=\s*([0-9][0-9A-Za-z.]*)", requirement)
    return name, floor.group(1) if floor else None


def import_name(requirement: str) -> str:
    name = split_requirement(requirement)[0]
    return IMPORT_NAMES.get(name, name.replace("-", "_"))


def version_tuple(text: str) -> tuple:
    """(2, 1, 0) for '2.1.0+cu121': the leading numbers, enough to compare with a floor."""
    numbers = re.match(r"\d+(\.\d+)*", text.strip())
    return tuple(int(n) for n in numbers.group(0).split(".")) if numbers else ()


def installed_version(distribution: str, module: str):
    """The installed version of a distribution; '' when installed but its version is unknown; None when absent."""
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "" if importlib.util.find_spec(module) is not None else None


def unmet(requirement: str, version) -> bool:
    """Whether a requirement is not met by the installed ``version`` (None: absent; '': unknown, accepted)."""
    _, floor = split_requirement(requirement)
    if version is None:
        return True
    return bool(version and floor and version_tuple(version) < version_tuple(floor))


def missing_requirements(path: Path = REQUIREMENTS_FILE, need_torch: bool = True) -> list:
    """Requirements whose package is absent or older than the requirement's floor (without ``need_torch``: only those
    that do not build on PyTorch)."""
    wanted = [r for r in requirements(path) if need_torch or split_requirement(r)[0] not in NEEDS_TORCH]
    return [r for r in wanted if unmet(r, installed_version(split_requirement(r)[0], import_name(r)))]


def torch_missing() -> bool:
    """Whether PyTorch is absent or older than ``TORCH_MINIMUM``."""
    return unmet(f"torch>={TORCH_MINIMUM}", installed_version("torch", "torch"))


def missing_packages(need_torch: bool) -> list:
    """Names of what is missing or too old (self-tests skip with this list)."""
    names = [split_requirement(r)[0] for r in missing_requirements(need_torch=need_torch)]
    return (["torch"] if need_torch and torch_missing() else []) + names


def install_plan(need_torch: bool) -> list:
    """One line per thing ``ensure_dependencies`` would install, PyTorch first."""
    # monai and captum depend on torch: without torch installed first, pip would pull a generic build from PyPI
    missing = missing_requirements(need_torch=need_torch)
    plan = [f"torch>={TORCH_MINIMUM} (through the PyTorch extension: the build for this computer's GPU, or the CPU)"]
    return (plan if need_torch and torch_missing() else []) + missing


def needs_restart(requirements_installed) -> list:
    """The installed requirements whose module this session had imported already: new code loads after a restart."""
    return [r for r in requirements_installed if import_name(r).split(".")[0] in sys.modules]


def ensure_dependencies(need_torch: bool) -> bool:
    """Install what is missing after one confirmation (Slicer only); False when declined, failed or restarting."""
    import slicer

    plan = install_plan(need_torch)
    if not plan:
        return True
    with_torch = plan[0].startswith("torch")
    if with_torch:
        try:
            import PyTorchUtils
        except ImportError:
            slicer.util.errorDisplay("This needs PyTorch: install the 'PyTorch' extension with the Extensions Manager, "
                                     "restart Slicer and try again.")
            return False
    if not slicer.util.confirmOkCancelDisplay(
            "COVID-19 CT analysis needs these Python packages, which will be installed now (this may take several "
            "minutes):\n\n" + "\n".join(plan), "Install Python packages"):
        return False
    torch_was_loaded = "torch" in sys.modules
    try:
        if with_torch:
            torch = PyTorchUtils.PyTorchUtilsLogic().installTorch(
                askConfirmation=False, torchVersionRequirement=f">={TORCH_MINIMUM}")
            if torch is None:
                slicer.util.errorDisplay(f"PyTorch {TORCH_MINIMUM} or newer could not be installed.")
                return False
        others = [line for line in plan if not line.startswith("torch")]
        if others:
            slicer.util.pip_install(others)
    except Exception as exc:  # noqa: BLE001 - pip's failure, shown in one message box
        slicer.util.errorDisplay(f"Installing Python packages failed: {exc}")
        return False
    stale = needs_restart(others) + (["torch"] if with_torch and torch_was_loaded else [])
    if stale:
        if slicer.util.confirmOkCancelDisplay(
                "These packages were upgraded while an older version was in use: " + ", ".join(stale)
                + ".\nRestart 3D Slicer now to use them?", "Restart needed"):
            slicer.util.restart()
        return False
    return True
