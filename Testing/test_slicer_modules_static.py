"""The Slicer scripted modules without Slicer: they compile, their .ui files hold every widget the code uses,
their CMake lists every file, and their logic imports neither Qt nor the Slicer application.

Widget code runs only inside Slicer (its ScriptedLoadableModuleTest and Testing/Python tests cover it there).
"""

from __future__ import annotations

import ast
import importlib
import py_compile
import re
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SLICER_MODULES = REPO / "CovidCTAnalysis" / "SlicerModules"
MODULES = ("CovidCTAnalyze", "CovidCTLungSegmentation", "CovidCTLesionSegmentation", "CovidCTClassifiers")
QT_ONLY = {"qt", "ctk", "slicer.ScriptedLoadableModule", "slicer.util", "slicer.i18n", "PythonQt"}


def _python_files(module: str) -> list[Path]:
    return sorted((SLICER_MODULES / module).rglob("*.py"))


@pytest.mark.parametrize("module", MODULES)
def test_every_python_file_compiles(module, tmp_path):
    files = _python_files(module)
    assert (SLICER_MODULES / module / f"{module}.py") in files
    for path in files:
        py_compile.compile(str(path), cfile=str(tmp_path / "x.pyc"), doraise=True)


@pytest.mark.parametrize("module", MODULES)
def test_module_file_defines_slicer_classes(module):
    """Slicer finds <Module>, <Module>Widget and <Module>Test by name; they derive from the shared bases."""
    tree = ast.parse((SLICER_MODULES / module / f"{module}.py").read_text(encoding="utf-8"))
    classes = {node.name: [ast.unparse(b) for b in node.bases] for node in tree.body if isinstance(node, ast.ClassDef)}
    assert classes[module] == ["CovidCTModule"]
    assert classes[f"{module}Widget"] == ["CovidCTModuleWidget"]
    assert classes[f"{module}Test"] == ["CovidCTModuleTest"]
    assert f"{module}Logic" not in classes or classes[f"{module}Logic"] == ["ScriptedLoadableModuleLogic"]


def _module_class(tree: ast.Module, name: str) -> ast.ClassDef:
    return next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)


def test_widget_base_is_shared_and_module_files_keep_only_what_differs():
    """The widget life cycle (set-up, scene close, parameter binding, the update guard, the timer) lives only in
    CovidCTAnalyzeLib/ModuleWidget.py; no module file defines those methods again or patches sys.path itself."""
    shared = {"setup", "cleanup", "enter", "onSceneStartClose", "onSceneEndClose", "initializeParameterNode",
              "updateGuiFromParameters", "onGuiChanged", "onTimer", "runTest", "setUp"}
    for module in MODULES:
        text = (SLICER_MODULES / module / f"{module}.py").read_text(encoding="utf-8")
        tree = ast.parse(text)
        for name in (f"{module}Widget", f"{module}Test"):
            defined = {n.name for n in _module_class(tree, name).body if isinstance(n, ast.FunctionDef)}
            assert not defined & shared, f"{module}.{name} redefines {sorted(defined & shared)}"
        assert "sys.path" not in text and "_updating" not in text and "QTimer" not in text
    base = (SLICER_MODULES / "CovidCTAnalyze" / "CovidCTAnalyzeLib" / "ModuleWidget.py").read_text(encoding="utf-8")
    assert "sys.path.insert" in base and "class CovidCTModuleWidget" in base


def test_module_help_is_the_first_paragraph_of_the_module_docstring():
    for module in MODULES:
        doc = ast.get_docstring(ast.parse((SLICER_MODULES / module / f"{module}.py").read_text(encoding="utf-8")))
        summary = doc.split("\n\n")[0]
        assert summary.startswith("COVID-19 CT ") and len(summary) > 100, module


def _ui_names(module: str) -> tuple[ET.Element, set[str]]:
    root = ET.parse(SLICER_MODULES / module / "Resources" / "UI" / f"{module}.ui").getroot()
    names = {e.get("name") for e in root.iter() if e.tag in ("widget", "layout") and e.get("name")}
    return root, names


