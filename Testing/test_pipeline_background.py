"""Background writes of covidct analyze: every queued write is done by wait(), and a failed one raises there."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from CovidCTAnalysis.errors import InputError
from CovidCTAnalysis.pipeline.background import BackgroundWrites


def test_wait_returns_after_every_write(tmp_path):
    with ThreadPoolExecutor(max_workers=1) as pool:
        writes = BackgroundWrites(pool)
        for k in range(5):
            writes(lambda path, text: path.write_text(text), tmp_path / f"f{k}.txt", str(k))
        writes.wait()
        assert sorted(p.read_text() for p in tmp_path.iterdir()) == ["0", "1", "2", "3", "4"]


def test_a_failed_write_raises_its_error_at_wait(tmp_path):
    def fail(path):
        raise InputError(path, "could not be written (disk full, or no permission to write there?)")

    with ThreadPoolExecutor(max_workers=1) as pool:
        writes = BackgroundWrites(pool)
        writes(fail, tmp_path / "heatmap.nrrd")
        with pytest.raises(InputError, match="could not be written"):
            writes.wait()
        writes.wait()  # reported once: nothing is pending any more
