"""The evaluation harness every classifier uses: labels + scores -> metrics.json, roc.png, pr.png, calibration.png."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from . import metrics, plots


def evaluate(y, p, outdir: str | Path | None = None, title: str = "", names=None, threshold: float = 0.5,
             n_boot: int = metrics.BOOTSTRAP, seed: int = 0) -> dict:
    """All metrics of ``metrics.summary``; with ``outdir``, also metrics.json (+ per-case scores) and the 3 PNGs."""
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=np.float64)
    result = metrics.summary(y, p, threshold=threshold, n_boot=n_boot, seed=seed)
    result["title"] = title
    if outdir is None:
        return result
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    m = result["metrics"]
    result["figures"] = {
        "roc": plots.roc_plot(y, p, out / "roc.png", title, m["roc_auc"]["value"], m["roc_auc"]["ci95"],
                              m["fpr_at_tpr95"]["value"]).name,
        "pr": plots.pr_plot(y, p, out / "pr.png", title, m["pr_auc"]["value"], m["pr_auc"]["ci95"]).name,
        "calibration": plots.reliability_plot(result["calibration"], out / "calibration.png", title).name,
    }
    if names is not None:
        result["cases"] = [{"name": str(n), "label": int(t), "probability": round(float(s), 6)}
                           for n, t, s in zip(names, y, p)]
    (out / "metrics.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    return result


def read_scores(path: str | Path) -> dict[str, float]:
    """`covidct classify` CSV (path,probability,label,...) -> {path: probability}."""
    with open(path, newline="", encoding="utf-8") as f:
        return {row["path"]: float(row["probability"]) for row in csv.DictReader(f)}


def format_summary(result: dict) -> str:
    """A short Markdown table of the headline metrics with their 95 % CIs."""
    rows = ["| metric | value | 95% CI |", "|---|---|---|"]
    for name in ("roc_auc", "pr_auc", "accuracy", "sensitivity", "specificity", "f1", "ppv", "npv",
                 "fpr_at_tpr95", "ece"):
        m = result["metrics"][name]
        ci = m["ci95"]
        v = "n/a" if m["value"] is None else f"{m['value']:.3f}"
        rows.append(f"| {name} | {v} | " + (f"{ci[0]:.3f}-{ci[1]:.3f}" if ci else "n/a") + " |")
    return "\n".join(rows)