@pytest.mark.parametrize("module", MODULES)
def test_ui_file_has_every_widget_the_code_uses(module):
    root, names = _ui_names(module)
    top = root.find("widget")
    assert root.findtext("class") == module and top.get("class") == "qMRMLWidget" and top.get("name") == module
    used = set(re.findall(r"self\.ui\.(\w+)", (SLICER_MODULES / module / f"{module}.py").read_text(encoding="utf-8")))
    assert used, "the widget uses no element of its .ui file"
    assert used <= names, f"missing in {module}.ui: {sorted(used - names)}"


@pytest.mark.parametrize("module", MODULES)
def test_ui_custom_widgets_are_declared_and_selectors_get_the_scene(module):
    root, _ = _ui_names(module)
    declared = {c.findtext("class") for c in root.iter("customwidget")}
    qt_classes = {"QWidget", "QLabel", "QPushButton", "QComboBox", "QCheckBox", "QProgressBar", "QListWidget",
                  "QTableWidget", "QLineEdit"}
    used = {w.get("class") for w in root.iter("widget")}
    assert used - qt_classes <= declared
    selectors = {w.get("name") for w in root.iter("widget") if w.get("class") == "qMRMLNodeComboBox"}
    connected = {c.findtext("receiver") for c in root.iter("connection")
                 if c.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)"}
    assert selectors and selectors <= connected


def _cmake_list(text: str, variable: str) -> list[str]:
    block = re.search(rf"set\({variable}\s+(.*?)\)", text, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]


@pytest.mark.parametrize("module", MODULES)
def test_cmake_lists_every_script_and_resource(module):
    text = (SLICER_MODULES / module / "CMakeLists.txt").read_text(encoding="utf-8")
    assert re.search(rf"set\(MODULE_NAME {module}\)", text)
    assert "slicerMacroBuildScriptedModule" in text and "WITH_GENERIC_TESTS" in text
    listed = {s.replace("${MODULE_NAME}", module) for s in _cmake_list(text, "MODULE_PYTHON_SCRIPTS")}
    actual = {str(p.relative_to(SLICER_MODULES / module)) for p in _python_files(module) if "Testing" not in p.parts}
    assert listed == actual
    for resource in _cmake_list(text, "MODULE_PYTHON_RESOURCES"):
        assert (SLICER_MODULES / module / resource.replace("${MODULE_NAME}", module)).is_file(), resource
    for test in (SLICER_MODULES / module / "Testing" / "Python").glob("*Test.py"):
        cmake = (test.parent / "CMakeLists.txt").read_text(encoding="utf-8")
        assert test.name.replace(module, "${MODULE_NAME}") in cmake


def test_extension_adds_every_module():
    text = (REPO / "CMakeLists.txt").read_text(encoding="utf-8")
    folder = re.search(r"set\(_slicer_modules_dir (\S+)\)", text).group(1)
    assert REPO / folder == SLICER_MODULES
    added = re.findall(r"^add_subdirectory\(\$\{_slicer_modules_dir\}/(\w+)\)", text, re.M)
    assert sorted(added) == sorted(MODULES)
    assert re.search(r'set\(EXTENSION_DEPENDS "PyTorch"\)', text)


def test_extension_icon_and_screenshot_are_in_the_repository():
    """The extension catalogue shows EXTENSION_ICONURL and EXTENSION_SCREENSHOTURLS, raw files of the main branch:
    each must be a file of this repository (the icon a 128 x 128 PNG, as the catalogue asks)."""
    from PIL import Image

    text = (REPO / "CMakeLists.txt").read_text(encoding="utf-8")
    urls = re.search(r'set\(EXTENSION_ICONURL "([^"]+)"\)', text).group(1), \
        *re.search(r'set\(EXTENSION_SCREENSHOTURLS "([^"]+)"\)', text).group(1).split()
    for url in urls:
        path = REPO / url.split("/main/", 1)[1]
        assert path.is_file(), f"{url} names {path.relative_to(REPO)}, which is not in the repository"
        assert Image.open(path).format == "PNG", url
    assert Image.open(REPO / urls[0].split("/main/", 1)[1]).size == (128, 128)


