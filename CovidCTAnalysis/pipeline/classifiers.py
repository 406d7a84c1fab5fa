"""The one place that runs a registered classifier on one CT, for ``covidct analyze`` and ``covidct classify``.

Each seed system keeps its own inference API (``classifiers/<system>/infer.py``); this module adapts them to one
shape, ``ClassifierRun``: a JSON-ready result (``probability`` = P(COVID-19), ``label``, model-specific fields), the
explanation heatmap on the CT's canonical grid, and, where the system localizes a lesion (DeCoVNet, seed 002 §II-E),
its mask. Which inputs a system accepts follows its paper: slice-resnet (seed 003) classifies a 2-D slice or every
lung slice of a volume; DeCoVNet (seed 002) needs a volume (a CT or a slice stack) and its lung mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import SimpleITK as sitk

from ..errors import InputError
from ..io import CTVolume

Report = Callable[[float, str], None]

#: Classifiers this version can run, with the inputs they accept.
VOLUME_ONLY = {"decovnet"}
RUNNABLE = ("slice-resnet", "decovnet")


@dataclass
class ClassifierRun:
    result: dict
    heatmap: sitk.Image | None
    localization: sitk.Image | None = None  # uint8 mask, canonical grid


def accepts(name: str, ct: CTVolume) -> str | None:
    """None when classifier ``name`` can run on ``ct``, else the one-line reason it cannot."""
    if name not in RUNNABLE:
        return f"model {name} is not available in this version"
    if ct.is_2d and name in VOLUME_ONLY:
        return f"{name} classifies volumes (a CT or a slice stack), not a single 2-D slice"
    return None


def run_classifier(name: str, ct: CTVolume, lungs: sitk.Image | None, device, progress: Report | None = None
                   ) -> ClassifierRun:
    """Classifier ``name`` on ``ct`` (and its lung label map on the canonical grid, needed for volumes)."""
    reason = accepts(name, ct)
    if reason:
        raise InputError(ct.source, reason)
    report = progress or (lambda fraction, message: None)
    if name == "slice-resnet":
        from ..classifiers import slice_resnet

        if ct.is_2d:
            result, heatmap = slice_resnet.explain_image(ct, device)
            report(1.0, f"P(COVID-19) {result['probability']:.3f}")
            return ClassifierRun(result, heatmap)
        result, heatmap = slice_resnet.classify_volume(ct.image, _need(lungs, name), device, report)
        return ClassifierRun(result, heatmap)
    from ..classifiers import decovnet

    result, heatmap, located = decovnet.classify_volume(ct.image, _need(lungs, name), device, report)
    return ClassifierRun(result, heatmap, located["mask"] if located else None)


def _need(lungs: sitk.Image | None, name: str) -> sitk.Image:
    if lungs is None:
        raise ValueError(f"{name} needs the lung label map of a volume")
    return lungs


def csv_row(path: str, run: ClassifierRun) -> dict:
    """One row of ``covidct classify``'s CSV: path, probability, label, then the model's scalar fields."""
    row = {"path": path, "probability": f"{run.result['probability']:.6f}", "label": run.result["label"]}
    for key, value in run.result.items():
        if key in row or isinstance(value, (dict, list, tuple)) or value is None:
            continue
        row[key] = f"{value:.6g}" if isinstance(value, float) else value
    loc = run.result.get("localization")
    if isinstance(loc, dict) and loc.get("centre_mm") is not None:
        row["lesion_centre_mm"] = " ".join(f"{v:.1f}" for v in loc["centre_mm"])
    return row

