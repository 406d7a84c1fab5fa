"""Keep freed memory in the process's heap for reuse instead of handing it back to the kernel (glibc only).

A 512 x 512 x 300 CT analysis allocates and frees a few hundred arrays of 10-600 MB: float copies of the CT,
probability maps, heatmaps, SimpleITK images. glibc serves each allocation above its mmap threshold (which adapts
up to 32 MB and no further) with a fresh ``mmap`` and unmaps it on ``free``, so the kernel faults every page of
every such array in and zeroes it again: about 4.5 million page faults and 23 s of system time in one
``covidct analyze`` of the 512 x 512 x 300 demo CT. With the mmap and trim thresholds raised, those blocks come
from the heap and go back to it, and the next array reuses pages that are already mapped. Measured with
``scripts/benchmark_analyze.py`` (README, Benchmarks).

The cost is that the process keeps its peak footprint until it exits. That suits the short-lived ``covidct``
command processes (which is how 3D Slicer and the web app run an analysis) and the batch workers, which reuse the
memory for their next case; it is not set in the long-lived web server, and never inside 3D Slicer's own process.
"""

from __future__ import annotations

import ctypes
import platform

#: mallopt parameter numbers of glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: the largest value mallopt takes (an int): blocks up to 2 GiB come from the heap and return to it
_THRESHOLD = 2**31 - 1


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; True when glibc accepted both, False elsewhere
    (macOS, Windows, musl) or when it refused, in which case nothing changes."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _THRESHOLD)) & bool(mallopt(_M_TRIM_THRESHOLD, _THRESHOLD))
