"""Nothing that Slicer 5.8's Python 3.9 imports evaluates a Python 3.10+ type union (``Path | None``) at import time.

Under ``from __future__ import annotations`` annotations stay strings and may use ``X | None``; everything else that
runs when a module is imported (type aliases, default values, ``isinstance`` arguments, annotations of a module without
that import) must spell unions with ``typing.Optional`` / ``typing.Union``. The scan covers the package (the command
line and the pipeline run in Slicer's Python too), the scripted modules and the scripts; the import check under real
Python 3.9 and 3.12 is ``Testing/PythonVersions/check_imports.py`` (README: the last test command).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("CovidCTAnalysis", "scripts", "Testing")
BUILTIN_TYPES = {"int", "float", "str", "bytes", "bool", "complex", "list", "dict", "tuple", "set", "frozenset",
                 "type", "object"}


def _is_type(node: ast.AST, classes: set[str]) -> bool:
    """Whether an operand of ``|`` names a type: None, a builtin or CamelCase class, a generic alias, typing.X."""
    if isinstance(node, ast.Constant):
        return node.value is None
    if isinstance(node, ast.Name):
        name = node.id
        return name in BUILTIN_TYPES or name in classes or (name[:1].isupper() and not name.isupper())
    if isinstance(node, ast.Subscript):
        return _is_type(node.value, classes)
    if isinstance(node, ast.Attribute):
        return isinstance(node.value, ast.Name) and node.value.id in ("typing", "abc", "pathlib")
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _is_type(node.left, classes) and _is_type(node.right, classes)
    return False


def _annotations(tree: ast.AST):
    """Every annotation evaluated at import time when annotations are not postponed (function-local ones never are)."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
                if arg is not None and arg.annotation is not None:
                    yield arg.annotation
            if node.returns is not None:
                yield node.returns
        elif isinstance(node, ast.AnnAssign):
            yield node.annotation


def runtime_unions(source: str) -> list[tuple[int, str]]:
    """[(line, expression)] of the ``X | Y`` type unions that Python evaluates when the module is imported."""
    tree = ast.parse(source)
    postponed = any(isinstance(n, ast.ImportFrom) and n.module == "__future__"
                    and any(a.name == "annotations" for a in n.names) for n in tree.body)
    classes = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    in_annotation: set[int] = set()
    found = []
    for annotation in _annotations(tree):
        unions = [n for n in ast.walk(annotation) if isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr)]
        in_annotation |= {id(n) for n in ast.walk(annotation)}
        if not postponed and unions:
            found.append((annotation.lineno, ast.unparse(annotation)))
    for node in ast.walk(tree):
        if (id(node) not in in_annotation and isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr)
                and _is_type(node.left, classes) and _is_type(node.right, classes)):
            found.append((node.lineno, ast.unparse(node)))
    return sorted(set(found))


def _python_files() -> list[Path]:
    return sorted(p for folder in SCANNED for p in (REPO / folder).rglob("*.py") if "__pycache__" not in p.parts)


def test_no_type_union_is_evaluated_at_import_time():
    offenders = [f"{path.relative_to(REPO)}:{line}: {text}" for path in _python_files()
                 for line, text in runtime_unions(path.read_text(encoding="utf-8"))]
    assert not offenders, "Python 3.9 cannot evaluate these (use typing.Optional/Union):\n" + "\n".join(offenders)


@pytest.mark.parametrize("source, expected", [
    ("from pathlib import Path\nfrom typing import Callable\nA = Callable[[Path | None], int]\n", [(3, "Path | None")]),
    ("def f(x: int | None = None): pass\n", [(1, "int | None")]),
    ("from __future__ import annotations\ndef f(x: int | None = None) -> list[str] | None: pass\n", []),
    ("from __future__ import annotations\nx = isinstance(3, int | float)\n", [(2, "int | float")]),
    ("class A: pass\nclass B: pass\nT = dict[str, A | B]\n", [(3, "A | B")]),
    ("from __future__ import annotations\nclass C:\n    v: float | None = None\n", []),
    ("FLAGS = READ | WRITE\nmask = a | b\nflags = qt.Qt.ItemIsEnabled | qt.Qt.ItemIsUserCheckable\n", []),
])
def test_the_scan_finds_runtime_unions_and_only_those(source, expected):
    assert runtime_unions(source) == expected
