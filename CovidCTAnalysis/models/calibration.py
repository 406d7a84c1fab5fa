"""Calibrated probabilities and the consensus of the classifiers (issue 22), at run time: numbers only, no fitting.

A classifier's registry entry may carry ``calibration``: a Platt or temperature scaling fitted on that classifier's
validation predictions when it was trained (``evaluation.calibration``, ``scripts/calibrate_classifier.py``):
``{"method": "platt", "a": float, "b": float, ...}`` gives sigmoid(a * logit(p) + b); ``{"method": "temperature",
"temperature": T, ...}`` gives sigmoid(logit(p) / T). ``"inputs": ["slice"]`` (or ``["volume"]``) limits it to the
input kind its predictions were (a classifier whose volumes run another network than its slices); without it the
calibration applies to every input. Other keys (the data it was fitted on, ECE before and after) are documentation
for the model card. Without an entry the probability is used as it is.

The consensus is the mean of the (calibrated) probabilities of the classifiers that ran, with a disagreement flag
when their spread (highest minus lowest) exceeds the registry's ``consensus.disagreement_threshold``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

#: Probabilities are clipped this far from 0 and 1 before the logit (a network's 1.0 in float32).
EPSILON = 1e-6
COVID, NON_COVID = "COVID-19", "non-COVID"


def logit(p: float) -> float:
    p = min(max(float(p), EPSILON), 1.0 - EPSILON)
    return math.log(p / (1.0 - p))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def calibrate(calibration: Mapping | None, p: float) -> float:
    """The calibrated P(COVID-19) of a raw probability ``p`` (``p`` itself without a calibration)."""
    if not calibration:
        return float(p)
    method = calibration.get("method")
    if method == "platt":
        return sigmoid(float(calibration["a"]) * logit(p) + float(calibration["b"]))
    if method == "temperature":
        return sigmoid(logit(p) / float(calibration["temperature"]))
    raise ValueError(f"unknown calibration method {method!r}")


def calibrated_entry(entry: dict, calibration: Mapping | None, input_kind: str | None = None) -> dict:
    """A classifier's report entry with ``probability`` calibrated, the model's own ``probability_raw`` and
    ``label_raw`` beside it, and ``label`` taken at 0.5 of the calibrated probability; unchanged without one, or
    when the calibration names ``inputs`` and ``input_kind`` ("slice" or "volume") is not among them."""
    if not calibration or ("inputs" in calibration and input_kind not in calibration["inputs"]):
        return entry
    p = calibrate(calibration, entry["probability"])
    return dict(entry, probability=p, probability_raw=float(entry["probability"]), label=COVID if p >= 0.5 else
                NON_COVID, label_raw=entry.get("label"), calibration=calibration["method"])


def consensus(probabilities: Mapping[str, float], threshold: float, validated: Mapping | None = None,
              input_kind: str | None = None) -> dict:
    """{"probability": mean or None, "spread", "disagreement": spread > threshold, "threshold", "models"}, and
    "validation" when the registry's consensus block states one (``validated``: {"models", "text", "inputs"}): its
    text where these are the classifiers it was measured on, on an input kind it names (``input_kind``, e.g. "slice"),
    else a line naming what differs (the classifiers, or the input kind) before that text."""
    models = sorted(probabilities)
    values = [float(probabilities[m]) for m in models]
    if not values:
        return {"probability": None, "spread": None, "disagreement": False, "threshold": threshold, "models": []}
    spread = max(values) - min(values)
    result = {"probability": sum(values) / len(values), "spread": spread, "disagreement": spread > threshold,
              "threshold": threshold, "models": models}
    if validated and validated.get("text"):
        measured_on = sorted(validated.get("models", ()))
        extra = [m for m in models if m not in measured_on]
        missing = [m for m in measured_on if m not in models]
        inputs = validated.get("inputs")
        differs = "; ".join(filter(None, (extra and f"with {', '.join(extra)}",
                                          missing and f"without {', '.join(missing)}",
                                          inputs and input_kind and input_kind not in inputs
                                          and f"on a {input_kind} input")))
        result["validation"] = (validated["text"] if not differs else
                                f"not validated for this set ({differs}); the validated set "
                                f"({', '.join(measured_on)}): {validated['text']}")
    return result