def test_analyze_module_ships_the_package_without_the_modules_and_its_resources():
    text = (SLICER_MODULES / "CovidCTAnalyze" / "CMakeLists.txt").read_text(encoding="utf-8")
    assert "${PROJECT_SOURCE_DIR}/CovidCTAnalysis" in text and "Models" in text and "Terminology" in text
    assert 'EXCLUDE REGEX "^SlicerModules/"' in text and 'PATTERN "SlicerModules" EXCLUDE' in text
    assert (REPO / "Resources" / "Terminology").is_dir() and (REPO / "Resources" / "Models" / "registry.json").is_file()


def test_the_installed_package_leaves_the_slicer_modules_out():
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert setuptools["packages"]["find"]["exclude"] == ["CovidCTAnalysis.SlicerModules*"]
    assert not (SLICER_MODULES / "__init__.py").exists()


def test_repository_root_holds_only_the_extension_layout():
    """CovidCTAnalysis/, Resources/, Testing/, scripts/, CMakeLists.txt, README.md, plus packaging, docs and CI."""
    import subprocess

    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout: the tracked files cannot be listed")
    top = {line.split("/")[0] for line in tracked.stdout.splitlines() if line}
    assert top <= {"CovidCTAnalysis", "Resources", "Testing", "scripts", "CMakeLists.txt", "README.md",
                   "pyproject.toml", "docs", ".ci", ".gitignore", "LICENSE"}, sorted(top)


def _module_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:  # module level only: imports inside functions run at first use
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


#: the one Lib file that is Slicer GUI code: the widget base every module shares
WIDGET_BASE = "ModuleWidget.py"


def _logic_files(module: str) -> list[Path]:
    return sorted(p for p in (SLICER_MODULES / module / f"{module}Lib").glob("*.py") if p.name != WIDGET_BASE)


@pytest.mark.parametrize("module", MODULES)
def test_logic_libraries_import_no_qt_and_no_slicer_application(module):
    for path in _logic_files(module):
        imports = _module_imports(path)
        assert not imports & QT_ONLY, f"{path.name} imports {sorted(imports & QT_ONLY)}"
        assert "slicer" not in imports, f"{path.name} imports slicer at module level"


@pytest.mark.parametrize("module", MODULES)
def test_logic_libraries_import_in_plain_python(module, monkeypatch):
    pytest.importorskip("slicer")
    monkeypatch.syspath_prepend(str(SLICER_MODULES / module))
    for path in _logic_files(module):
        name = f"{module}Lib" if path.stem == "__init__" else f"{module}Lib.{path.stem}"
        importlib.import_module(name)
    for name in [n for n in sys.modules if n.startswith(f"{module}Lib")]:
        monkeypatch.delitem(sys.modules, name)


def test_package_adapter_has_no_qt_and_no_slicer_application():
    for path in sorted((REPO / "CovidCTAnalysis" / "mrml").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not imported & QT_ONLY, f"{path.name} imports {sorted(imported & QT_ONLY)}"
        application = {f"slicer.{n.attr}" for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                       and isinstance(n.value, ast.Name) and n.value.id == "slicer"
                       and n.attr in ("app", "util", "mrmlScene", "modules")}
        assert not application, f"{path.name} uses {sorted(application)}"


def test_slicer_requirements_are_the_package_dependencies_without_torch():
    sys.path.insert(0, str(SLICER_MODULES / "CovidCTAnalyze"))
    try:
        from CovidCTAnalyzeLib.Dependencies import import_name, requirements
    finally:
        sys.path.remove(str(SLICER_MODULES / "CovidCTAnalyze"))
    declared = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    assert sorted(requirements()) == sorted(d for d in declared if not d.startswith("torch"))
    assert import_name("scikit-image>=0.21") == "skimage" and import_name("pillow>=10") == "PIL"


def test_icons_are_png_images():
    for module in MODULES:
        data = (SLICER_MODULES / module / "Resources" / "Icons" / f"{module}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
