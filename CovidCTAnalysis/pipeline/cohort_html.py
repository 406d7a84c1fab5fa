"""``cohort.html``: one page on a batch's done cases (issue 21), from the cohort table's rows (``batch.cohort_row``).

- Distributions: lung volume, % involvement and each classifier's P(COVID-19), as strip plots (one dot per case,
  a bar at the median), split by label when there are labels.
- With labels (``cohort_labels``): per classifier, the ROC curve with its bootstrap 95 % band and the AUC's 95 % CI,
  the FPR at TPR 95 % and the threshold table 0.1..0.9, all from the evaluation harness (evaluation/metrics.py:
  stratified percentile bootstrap, seeded, so the same cohort gives the same page).

Figures are PNGs embedded as base64 (the page is one file to mail or archive), drawn with matplotlib's object API
(evaluation/plots.py: no pyplot state). The page names cases by case id only: no input path reaches it.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

from ..evaluation import metrics, plots
from ..io.writers import atomic_path

PREFIX = "p_covid_"
GROUPS = ((1, "COVID-19", "tab:red"), (0, "non-COVID", "tab:blue"), (None, "unlabelled", "tab:gray"))
DISTRIBUTIONS = (("lung_ml", "lung volume (mL)"), ("involvement_percent", "lesion involvement of the lungs (%)"))

STYLE = """body{font-family:sans-serif;max-width:1100px;margin:1em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}
th{background:#f3f3f3}.figs img{margin:4px;border:1px solid #eee}.note{color:#555}"""


def classifiers(rows: list[dict]) -> list[str]:
    """Classifier names that have a P(COVID-19) column in the rows, sorted."""
    return sorted({k[len(PREFIX):] for row in rows for k in row if k.startswith(PREFIX)})


def _values(rows: list[dict], column: str, labels: dict | None, group) -> list[float]:
    return [float(r[column]) for r in rows
            if r.get(column) is not None and (labels or {}).get(r["case_id"]) == group]


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def strip_plot(rows: list[dict], column: str, title: str, labels: dict | None, probability: bool = False) -> bytes:
    """One row of dots per label group (jittered, a bar at the median), as PNG bytes."""
    fig, ax = plots.figure(4.6, 2.4, 100)
    rng = np.random.default_rng(0)
    groups = [(g, name, colour) for g, name, colour in GROUPS if labels or g is None]
    shown = [(name, colour, _values(rows, column, labels, g)) for g, name, colour in groups]
    shown = [s for s in shown if s[2]]
    for k, (name, colour, values) in enumerate(shown):
        y = k + rng.uniform(-0.18, 0.18, len(values))
        ax.scatter(values, y, s=14, alpha=0.6, color=colour, lw=0)
        ax.plot([np.median(values)] * 2, [k - 0.32, k + 0.32], color="black", lw=2)
    ax.set_yticks(range(len(shown)), [f"{name} (n={len(v)})" if labels else f"n={len(v)}" for name, _, v in shown])
    ax.set_ylim(-0.6, max(len(shown), 1) - 0.4)
    ax.set_xlabel(title)
    if probability:
        ax.set_xlim(-0.02, 1.02)
    return plots.png_bytes(fig)


def _fmt(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def roc_section(name: str, y: np.ndarray, p: np.ndarray, n_boot: int, seed: int) -> tuple[str, str]:
    """(summary-table row, figure + threshold table) of one classifier on its labelled cases."""
    band = metrics.roc_band(y, p, n_boot, seed)
    fpr95 = metrics.fpr_at_tpr(y, p)
    fig, ax = plots.figure()
    plots.draw_roc(ax, band["fpr"], band["tpr"], name, band["auc"], band["auc_ci95"], fpr95, band)
    ci = band["auc_ci95"]
    row = (f"<tr><td>{html.escape(name)}</td><td>{len(y)}</td><td>{int(y.sum())}</td><td>{band['auc']:.3f}</td>"
           f"<td>{_fmt(ci[0]) + '&ndash;' + _fmt(ci[1]) if ci else 'n/a'}</td><td>{fpr95:.3f}</td></tr>")
    head = "".join(f"<th>{h}</th>" for h in ("threshold", "accuracy", "sensitivity", "specificity", "PPV", "NPV",
                                              "TP", "FP", "TN", "FN"))
    body = "".join("<tr>" + "".join(f"<td>{v}</td>" for v in (
        f"{t['threshold']:.1f}", _fmt(t["accuracy"]), _fmt(t["sensitivity"]), _fmt(t["specificity"]),
        _fmt(t["ppv"]), _fmt(t["npv"]), t["tp"], t["fp"], t["tn"], t["fn"])) + "</tr>"
        for t in metrics.threshold_table(y, p))
    part = (f"<h3>{html.escape(name)}</h3><div class=figs>{_img(plots.png_bytes(fig), f'ROC of {name}')}</div>"
            f"<p class=note>A case is positive when P(COVID-19) &ge; the threshold.</p>"
            f"<table><tr>{head}</tr>{body}</table>")
    return row, part


def cohort_html(rows: list[dict], labels: dict | None = None, failed: int = 0, n_boot: int = metrics.BOOTSTRAP,
                seed: int = 0) -> str:
    """The page for the done cases' ``rows`` (case id -> label in ``labels``, or None without labels)."""
    names = classifiers(rows)
    labelled = sum(1 for r in rows if r["case_id"] in (labels or {}))
    figures = [_img(strip_plot(rows, column, title, labels), title) for column, title in DISTRIBUTIONS]
    figures += [_img(strip_plot(rows, PREFIX + n, f"P(COVID-19), {n}", labels, probability=True), n) for n in names]
    parts = [f"<!DOCTYPE html><html><head><meta charset=utf-8><title>Cohort</title><style>{STYLE}</style></head><body>",
             "<h1>Cohort</h1><p><b>Research use only. Not a medical device; not for diagnosis.</b></p>",
             f"<p>{len(rows)} cases analyzed, {failed} failed (failures.csv)"
             + (f"; {labelled} with a label" if labels is not None else "") + ". Per-case values: cohort.csv.</p>",
             "<h2>Distributions</h2><div class=figs>" + "".join(figures) + "</div>"]
    if labels is None:
        parts.append("<p class=note>No labels given: run <code>covidct batch ... --labels LABELS.csv</code> for "
                     "ROC curves and the threshold table.</p>")
    else:
        summary, sections, missing = [], [], []
        for n in names:
            pairs = [(labels[r["case_id"]], float(r[PREFIX + n])) for r in rows
                     if r["case_id"] in labels and r.get(PREFIX + n) is not None]
            y = np.array([a for a, _ in pairs], int)
            p = np.array([b for _, b in pairs], float)
            if y.size == 0 or y.min() == y.max():
                missing.append(n)
                continue
            row, part = roc_section(n, y, p, n_boot, seed)
            summary.append(row)
            sections.append(part)
        parts.append(f"<h2>Discrimination against the labels</h2><p class=note>ROC AUC with its {n_boot}-resample "
                     "stratified bootstrap 95 % CI; the band around each curve is the pointwise 95 % band of the "
                     "resampled curves.</p>")
        if summary:
            parts.append("<table><tr><th>classifier</th><th>cases</th><th>COVID-19</th><th>ROC AUC</th>"
                         "<th>95 % CI</th><th>FPR at TPR 95 %</th></tr>" + "".join(summary) + "</table>")
        if missing:
            parts.append(f"<p class=note>No ROC for {html.escape(', '.join(missing))}: it needs labelled COVID-19 and "
                         "non-COVID cases with a P(COVID-19).</p>")
        parts += sections
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_cohort_html(path: Path, rows: list[dict], labels: dict | None = None, failed: int = 0,
                      n_boot: int = metrics.BOOTSTRAP) -> Path:
    """``cohort_html`` written atomically to ``path`` (the old page stays until the new one is complete)."""
    text = cohort_html(rows, labels, failed, n_boot)
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
