"""scripts/evaluate_synthetic_volumes.py: a registered volume classifier on a small semi-synthetic split, read the
way `covidct analyze` reads a volume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from CovidCTAnalysis.classifiers.decovnet.synthetic import load_case

from conftest import load_script


@pytest.mark.parametrize("model", ["da-cmil", "lobe-patch"])
def test_scores_the_test_split_only_with_per_case_probabilities(tmp_path, model):
    """Both classifiers give per-case probabilities; lobe-patch, which reports % infected lung, is also scored
    against each volume's true involvement."""
    from CovidCTAnalysis.demo import make_demo_ct

    folder = tmp_path / "synthetic"
    folder.mkdir()
    index = []
    for i, (split, lesions) in enumerate((("test", True), ("test", False), ("train", True))):
        case = make_demo_ct(size=(96, 96, 24), seed=20 + i, lesions=lesions)
        name = f"case{i}.npz"
        hu = sitk.GetArrayFromImage(case.image)
        np.savez_compressed(folder / name, hu=np.rint(hu).astype(np.int16),
                            lungs=sitk.GetArrayFromImage(case.lungs).astype(np.uint8),
                            lesions=np.zeros(hu.shape, np.uint8), instances=np.zeros(hu.shape, np.uint8),
                            meta=np.array(json.dumps({"spacing": list(case.image.GetSpacing())})))
        assert load_case(folder / name)[0].shape == hu.shape  # the generator's format
        index.append({"file": name, "split": split, "label": int(lesions), "involvement": 0.05 * lesions})
    (folder / "index.json").write_text(json.dumps(index))
    out = tmp_path / "result.json"
    script = load_script("evaluate_synthetic_volumes")
    assert script.main(["--model", model, "--synthetic", str(folder), "--threads", "1", "-o", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [c["case"] for c in result["cases"]] == ["case0.npz", "case1.npz"]  # the train split is not scored
    assert [c["label"] for c in result["cases"]] == [1, 0]
    assert all(0.0 <= c["probability"] <= 1.0 for c in result["cases"])
    assert result["summary"]["n"] == 2 and result["model"] == model
    assert result["summary"]["metrics"]["roc_auc"]["value"] in (0.0, 0.5, 1.0)
    if model == "da-cmil":
        assert "percent_infected_error" not in result
        return
    assert [c["true_percent"] for c in result["cases"]] == [5.0, 0.0]
    error = [abs(c["percent_infected"] - c["true_percent"]) for c in result["cases"]]
    assert result["percent_infected_error"] == {"n": 2, "mean": pytest.approx(np.mean(error), abs=1e-3),
                                                "median": pytest.approx(np.median(error), abs=1e-3)}
