"""Shared fixtures: the generated demo CT and the real data folder (skipped when absent)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("COVIDCT_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (or $COVIDCT_DATA); tests that need it skip with the reason when it is absent."""
    if not DATA.is_dir():
        pytest.skip(f"real data folder {DATA} is absent (developers and CI have it; a fresh clone does not)")
    return DATA


def sha256_tree(path: Path) -> str:
    """Hash of a file or of every file below a folder, to prove inputs are left unchanged."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        h.update(str(f.relative_to(path if path.is_dir() else path.parent)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()
