"""scripts/evaluate_classifier.py with a `covidct classify` CSV on a constructed COVID-CT split."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from CovidCTAnalysis.evaluation import covid_ct_split

from conftest import load_script


def _dataset(root: Path) -> None:
    (root / "covid-ct" / "splits").mkdir(parents=True)
    for cls, names in (("COVID", ["a.png", "b.png", "c.png"]), ("NonCOVID", ["1.jpg", "2.jpg", "3.jpg", "4.jpg"])):
        (root / "covid-ct" / "splits" / f"valCT_{cls}.txt").write_text("\n".join(names) + "\n")


def test_covid_ct_split_reads_labels_in_order(tmp_path):
    _dataset(tmp_path)
    items = covid_ct_split(tmp_path / "covid-ct", "val")
    assert [(p.name, y) for p, y in items] == [("a.png", 1), ("b.png", 1), ("c.png", 1),
                                               ("1.jpg", 0), ("2.jpg", 0), ("3.jpg", 0), ("4.jpg", 0)]
    assert items[0][0] == tmp_path / "covid-ct" / "images" / "COVID" / "a.png"
    with pytest.raises(ValueError):
        covid_ct_split(tmp_path / "covid-ct", "test")


def test_scores_csv_is_matched_by_file_name(tmp_path):
    _dataset(tmp_path)
    scores = {"a.png": 0.9, "b.png": 0.8, "c.png": 0.3, "1.jpg": 0.4, "2.jpg": 0.2, "3.jpg": 0.1, "4.jpg": 0.05}
    csv_path = tmp_path / "scores.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "probability", "label"])
        for name, p in scores.items():
            w.writerow([f"/somewhere/{name}", p, "COVID-19" if p >= 0.5 else "non-COVID"])
    out = tmp_path / "eval"
    assert load_script("evaluate_classifier").main(["--scores", str(csv_path), "--data", str(tmp_path),
                                                    "--bootstrap", "50", "-o", str(out)]) == 0
    result = json.loads((out / "metrics.json").read_text())
    # c.png (0.3) is below 1.jpg (0.4): 1 of 12 pairs misordered
    assert result["metrics"]["roc_auc"]["value"] == pytest.approx(11 / 12)
    assert result["metrics"]["accuracy"]["value"] == pytest.approx(6 / 7)
    rows = list(csv.DictReader(open(out / "threshold_table.csv")))
    assert len(rows) == 9 and rows[2]["threshold"] == "0.3" and rows[2]["accuracy"] == "0.857"
    assert (out / "roc.png").is_file()
