#!/usr/bin/env bash
# Every scripted module, its Lib and the package import under the Pythons 3D Slicer ships: 3.9 (Slicer 5.8) and
# 3.12 (Slicer 5.10). One virtual environment per version (.venv-py3.9, .venv-py3.12 at the repository root) with
# the packages the import check needs from PyPI; then Testing/PythonVersions/check_imports.py (see its docstring).
# A version whose interpreter cannot be found fails the check: name it with PYTHON3_9=/path or PYTHON3_12=/path.
set -euo pipefail
cd "$(dirname "$0")/../.."
status=0
for version in 3.9 3.12; do
  variable="PYTHON${version/./_}"
  python="${!variable:-python$version}"
  if ! "$python" -c "" 2>/dev/null && command -v pyenv >/dev/null; then
    # an interpreter that pyenv manages but does not put on PATH
    found=$(pyenv versions --bare | grep -E "^${version//./\\.}\.[0-9]+$" | tail -n 1 || true)
    [ -n "$found" ] && python="$(pyenv root)/versions/$found/bin/python$version"
  fi
  if ! "$python" -c "" 2>/dev/null; then
    echo "check.sh: no Python $version interpreter found (set $variable=/path/to/python$version)" >&2
    exit 2
  fi
  venv=".venv-py$version"
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check numpy SimpleITK vtk scipy scikit-image pillow
  "$venv/bin/python" Testing/PythonVersions/check_imports.py || status=1
done
exit $status
