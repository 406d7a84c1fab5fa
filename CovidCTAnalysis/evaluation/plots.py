"""ROC, precision-recall and reliability plots (matplotlib's object API on the Agg canvas: no display and no pyplot
global state, so plots can be drawn in worker threads and processes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def figure(width: float = 4.2, height: float = 4.2, dpi: int = 110):
    """(Figure, Axes) on an Agg canvas, without pyplot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def png_bytes(fig) -> bytes:
    """The figure as PNG bytes (for embedding in HTML)."""
    import io

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def roc_plot(y, p, path: Path, title: str, auc: float, ci: list[float] | None, fpr95: float | None = None) -> Path:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, p)
    fig, ax = figure()
    draw_roc(ax, fpr, tpr, title, auc, ci, fpr95)
    fig.tight_layout()
    fig.savefig(path)
    return path


def draw_roc(ax, fpr, tpr, title: str, auc: float, ci: list[float] | None, fpr95: float | None = None,
             band: dict | None = None) -> None:
    """An ROC curve on ``ax``, its AUC (and CI) in the legend; ``band``: ``metrics.roc_band``'s pointwise 95 % band
    drawn around it."""
    label = f"AUC {auc:.3f}" + (f" [{ci[0]:.3f}-{ci[1]:.3f}]" if ci else "")
    if band is not None:
        ax.fill_between(band["grid"], band["low"], band["high"], step="post", alpha=0.25, lw=0,
                        label="bootstrap 95% band")
    ax.plot(fpr, tpr, lw=2, label=label)
    ax.plot([0, 1], [0, 1], ls=":", c="gray", lw=1)
    if fpr95 is not None:
        ax.axhline(0.95, ls="--", c="tab:red", lw=0.8)
        ax.plot([fpr95], [0.95], "o", c="tab:red", label=f"FPR at TPR 95% = {fpr95:.2f}")
    ax.set(xlabel="false-positive rate (1 - specificity)", ylabel="true-positive rate (sensitivity)",
           title=title, xlim=(-0.01, 1.01), ylim=(-0.01, 1.01))
    ax.legend(loc="lower right", fontsize=8)


def pr_plot(y, p, path: Path, title: str, ap: float, ci: list[float] | None) -> Path:
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(y, p)
    fig, ax = figure()
    label = f"AP {ap:.3f}" + (f" [{ci[0]:.3f}-{ci[1]:.3f}]" if ci else "")
    ax.step(recall, precision, where="post", lw=2, label=label)
    ax.axhline(float(np.mean(y)), ls=":", c="gray", lw=1, label=f"prevalence {np.mean(y):.2f}")
    ax.set(xlabel="recall (sensitivity)", ylabel="precision (PPV)", title=title, xlim=(-0.01, 1.01),
           ylim=(-0.01, 1.01))
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return path


def reliability_plot(calibration: dict, path: Path, title: str) -> Path:
    bins = [b for b in calibration["bins"] if b["count"]]
    fig, ax = figure()
    ax.plot([0, 1], [0, 1], ls=":", c="gray", lw=1, label="perfect calibration")
    centres = [(b["low"] + b["high"]) / 2 for b in bins]
    ax.bar(centres, [b["fraction_positive"] for b in bins], width=0.09, alpha=0.6, label="fraction COVID-19")
    ax.plot([b["mean_probability"] for b in bins], [b["fraction_positive"] for b in bins], "o-", c="tab:red",
            label=f"ECE {calibration['ece']:.3f}")
    for c, b in zip(centres, bins):
        ax.text(c, 0.02, str(b["count"]), ha="center", fontsize=7)
    ax.set(xlabel="predicted P(COVID-19)", ylabel="observed fraction COVID-19", title=title, xlim=(0, 1),
           ylim=(0, 1.02))
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return path
