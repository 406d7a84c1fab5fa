"""The classifier interface and table (classifiers/interface.py, classifiers/table.py): listing without torch, what
each runnable classifier accepts, refusals, one result type, and no system named outside its own subpackage."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk

from CovidCTAnalysis.classifiers.interface import INPUT_KINDS, ClassifierResult
from CovidCTAnalysis.classifiers.table import classifier_class, classifier_names, refusal, runnable_classifiers
from CovidCTAnalysis.models.registry import load_registry

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "CovidCTAnalysis"


def test_listing_classifiers_loads_neither_torch_nor_weights():
    code = ("import sys\nfrom CovidCTAnalysis.classifiers.table import runnable_classifiers\n"
            "print(len(runnable_classifiers()), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    count, torch_loaded = out.stdout.split()
    assert int(count) == len(classifier_names()) and torch_loaded == "False"


def test_runnable_classifiers_say_what_they_are_and_accept():
    infos = runnable_classifiers()
    assert [i.name for i in infos] == classifier_names()
    registry = load_registry()
    for info in infos:
        entry = registry.get(info.name)
        assert entry.task == "classification" and info.version == entry.version
        assert info.title and info.paper and info.explanation  # the Slicer panel shows them
        assert info.inputs and set(info.inputs) <= set(INPUT_KINDS)
        cls = classifier_class(info.name)
        for member in ("load", "run", "inputs", "needs_lungs"):  # the Protocol's members (issubclass cannot check
            assert hasattr(cls, member), (info.name, member)  # protocols with data members)


def test_registered_name_without_a_subpackage_is_not_runnable(tmp_path, monkeypatch):
    """A registry entry whose subpackage this installation lacks (here: lobe-patch's, made unimportable)."""
    from CovidCTAnalysis.classifiers import table

    data = json.loads((REPO / "Resources" / "Models" / "registry.json").read_text(encoding="utf-8"))
    data["models"] = [m for m in data["models"] if m["task"] != "classification"] + [
        {"name": "lobe-patch", "version": "0.0.1", "task": "classification", "weights": None, "sha256": None}]
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    monkeypatch.setattr(table, "module_name", lambda name: f"{table.__package__}.no_such_{name.replace('-', '_')}")
    assert classifier_names(path) == []
    ct = SimpleNamespace(is_2d=False)
    assert refusal("lobe-patch", ct) == "model lobe-patch is not available in this version"


def test_refusals_follow_the_accepted_inputs():
    for info in runnable_classifiers():
        for is_2d, kind in ((True, "slice"), (False, "volume")):
            reason = refusal(info.name, SimpleNamespace(is_2d=is_2d))
            assert (reason is None) == (kind in info.inputs), (info.name, kind, reason)


def _image(value: float = 0.5) -> sitk.Image:
    return sitk.GetImageFromArray(np.full((2, 3, 4), value, np.float32))


def test_result_default_heatmap_summary_and_csv_columns():
    result = ClassifierResult(probability=0.75, label="COVID-19", version="1.0.0",
                              heatmaps={"gradcam": _image(), "lrp": _image(0.2)}, default_heatmap="gradcam",
                              details={"score": 1.25, "count": 3, "per_slice": {"1": 0.5}, "missing": None},
                              points={"lesion_centre": (1.0, 2.0, 3.25)})
    assert result.heatmap is result.heatmaps["gradcam"]
    summary = result.summary()
    assert summary["probability"] == 0.75 and summary["label"] == "COVID-19" and summary["per_slice"] == {"1": 0.5}
    assert summary["points_mm"] == {"lesion_centre": [1.0, 2.0, 3.25]}
    assert result.csv_columns() == {"probability": "0.750000", "label": "COVID-19", "score": "1.25", "count": "3",
                                    "lesion_centre_mm": "1.0 2.0 3.2"}
    with pytest.raises(ValueError, match="default heatmap"):
        ClassifierResult(probability=0.1, label="non-COVID", version="1", heatmaps={"cam": _image()},
                         default_heatmap="gradcam")


def test_no_classifier_is_named_outside_its_subpackage_and_the_registry():
    """Adding a classifier = its folder, its registry entry, its tests: the code never names one elsewhere."""
    names = classifier_names()
    allowed = {PACKAGE / "models" / "registry.py"}
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path in allowed:
            continue
        text = path.read_text(encoding="utf-8")
        for name in names:
            own = PACKAGE / "classifiers" / name.replace("-", "_")
            if own in path.parents:
                continue
            if re.search(rf"[\"']{re.escape(name)}[\"']", text):
                offenders.append(f"{path.relative_to(REPO)}: {name}")
    assert not offenders, offenders


def test_the_classifiers_that_find_a_pictures_lungs_name_their_lung_model(tmp_path):
    """da-cmil and cvae-netvlad frame a display-windowed picture by lungs-unet's mask (slice_resnet.infer.image_lungs):
    front ends list lungs-unet among the models that ran on a picture, and only there."""
    from PIL import Image

    from CovidCTAnalysis.demo import make_demo_ct, write_demo_case
    from CovidCTAnalysis.io import load_ct
    from CovidCTAnalysis.pipeline.classifiers import picture_lung_model

    png = tmp_path / "slice.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(png)
    picture = load_ct(png)
    volume = load_ct(write_demo_case(make_demo_ct(size=(32, 32, 8), seed=0), tmp_path))
    assert {n: picture_lung_model(n, picture) for n in ("da-cmil", "cvae-netvlad", "slice-resnet", "lobe-patch")} == {
        "da-cmil": "lungs-unet", "cvae-netvlad": "lungs-unet", "slice-resnet": None, "lobe-patch": None}
    assert picture_lung_model("da-cmil", volume) is None
