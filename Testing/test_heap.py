"""heap.keep_freed_memory: a large array freed and allocated again reuses mapped pages instead of new ones."""

import platform
import subprocess
import sys

import pytest

from CovidCTAnalysis.heap import keep_freed_memory

glibc = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                           reason="mallopt thresholds exist in glibc only")

# page faults taken while filling a 256 MB buffer that replaces one of the same size just freed
SECOND_FILL_FAULTS = """
import resource, sys
from CovidCTAnalysis.heap import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
size = 256 * 2**20
first = bytearray(size)
first[::4096] = b"x" * (size // 4096)
del first
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
second = bytearray(size)
second[::4096] = b"y" * (size // 4096)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _second_fill_faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", SECOND_FILL_FAULTS, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@glibc
def test_freed_memory_is_reused_without_new_page_faults():
    default, kept = _second_fill_faults("default"), _second_fill_faults("keep")
    # glibc's default unmaps the freed 256 MB and faults a new mapping in (65 536 pages of 4 KiB, fewer when the
    # kernel backs it with huge pages); with the thresholds raised the pages are already there
    assert default > 1000
    assert kept < default / 20


@pytest.mark.skipif(platform.system() == "Linux" and platform.libc_ver()[0] == "glibc", reason="non-glibc path")
def test_elsewhere_nothing_changes():
    assert keep_freed_memory() is False
