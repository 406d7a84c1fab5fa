"""A memory budget checked from the header, before a single voxel is decoded (issue 24).

A 2 MB .nii.gz can declare 1024^3 voxels of zeros and a folder of 40 small PNGs can be 4096^2 each: decoding them
and running the pipeline would take the machine's memory within seconds. The voxel limits of validate.py bound the
size; this bounds what that size costs: ``BYTES_PER_VOXEL`` times the voxel count must fit in the memory available
now, else the input is refused with the numbers.

``BYTES_PER_VOXEL`` is the peak resident memory of `covidct analyze` per input voxel, measured with
scripts/benchmark_analyze.py (512x512x300 demo CT, every shipped model, CPU: see the constant) and rounded up; a
fixed overhead (Python, torch, the models) is added. Available memory is MemAvailable of /proc/meminfo, lowered to a
cgroup (v2) limit when the process runs inside one, and to ``COVIDCT_MEMORY_LIMIT`` (GiB) when that is set (a shared
server; also how the tests make the budget the same on every machine); where none of these exists (macOS, Windows)
the check is skipped.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError

#: Measured 2026-12-05 (scripts/benchmark_analyze.py, 512x512x300 demo CT = 78.6 M voxels, every shipped model,
#: CPU): peak RSS 3832 MiB, 37 B/voxel above the fixed overhead; with a margin of 30 %. A 1024x1024x800 CT needs
#: about 38.5 GiB by this estimate and is refused on a 24 GB machine.
BYTES_PER_VOXEL = 48
#: Python, torch and the models before the first voxel.
FIXED_OVERHEAD = 1 << 30


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text(encoding="ascii").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_bytes() -> int | None:
    """Memory this process can still use, in bytes (None where the platform does not say)."""
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        avail = None
    limit, used = _read_int("/sys/fs/cgroup/memory.max"), _read_int("/sys/fs/cgroup/memory.current")
    if avail is not None and limit is not None and used is not None:
        avail = min(avail, max(limit - used, 0))
    stated = os.environ.get("COVIDCT_MEMORY_LIMIT", "").strip()
    if stated:
        try:
            cap = int(float(stated) * 2**30)
        except ValueError:
            raise InputError(None, f"COVIDCT_MEMORY_LIMIT={stated!r} must be a number of GiB") from None
        avail = cap if avail is None else min(avail, cap)
    return avail


def needed_bytes(size: Sequence[int]) -> int:
    """What analyzing an image of ``size`` voxels takes at its peak, in bytes (estimate)."""
    return FIXED_OVERHEAD + BYTES_PER_VOXEL * math.prod(int(s) for s in size)


def check_memory(path: Path | None, size: Sequence[int], available: int | None = None) -> None:
    """Refuse an image whose analysis would not fit in the memory available now."""
    avail = available_bytes() if available is None else available
    if avail is None:
        return
    need = needed_bytes(size)
    if need > avail:
        shown = "x".join(str(int(s)) for s in size)
        raise InputError(path, f"is {shown} voxels; analyzing it needs about {need / 2**30:.1f} GiB of memory and "
                               f"{avail / 2**30:.1f} GiB is available (free memory, or crop / downsample the CT)")
