"""2-D PNG/JPEG slices and folders of them (stacks): 8-bit display values -> grayscale -> approximate HU.

Such images carry no HU and no geometry (docs/DESIGN.md "Data representation"). Choices, none of which a seed paper
fixes:

Grayscale. L is used as is. RGB (and P, CMYK, YCbCr via RGB) become luminance with the ITU-R 601-2 weights
L = 0.299 R + 0.587 G + 0.114 B (Pillow's ``convert("L")``); CT figures are gray, so R = G = B and nothing changes
except coloured annotations (arrows, text), which a note reports. Alpha (LA, RGBA, PA, P with transparency) is
composited over black: a transparent pixel is shown as black by viewers and black is air in a lung window. In the
COVID-CT set every RGBA image is fully opaque (alpha 255), so this changes nothing there. EXIF orientation is applied
(viewers apply it; all COVID-CT files have orientation 1 or none). 1-bit images (masks) and 16-bit images (not
display values) are refused.

HU. ``HU = level - width/2 + v/255 * width`` with the assumed lung window width 1500, level -600 (v = 0 -> -1350 HU,
v = 255 -> 150 HU), overridable by ``window``. Values outside the window were clipped by whoever made the figure, so
the mapping is only approximate; results computed from it are marked ``display_windowed``.

Geometry. Rows run anterior -> posterior and columns patient right -> left (radiological display, checked on the
Radiopaedia stacks: liver on the image left), which is the canonical LPS grid directly: x = column, y = row.
Default spacing: in-plane 350 mm / image width (a typical adult chest display field of view, so lungs get a
plausible size whatever the figure's resolution), 5 mm between slices; ``spacing`` overrides both.

Stacks. Files sort numerically by name (``natural_key``: 1, 2, ..., 10). File 1 (lowest number) is taken as the most
SUPERIOR slice: looking at the first, quarter, middle, three-quarter and last slice of all 9 Radiopaedia stacks
(74560, 74576, 74867, 74880, 74887, 75329, 75329_2, 75330, 75349), every one starts at the neck / lung apices and ends
in the abdomen or pelvis. The input grid of a stack is therefore (width, height, n) with direction diag(1, 1, -1)
(z index grows toward the feet), and the canonical grid flips it. All slices must have the same size (checked from
the headers before decoding, naming the odd file).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InputError
from . import validate
from .sniff import natural_key

DEFAULT_WINDOW = (1500.0, -600.0)  # (width, level) of a lung window
DEFAULT_FOV_MM = 350.0
DEFAULT_SLICE_MM = 5.0
ACCEPTED_FORMATS = ("PNG", "JPEG", "MPO")
COLOUR_DIFFERENCE = 30  # channel spread (0-255) above which a pixel counts as coloured (annotation)


def _open(path: Path) -> Image.Image:
    try:
        im = Image.open(path)
    except UnidentifiedImageError:
        raise InputError(path, "is not a readable PNG or JPEG image") from None
    except Image.DecompressionBombError:
        raise InputError(path, f"declares an image beyond the limit of {validate.MAX_AXIS} pixels per axis "
                               "(corrupt header?)") from None
    except OSError as e:
        raise InputError(path, f"cannot be read: {e.strerror or e}") from None
    if im.format not in ACCEPTED_FORMATS:
        fmt = im.format
        im.close()
        raise InputError(path, f"is a {fmt} image; only PNG and JPEG slices are accepted")
    return im


def header_size(path: Path) -> tuple[int, int]:
    """(width, height) from the header, without decoding pixels; sizes are checked here."""
    with _open(path) as im:
        size = im.size
    validate.check_size(path, (size[0], size[1], 1))
    return size


def read_gray(path: Path) -> tuple[np.ndarray, list[str]]:
    """8-bit grayscale array (rows, columns) of one slice image and notes on the conversion."""
    notes: list[str] = []
    with _open(path) as im:
        validate.check_size(path, (im.size[0], im.size[1], 1))
        if getattr(im, "n_frames", 1) > 1:
            notes.append(f"{path.name}: {im.n_frames} frames; the first is used")
        try:
            im.seek(0)
            im = ImageOps.exif_transpose(im)
            im.load()
        except (OSError, SyntaxError, ValueError) as e:
            raise InputError(path, f"is a damaged or truncated image ({e})") from None
        mode = im.mode
        if mode == "1":
            raise InputError(path, "is a 1-bit black-and-white image (a mask?), not a CT slice")
        if mode in ("I", "I;16", "I;16B", "I;16L", "F"):
            raise InputError(path, f"is a {mode} image (16/32-bit), not 8-bit display values; give the CT as "
                                   "DICOM or NIfTI in HU instead")
        if mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif mode == "PA":
            im = im.convert("RGBA")
        elif mode in ("CMYK", "YCbCr"):
            im = im.convert("RGB")
        mode = im.mode
        if mode not in ("L", "LA", "RGB", "RGBA"):
            raise InputError(path, f"has an unsupported colour mode {mode}")
        alpha = None
        if mode in ("LA", "RGBA"):
            alpha = np.asarray(im.getchannel("A"), dtype=np.float32)
        if mode in ("RGB", "RGBA"):
            rgb = np.asarray(im.convert("RGB"))
            spread = rgb.max(axis=2).astype(np.int16) - rgb.min(axis=2)
            coloured = float(np.mean(spread > COLOUR_DIFFERENCE))
            if coloured > 0:
                notes.append(f"{path.name}: {coloured:.1%} coloured pixels (annotations?) taken as luminance")
            gray = np.asarray(im.convert("RGB").convert("L"))
        else:
            gray = np.asarray(im.getchannel("L"))
    if alpha is not None and np.any(alpha < 255):
        gray = np.rint(gray.astype(np.float32) * (alpha / 255.0)).astype(np.uint8)
        notes.append(f"{path.name}: transparent pixels composited over black")
    return np.ascontiguousarray(gray, dtype=np.uint8), notes


def display_to_hu(values: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """8-bit display values -> approximate HU through a (width, level) window, float32."""
    width, level = window
    lut = (level - width / 2.0 + np.arange(256, dtype=np.float64) / 255.0 * width).astype(np.float32)
    return lut[values]


def default_spacing(width: int, spacing: Sequence[float] | None) -> tuple[tuple[float, float, float], str]:
    if spacing is not None:
        return (float(spacing[0]), float(spacing[1]), float(spacing[2])), "stated spacing"
    s = DEFAULT_FOV_MM / width
    return (s, s, DEFAULT_SLICE_MM), (f"assumed spacing {s:.3g} x {s:.3g} x {DEFAULT_SLICE_MM:g} mm "
                                      f"({DEFAULT_FOV_MM:g} mm field of view, {DEFAULT_SLICE_MM:g} mm slices)")


def order_stack(files: Sequence[Path]) -> list[Path]:
    """Numeric name order; two names with the same number (1.png, 01.png) make the order ambiguous."""
    ordered = sorted(files, key=_name_key)
    keys = [_name_key(p) for p in ordered]
    for a, b, ka, kb in zip(ordered, ordered[1:], keys, keys[1:]):
        if ka == kb:
            raise InputError(b, f"has the same slice number as {a.name}; the order of the stack is ambiguous")
    return ordered


def _name_key(path: Path) -> tuple:
    return natural_key(Path(path.name).stem)


def read_stack(folder: Path, files: Sequence[Path]) -> tuple[np.ndarray, list[str], list[Path]]:
    """Decode an ordered stack: (array z, y, x uint8 in file order, notes, files in order)."""
    ordered = order_stack(files)
    sizes = [header_size(p) for p in ordered]
    common, _ = Counter(sizes).most_common(1)[0]
    for p, s in zip(ordered, sizes):
        if s != common:
            raise InputError(p, f"is {s[0]}x{s[1]} pixels but the other slices of the stack are "
                                f"{common[0]}x{common[1]}")
    validate.check_size(folder, (common[0], common[1], len(ordered)))
    volume = np.empty((len(ordered), common[1], common[0]), dtype=np.uint8)
    notes: list[str] = []
    for k, p in enumerate(ordered):
        gray, n = read_gray(p)
        volume[k] = gray
        notes.extend(n)
    if len(notes) > 5:
        notes = notes[:5] + [f"... and {len(notes) - 5} more notes on individual slices"]
    return volume, notes, ordered
