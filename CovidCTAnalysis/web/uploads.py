"""What the browser may open: uploaded files and paths on the server, checked before anything is loaded.

Every refusal is an ``InputError`` with one line the page shows as it is; the server goes on serving.

- An upload is refused above ``max_bytes`` (the page refuses it before sending it; the server checks again), when its
  name does not end in a CT format the package reads, or when SimpleITK cannot read its header. An accepted upload is
  written atomically into a folder of its own under the server's output folder (the name is reduced to its last
  component, so an upload can never be written elsewhere).
- A path typed on the page is resolved (symbolic links and ``..`` included) and must lie inside the ``--data`` folder:
  the server reads nothing outside it.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from ..errors import InputError

#: Uploads above this size are refused (2 GiB and more: put the CT in the data folder and open it by path).
MAX_UPLOAD_BYTES = 1 << 30
#: File names the package reads (io.load_ct); DICOM series and slice folders are opened by path.
CT_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".dcm", ".png", ".jpg", ".jpeg")


def human_size(n_bytes: float) -> str:
    """1536 -> '1.5 KB' (decimal units, as browsers show file sizes)."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if n_bytes < 1000 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "bytes" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1000
    return f"{n_bytes:.1f} GB"  # pragma: no cover


def too_large_message(name: str, size: int, max_bytes: int = MAX_UPLOAD_BYTES) -> str:
    """The page's message for an upload above the limit (the same text on the page and on the server)."""
    return (f"{name}: {human_size(size)} is larger than the upload limit of {human_size(max_bytes)}; "
            f"put the CT in the data folder of the server and open it by path")


def has_ct_suffix(name: str) -> bool:
    return name.lower().endswith(CT_SUFFIXES)


def check_image_header(path: Path) -> None:
    """InputError unless SimpleITK can read the header of ``path`` (a file) as an image; folders are left to the
    analysis (a DICOM series or a slice stack), which reports its own one-line error."""
    if path.is_dir():
        return
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        raise InputError(path.name, "is not an image this app can read (NIfTI, NRRD, MHA, DICOM, PNG or JPEG)") \
            from None


def save_upload(name: str, content: bytes, folder: str | Path, max_bytes: int = MAX_UPLOAD_BYTES) -> Path:
    """Check one uploaded file and write it into a new subfolder of ``folder``; the path written."""
    from ..io.writers import atomic_path

    safe = Path(str(name).replace("\\", "/")).name
    if not safe or safe in (".", ".."):
        raise InputError(None, "the uploaded file has no name")
    if len(content) > max_bytes:
        raise InputError(None, too_large_message(safe, len(content), max_bytes))
    if not has_ct_suffix(safe):
        raise InputError(safe, f"is not a CT file this app reads (a name ending in {', '.join(CT_SUFFIXES)}); "
                               "open DICOM series and slice folders by path")
    target = Path(folder) / uuid.uuid4().hex[:12] / safe
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        Path(tmp).write_bytes(content)
    try:
        check_image_header(target)
    except InputError:
        target.unlink(missing_ok=True)
        target.parent.rmdir()
        raise
    return target


def resolve_data_path(data_dir: str | Path, text: str) -> Path:
    """The existing file or folder ``text`` names (relative to ``data_dir``, or absolute) if it lies inside it."""
    text = (text or "").strip()
    if not text:
        raise InputError(None, "enter the path of a CT file or folder in the data folder")
    root = Path(data_dir).resolve()
    candidate = Path(text).expanduser()
    resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if resolved != root and root not in resolved.parents:
        raise InputError(text, "is outside the server's data folder; only files under it can be opened")
    if not resolved.exists():
        raise InputError(text, "does not exist in the server's data folder")
    if resolved.is_file() and not has_ct_suffix(resolved.name):
        raise InputError(text, f"is not a CT file this app reads (a name ending in {', '.join(CT_SUFFIXES)})")
    check_image_header(resolved)
    return resolved
