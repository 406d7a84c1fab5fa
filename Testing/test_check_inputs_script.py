"""scripts/check_inputs.py: case selection, outcomes (ok / refused / crashed) and its table, on made-up inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import load_script


def test_spread_picks_evenly_and_keeps_short_lists():
    spread = load_script("check_inputs").spread
    cases = [Path(f"{k}.png") for k in range(10)]
    assert spread(cases, 5) == [Path(f"{k}.png") for k in (0, 2, 4, 6, 8)]
    assert spread(cases, 0) == cases and spread(cases[:3], 5) == cases[:3]


def test_refused_input_is_counted_with_its_message(tmp_path):
    script = load_script("check_inputs")
    from CovidCTAnalysis.pipeline import AnalyzeOptions

    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((64, 64), 100, np.uint8)).save(blank)  # blank: refused when read, before any model
    row = script.check_case(blank, AnalyzeOptions(device="cpu"), tmp_path)
    assert row["outcome"] == "refused" and "blank" in row["message"]
    assert not (tmp_path / "out").exists()
    summary = script.summarize([row, {"path": "x", "outcome": "crashed", "message": "E: x", "seconds": 1.0}])
    assert summary == {"cases": 2, "refused": 1, "crashed": 1, "warned": 0, "median_s": pytest.approx(
        round((row["seconds"] + 1.0) / 2, 1), abs=0.06)}
    table = script.markdown({"sources": {"made-up": {"summary": summary, "cases": [row]}}})
    assert "| made-up | 2 | 1 | 1 | 0 |" in table and "blank.png | refused" in table


def test_unknown_source_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit) as exc:
        load_script("check_inputs").main(["-o", str(tmp_path / "o"), "--sources", "nowhere", "--data", str(tmp_path)])
    assert exc.value.code == 2


def test_sources_find_cases_in_a_data_folder_layout(tmp_path):
    script = load_script("check_inputs")
    imgs = tmp_path / "covid-semiseg" / "TrainingSet" / "LungInfection-Train" / "Doctor-label" / "Imgs"
    imgs.mkdir(parents=True)
    for k in (1, 0):
        (imgs / f"{k}.jpg").write_bytes(b"")
    (imgs / "notes.txt").write_text("not an image")
    assert [p.name for p in script.SOURCES["semiseg-doctor"](tmp_path)] == ["0.jpg", "1.jpg"]
    assert script.SOURCES["radiopaedia"](tmp_path) == []
    json.dumps({name: [str(p) for p in fn(tmp_path)] for name, fn in script.SOURCES.items()})  # none raises
