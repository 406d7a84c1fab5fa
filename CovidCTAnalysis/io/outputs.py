"""Checks on an output path, done by the front ends before any work (CONTRACTS: bad usage -> exit 2, no output).

Decisions:
- an output equal to an input, or inside an input *folder* (a DICOM series or slice stack), is refused: writing
  there would change the input (and make the folder "mixed" next time). An output folder that merely *contains* an
  input (``covidct analyze data/ct.nii.gz -o data``) is allowed: only new, named files are written.
- writability is probed for real (a temporary file created and removed in the nearest existing folder), because
  permission bits lie for root and for read-only mounts.
- the output folder itself is not created here; the writers create missing folders.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError
from .sniff import compound_suffix
from .volume import CTVolume
from .writers import LABEL_EXTENSIONS


def output_format(path: str | Path) -> str:
    """The output format implied by the extension: "nifti", "nrrd", "seg.nrrd", "mha", "png", "csv" or ""."""
    ext = compound_suffix(path)
    return {".nii.gz": "nifti", ".nii": "nifti", ".nrrd": "nrrd", ".seg.nrrd": "seg.nrrd", ".mha": "mha",
            ".png": "png", ".csv": "csv"}.get(ext, "")


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists():
        if p.parent == p:
            break
        p = p.parent
    return p


def _probe_writable(out: Path, folder: Path) -> None:
    if not folder.is_dir():
        raise InputError(out, f"cannot be created: {folder} is a file, not a folder")
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=".covidct-write-test-")
    except OSError as e:
        raise InputError(out, f"cannot be written: no permission to write in {folder} "
                              f"({e.strerror or e})") from None
    os.close(fd)
    os.unlink(name)


def _resolved(path: Path) -> Path:
    """``path.resolve()``, or an InputError for a symbolic link loop (RuntimeError up to Python 3.12, OSError after)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError) as e:
        raise InputError(path, f"cannot be resolved: {getattr(e, 'strerror', None) or 'a symbolic link loop'}") \
            from None


def check_output_path(out: str | Path, inputs: Sequence[str | Path], *, expect: str = "file",
                      extensions: Sequence[str] = LABEL_EXTENSIONS) -> Path:
    """Refuse an output path that cannot or must not be written; return it resolved.

    expect: "file" (segment-lungs/-lesions OUT, classify OUT.csv) or "dir" (analyze -o OUTDIR).
    extensions: allowed extensions for a file (default: label-map formats; e.g. (".csv",) for classify).
    Raises InputError for: an unknown extension, an existing folder where a file is expected (or a file where a
    folder is expected), an output equal to or inside an input folder, an output equal to an input file, and a
    location that cannot be created or written.
    """
    if expect not in ("file", "dir"):
        raise ValueError("expect must be 'file' or 'dir'")
    out = Path(out).expanduser()
    resolved = _resolved(out)
    if expect == "file":
        if resolved.is_dir():
            raise InputError(out, "is an existing folder, but a file name is expected (e.g. "
                                  f"{Path(out.name or 'result').stem}{extensions[0]})")
        ext = compound_suffix(out)
        if ext not in extensions:
            raise InputError(out, f"has an unknown output extension ({ext or 'none'}); use one of "
                                  f"{', '.join(extensions)}")
    elif resolved.exists() and not resolved.is_dir():
        raise InputError(out, "exists and is a file, but a folder for the results is expected")
    for given in inputs:
        inp = _resolved(Path(given).expanduser())
        if resolved == inp:
            raise InputError(out, "is the input itself; writing there would overwrite the input")
        if inp.is_dir() and resolved.is_relative_to(inp):
            raise InputError(out, f"lies inside the input folder {given}; writing there would change the input")
    folder = resolved if (expect == "dir" and resolved.is_dir()) else _nearest_existing(
        resolved if expect == "dir" else resolved.parent)
    _probe_writable(out, folder)
    return resolved


def check_output_for(out: str | Path, ct: CTVolume) -> None:
    """After ``load_ct``, before any work: a .png output needs a single-slice input (CONTRACTS: .png for 2-D input)."""
    slices = ct.input_size[2] if ct.input_dimension == 3 else 1
    if output_format(out) == "png" and slices != 1:
        raise InputError(out, f"a .png output needs a single-slice input, but {ct.source} has {slices} slices; "
                              "use .nii.gz, .nrrd or .seg.nrrd")
