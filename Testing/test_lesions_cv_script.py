"""scripts/cv_lesions.py: scan-grouped, consolidation-stratified folds; the fold bootstrap; the fold registry."""

from __future__ import annotations

import json

import numpy as np

from conftest import load_script


def test_folds_keep_scans_together_and_cover_every_slice():
    cv = load_script("cv_lesions")
    rows = [(0, (300, 400), 0.2), (1, (302, 404), 0.2), (2, (300, 400), 0.0),  # 0-1 one scan; 2 follows 1 but
            (4, (300, 400), 0.1), (5, (200, 250), 0.05), (6, (420, 430), 0.0),  # 4 does not follow 2
            (7, (421, 431), 0.0), (8, (421, 431), 0.01), (9, (250, 300), 0.3), (10, (200, 310), 0.02)]
    folds = cv.make_folds(rows, folds=3)
    assert sorted(n for f in folds for n in f) == [r[0] for r in rows]
    where = {n: k for k, f in enumerate(folds) for n in f}
    assert where[0] == where[1] == where[2]          # consecutive, same size within 5 %
    assert where[6] == where[7] == where[8]
    assert where[9] != where[10]                      # 10 follows 9 but is another crop size
    assert len({where[9], where[0], where[4]}) == 3   # the three most consolidated groups, one per fold
    assert where[4] == where[5]                       # snake order: the fourth group returns to the third fold


def test_fold_bootstrap_brackets_the_mean_over_folds():
    cv = load_script("cv_lesions")
    per_fold = [np.array([0.7, 0.8, np.nan]), np.array([0.6, 0.9]), np.array([0.75])]
    lo, hi = cv.fold_bootstrap(per_fold)
    mean = np.mean([0.75, 0.75, 0.75])
    assert lo <= mean <= hi and hi - lo > 0


def test_temporary_registry_points_lesions_unet_at_the_fold_weights(tmp_path):
    cv = load_script("cv_lesions")
    weights = tmp_path / "fold.pt"
    weights.write_bytes(b"weights")
    folder = cv.temporary_registry(weights, tmp_path / "models")
    entries = {e["name"]: e for e in json.loads((folder / "registry.json").read_text())["models"]}
    assert entries["lesions-unet"]["weights"] == str(weights.resolve())
    from CovidCTAnalysis.models.registry import load_registry, sha256_file

    reg = load_registry(folder / "registry.json")
    assert reg.get("lesions-unet").sha256 == sha256_file(weights)
    assert reg.get("lungs-unet").weights.is_file()    # the other models stay the shipped files


def test_paired_comparison_uses_only_the_baselines_held_out_slices():
    cv = load_script("cv_lesions")
    rows = [{"slice": 1, "dice": {"infection": 0.8, "ggo": 0.7, "consolidation": None}},
            {"slice": 2, "dice": {"infection": 0.6, "ggo": 0.5, "consolidation": 0.4}},
            {"slice": 3, "dice": {"infection": 0.9, "ggo": 0.9, "consolidation": 0.9}}]
    baseline = [{"slice": 1, "validation": True, "dice": {"infection": 0.7, "ggo": 0.7, "consolidation": None}},
                {"slice": 2, "validation": True, "dice": {"infection": 0.7, "ggo": 0.4, "consolidation": 0.2}},
                {"slice": 3, "validation": False, "dice": {"infection": 0.1, "ggo": 0.1, "consolidation": 0.1}}]
    out = cv.paired(rows, baseline)
    assert out["slices"] == [1, 2]
    assert out["infection"]["cv"] == 0.7 and out["infection"]["baseline"] == 0.7
    assert out["infection"]["difference"] == 0.0
    assert out["consolidation"]["slices"] == 1 and out["consolidation"]["difference"] == 0.2
    lo, hi = out["ggo"]["difference_ci95"]
    assert lo <= out["ggo"]["difference"] <= hi
    everywhere = cv.paired(rows, baseline, held_out_only=False)  # --compare: another recipe on the same folds
    assert everywhere["slices"] == [1, 2, 3]
    assert everywhere["infection"]["difference"] == round((0.1 - 0.1 + 0.8) / 3, 3)
