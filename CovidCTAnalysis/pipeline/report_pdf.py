"""report.pdf beside report.html (issue 22): a document a hospital can file, drawn with matplotlib's PDF backend.

Pages (A4 portrait):
1. summary: input (path already without patient identifiers), lung volumes and % involvement per lung, the severity
   band, every classifier's P(COVID-19) (with the uncalibrated value where a calibration was applied), the
   consensus when there is one, model versions, warnings, and "research use only";
2. key images: the axial and coronal slices of report.html with lung contours and lesion fills;
3. on: each classifier's heatmaps, two per page.
Every text comes from the report dictionary (the same numbers as report.json); figures come from
``report_images`` (the same pictures as report.html; their captions name slices as report.html does when
``analyze`` passes the CT's ``SliceNames``, else counted from the feet, 1 = lowest slice). Written through
``io.writers.atomic_path``. Matplotlib is used without pyplot (a Figure per page), so no global state or display is
touched.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..io.writers import atomic_path

A4 = (8.27, 11.69)  # inches
#: Where the figures of a picture page go, in figure coordinates (left, bottom, width, height): two per page,
#: image above, caption below. The page test checks that these regions are not blank.
IMAGE_SLOTS = ((0.08, 0.53, 0.84, 0.38), (0.08, 0.07, 0.84, 0.38))
DISCLAIMER = "Research use only. Not a medical device; not for diagnosis."
STYLES = {"h": (12, "black", "bold"), "w": (9, "#a33", "normal"), "t": (9, "black", "normal")}  # size, colour, weight

Figure = tuple[str, np.ndarray, tuple[float, float]]  # caption, RGB uint8, (row mm, column mm)


def _ml(value) -> str:
    return "-" if value is None else f"{value:,.1f} mL"


def summary_lines(report: dict) -> list[tuple[str, str]]:
    """(style, text) lines of the summary page: "h" headings, "t" text, "w" warnings."""
    lines: list[tuple[str, str]] = [("w", DISCLAIMER)]
    patient = report.get("patient")
    if patient:
        lines += [("h", "Patient"),
                  ("t", f"name {patient['name']}   ID {patient['id']}   born {patient['birth_date']}")]
    inp = report["input"]
    lines += [("h", "Input"), ("t", f"file {inp['path']}"),
              ("t", f"kind {inp.get('kind', '-')}, size {' x '.join(map(str, inp['size']))} voxels, spacing "
                    f"{' x '.join(f'{v:.3g}' for v in inp['spacing_mm'])} mm"
                    + (", display-windowed (approximate HU)" if inp.get("display_windowed") else ""))]
    lungs = report.get("lungs")
    lines.append(("h", "Lungs"))
    lines.append(("t", f"right {_ml(lungs['right_ml'])}, left {_ml(lungs['left_ml'])}, total {_ml(lungs['total_ml'])}"
                  if lungs else "no lung mask"))
    lesions = report.get("lesions")
    if lesions:
        lines += [("h", "Lesions"), ("t", f"ground-glass opacity {_ml(lesions['ggo_ml'])}, consolidation "
                                          f"{_ml(lesions['consolidation_ml'])}, all {_ml(lesions['total_ml'])}")]
        pi = lesions.get("percent_involvement")
        lines.append(("t", f"involvement: right {pi['right']:.1f} %, left {pi['left']:.1f} %, total {pi['total']:.1f} %"
                      if pi else "involvement not measured: no lung mask"))
        severity = lesions.get("severity")
        if severity:
            band = f"{severity['band']}: " if severity.get("band") else ""
            lines.append(("t", f"severity band {band}{severity['description']} ({severity.get('scale', '')})"))
    lines.append(("h", "Classifiers: P(COVID-19)"))
    for name, result in (report.get("classifiers") or {}).items():
        raw = result.get("probability_raw")
        extra = f" (uncalibrated {raw:.3f})" if isinstance(raw, (int, float)) else ""
        lines.append(("t", f"{name}: {result['probability']:.3f}{extra} -> {result['label']}"))
    if not report.get("classifiers"):
        lines.append(("t", "no classifier ran"))
    consensus = report.get("consensus")
    if consensus and consensus.get("probability") is not None:
        flag = "; the classifiers DISAGREE" if consensus.get("disagreement") else ""
        lines.append(("t", f"consensus (mean of {len(consensus.get('models', []))}): "
                           f"{consensus['probability']:.3f}{flag}"))
        if consensus.get("validation"):
            lines.append(("t", f"  validation: {consensus['validation']}"))
    for name, reason in sorted((report.get("unavailable") or {}).items()):
        lines.append(("t", f"{name}: not run ({reason})"))
    lines += [("h", "Models"), ("t", ", ".join(f"{m} {v}" for m, v in (report.get("models") or {}).items()) or "-")]
    if report.get("warnings"):
        lines.append(("h", "Warnings"))
        lines += [("w", w) for w in report["warnings"]]
    lines.append(("t", f"CovidCTAnalysis {report.get('version', '')}"))
    return lines


def _text_page(lines: Sequence[tuple[str, str]]):
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=A4)
    fig.text(0.08, 0.95, "CovidCTAnalysis report", fontsize=18, weight="bold")
    y = 0.91
    for style, text in lines:
        size, colour, weight = STYLES.get(style, STYLES["t"])
        if style == "h":
            y -= 0.012
        for part in textwrap.wrap(text, 100) or [""]:
            if y < 0.04:
                break
            fig.text(0.08, y, part, fontsize=size, color=colour, weight=weight)
            y -= 0.022 if style == "h" else 0.017
    return fig


def _picture_pages(title: str, figures: Sequence[Figure]):
    from matplotlib.figure import Figure as MplFigure

    for start in range(0, len(figures), len(IMAGE_SLOTS)):
        fig = MplFigure(figsize=A4)
        fig.text(0.08, 0.95, title, fontsize=14, weight="bold")
        fig.text(0.08, 0.93, DISCLAIMER, fontsize=8, color="#a33")
        for slot, (caption, rgb, (row_mm, col_mm)) in zip(IMAGE_SLOTS, figures[start:start + len(IMAGE_SLOTS)]):
            ax = fig.add_axes(slot)
            ax.imshow(rgb, aspect=row_mm / col_mm, interpolation="bilinear")
            ax.set_axis_off()
            # below the image, as IMAGE_SLOTS says: a caption naming a DICOM file may take two lines
            ax.text(0.5, -0.015, "\n".join(textwrap.wrap(caption, 100)) or caption, transform=ax.transAxes,
                    ha="center", va="top", fontsize=9)
        yield fig


def write_pdf(path: Path, report: dict, key_figures: Sequence[Figure], heatmap_figures: Sequence[Figure]) -> None:
    """report.pdf at ``path`` (atomically): summary page, key-image page(s), heatmap page(s)."""
    from matplotlib.backends.backend_pdf import PdfPages

    with atomic_path(Path(path)) as tmp:
        with PdfPages(tmp, metadata={"Title": "CovidCTAnalysis report", "Creator": "CovidCTAnalysis",
                                     "Subject": DISCLAIMER}) as pdf:
            pdf.savefig(_text_page(summary_lines(report)))
            for fig in _picture_pages("Key images: lungs (contours) and lesions (filled)", key_figures):
                pdf.savefig(fig)
            for fig in _picture_pages("Classifier heatmaps", heatmap_figures):
                pdf.savefig(fig)
