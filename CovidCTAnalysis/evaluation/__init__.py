"""The evaluation harness shared by every classifier (issue 5): metrics with bootstrap CIs, threshold table,
calibration, ROC / PR / reliability plots.

Public API:
    evaluate(y, p, outdir=None, title="", names=None, threshold=0.5, n_boot=2000, seed=0) -> dict
    metrics.summary / at_threshold / roc_auc / pr_auc / fpr_at_tpr / threshold_table / calibration / bootstrap_ci
    covid_ct_split(root, split) -> [(path, label)]
    read_scores(csv_path) -> {path: probability}     (the `covidct classify` CSV)
"""

from . import metrics
from .datasets import covid_ct_split
from .harness import evaluate, format_summary, read_scores

__all__ = ["covid_ct_split", "evaluate", "format_summary", "metrics", "read_scores"]
