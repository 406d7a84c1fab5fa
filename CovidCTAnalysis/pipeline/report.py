"""report.json (docs/CONTRACTS.md, 'report.json') and a readable report.html with key images."""

from __future__ import annotations

import html
import json
from pathlib import Path

import SimpleITK as sitk

from ..io import CTVolume
from ..io.writers import atomic_path
from .report_images import (FROM_THE_FEET, SliceNames, attention_charts, figure_png, heatmap_figures,
                            key_figures)


#: Keys of a classifier's report.json entry that hold canonical axial slice indices: as dict keys, as list entries.
SLICE_INDEX_KEYS = ("slice_attention", "slice_probabilities", "slice_relevance")
SLICE_INDEX_LISTS = ("top_slices", "most_probable_slices", "refined_slices")


def build_report(*, ct: CTVolume, input_path: Path, truth, lung_ml, lesion_numbers, classifiers, versions,
                 unavailable, timings_s, warnings=(), keep_identifiers: bool = False) -> dict:
    """The report dictionary; every top-level key of the contract is present (null where a stage is unavailable).
    ``warnings``: what the reader must know about the results (a 2-D image without a lung mask), always a list.
    A classifier entry that reports slice indices gets ``slice_positions`` (``with_slice_positions``); DICOM file
    names in it lose the patient's identifiers unless ``keep_identifiers``."""
    from .. import __version__

    names = SliceNames(ct.image, ct, keep_identifiers=keep_identifiers)  # as report.html names slices
    report = {
        "input": {**ct.summary(), "path": str(input_path),
                  "window": list(ct.window) if ct.window else None},
        "lungs": lung_ml,
        "lesions": lesion_numbers,
        "classifiers": {name: with_slice_positions(entry, names) for name, entry in classifiers.items()},
        "timings_s": dict(timings_s),
        "models": versions,
        "unavailable": unavailable,
        "warnings": list(warnings),
        "version": __version__,
    }
    if truth is not None:  # a demo CT's ``demo_truth``
        report["demo_truth"] = truth
    return report


def slice_indices(entry: dict) -> list[int]:
    """The canonical axial slice indices a classifier's report entry names (``SLICE_INDEX_KEYS``' keys and
    ``SLICE_INDEX_LISTS``' entries), sorted, each once."""
    found = set()
    for key in SLICE_INDEX_KEYS + SLICE_INDEX_LISTS:
        value = entry.get(key)
        if isinstance(value, (dict, list, tuple)):
            for z in value:
                try:
                    found.add(int(z))
                except (TypeError, ValueError):
                    continue
    return sorted(found)


def with_slice_positions(entry, names: SliceNames):
    """A classifier's report entry plus ``slice_positions``: {index: {"z_mm", "dicom_instance", "file"}} for every
    slice index it names (``SliceNames.position``: the z, instance and file report.html names the slice by; null
    where unknown). Unchanged (the same object) when it names none; the other keys are never changed."""
    if not isinstance(entry, dict):
        return entry
    indices = [z for z in slice_indices(entry) if 0 <= z < names.size[2]]
    if not indices:
        return entry
    return {**entry, "slice_positions": {z: names.position(z) for z in indices}}


def demo_truth(demo) -> dict:
    """The generated demo CT's exact ground truth, so a reader can compare it with what was measured."""
    import numpy as np

    voxel_ml = float(np.prod(demo.image.GetSpacing())) / 1000.0
    lungs = sitk.GetArrayViewFromImage(demo.lungs)
    lesions = sitk.GetArrayViewFromImage(demo.lesions)
    return {
        "lungs": {
            "right_ml": float((lungs == 1).sum() * voxel_ml),
            "left_ml": float((lungs == 2).sum() * voxel_ml),
            "total_ml": float((lungs > 0).sum() * voxel_ml),
        },
        "lesions": {
            "ggo_ml": float((lesions == 1).sum() * voxel_ml),
            "consolidation_ml": float((lesions == 2).sum() * voxel_ml),
            "total_ml": float((lesions > 0).sum() * voxel_ml),
        },
        "lesion_list": [
            {"label": l.label, "side": l.side, "centre_mm": list(l.centre_mm), "volume_ml": l.volume_ml,
             "touches_pleura": l.touches_pleura}
            for l in demo.lesion_list
        ],
        "seed": demo.seed,
    }


def _atomic_write_text(path: Path, text: str) -> None:
    """Written through io.atomic_path like every other output (mode from the umask, as the volumes get)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, report: dict) -> None:
    _atomic_write_text(path, json.dumps(report, indent=2) + "\n")


def _table(rows: list[tuple[str, str]], notes: dict[str, str] | None = None) -> str:
    """Rows of (heading, text); ``notes``: {heading: a smaller grey line under its text}."""
    notes = notes or {}

    def cell(k: str, v: str) -> str:
        note = f'<br><span class="note">{html.escape(notes[k])}</span>' if notes.get(k) else ""
        return f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}{note}</td></tr>"

    return f"<table>{''.join(cell(k, v) for k, v in rows)}</table>"


def _ml(value: float) -> str:
    return f"{value:,.1f} mL"


def write_html(path: Path, *, ct: CTVolume, input_path: Path, lungs, lesions, lung_ml, lesion_numbers, classifiers,
               unavailable, timings_s, heatmaps=None, version: str, warnings=(), patient=None, consensus=None,
               keep_identifiers: bool | None = None, truth: dict | None = None, figures=None) -> None:
    """A self-contained page: input, measurements, key axial/coronal images with overlays (embedded PNG), timings.
    ``truth``: a demo CT's ``demo_truth``, shown beside what was measured. A classifier's ``validation`` (how far its
    weights were validated) is shown under its result.
    ``patient``: a table of name, ID and birth date, only when the user asked to keep identifiers.
    Slices are named as the reader's viewer names them (report_images.SliceNames: z in mm, DICOM instance and file,
    the input file's own index); DICOM file names lose the patient's identifiers unless ``keep_identifiers`` (by
    default: when ``patient`` is given). ``figures``: (key figures, heatmap figures) when the caller has made them
    (``covidct analyze`` makes them once for report.html and report.pdf), else they are made here."""
    keep = patient is not None if keep_identifiers is None else keep_identifiers
    names = SliceNames(ct.image, ct, keep_identifiers=keep)
    size = " × ".join(str(s) for s in ct.image.GetSize())
    spacing = " × ".join(f"{s:.3g}" for s in ct.image.GetSpacing())
    sections = [] if not patient else ["<h2>Patient</h2>", _table([(k.replace("_", " "), str(v))
                                                                      for k, v in patient.items()])]
    sections += [
        "<h2>Input</h2>",
        _table(
            [("file", str(input_path)), ("kind", ct.kind), ("size (voxels)", size), ("spacing (mm)", spacing)]
            + ([("axial slices", names.z_range())] if names.z_range() else [])
            + ([("intensities", "display-windowed 8-bit image mapped to approximate HU "
                 f"(window width {ct.window[0]:g}, level {ct.window[1]:g}); HU-based results are approximate")]
               if ct.display_windowed else [])
            + [("note", n) for n in ct.notes]
        ),
    ]
    if warnings:
        sections += ["<h2>Warnings</h2>", "".join(f'<p class="warning">{html.escape(w)}</p>' for w in warnings)]
    if lung_ml is not None:
        sections += ["<h2>Lungs</h2>", _table([("right lung", _ml(lung_ml["right_ml"])),
                                                ("left lung", _ml(lung_ml["left_ml"])),
                                                ("both lungs", _ml(lung_ml["total_ml"]))])]
    if lesion_numbers is not None:
        pi = lesion_numbers["percent_involvement"]
        sections += ["<h2>Lesions</h2>", _table([
            ("ground-glass opacity", _ml(lesion_numbers["ggo_ml"])),
            ("consolidation", _ml(lesion_numbers["consolidation_ml"])),
            ("all lesions", _ml(lesion_numbers["total_ml"])),
            ("involvement right / left / total",
             f"{pi['right']:.1f} % / {pi['left']:.1f} % / {pi['total']:.1f} %" if pi is not None
             else "not measured: no lung mask"),
        ])]
    if lesion_numbers is not None and lesion_numbers.get("severity"):
        sev = lesion_numbers["severity"]
        band = f"{sev['band']}: " if sev.get("band") else ""
        sections += [_table([("severity band", f"{band}{sev['description']} ({sev['scale']})")])]
    if truth is not None:
        sections += ["<h2>Demo CT: measured against the truth</h2>",
                     '<p class="note">The demo CT is generated with known lungs and lesions; this is how far the '
                     "measurements above are from them.</p>", _truth_table(lung_ml, lesion_numbers, truth)]
    if classifiers:
        rows = [(name, _classifier_line(r, names)) for name, r in classifiers.items()]
        if consensus and consensus.get("probability") is not None:
            flag = (f"; the classifiers disagree (spread {consensus['spread']:.2f} > {consensus['threshold']:.2f})"
                    if consensus["disagreement"] else f"; spread {consensus['spread']:.2f}")
            rows.append((f"consensus of {len(consensus['models'])}", f"P(COVID-19) = {consensus['probability']:.3f}"
                         f" (mean of the calibrated probabilities){flag}"))
        notes = {name: f"validation: {r['validation']}" for name, r in classifiers.items() if r.get("validation")}
        if consensus and consensus.get("validation"):
            notes[f"consensus of {len(consensus['models'])}"] = f"validation: {consensus['validation']}"
        sections += ["<h2>Classifiers</h2>", _table(rows, notes=notes)]
    if unavailable:
        sections += ["<h2>Not in this version</h2>", _table(sorted(unavailable.items()))]
    key, heat = figures if figures is not None else (key_figures(ct.image, lungs, lesions, names),
                                                     heatmap_figures(ct.image, heatmaps or {}, names))
    images = ([(caption, figure_png(rgb, mm)) for caption, rgb, mm in [*key, *heat]]
              + attention_charts(classifiers or {}, names))
    figures = "".join(
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for caption, data in images
    )
    note = names.note()
    sections += ["<h2>Key images</h2>", f'<p class="note">{html.escape(note)}</p>' if note else "",
                 f'<div class="figs">{figures}</div>',
                 "<h2>Timings</h2>", _table([(k, f"{v:.2f} s") for k, v in timings_s.items()])]
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>CovidCTAnalysis report — {html.escape(input_path.name)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em auto; max-width: 70em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1em; }}
th, td {{ text-align: left; padding: 0.25em 1em 0.25em 0; border-bottom: 1px solid #ddd; vertical-align: top; }}
.figs {{ display: flex; flex-wrap: wrap; gap: 1em; }}
figure {{ margin: 0; }} img {{ max-width: 34em; image-rendering: auto; background: #000; }}
.disclaimer, .warning {{ color: #a33; }}
td .note {{ color: #666; font-size: 0.9em; }}
</style></head><body>
<h1>CovidCTAnalysis report</h1>
<p class="disclaimer">Research use only; not for diagnosis. CovidCTAnalysis {html.escape(version)}.</p>
{''.join(sections)}
</body></html>
"""
    _atomic_write_text(path, page)


def _truth_table(lung_ml, lesion_numbers, truth: dict) -> str:
    """Rows of measured, true and measured - true (mL; % of the lungs for the involvement)."""
    rows = []
    pairs = [("right lung", lung_ml, truth["lungs"], "right_ml"), ("left lung", lung_ml, truth["lungs"], "left_ml"),
             ("ground-glass opacity", lesion_numbers, truth["lesions"], "ggo_ml"),
             ("consolidation", lesion_numbers, truth["lesions"], "consolidation_ml"),
             ("all lesions", lesion_numbers, truth["lesions"], "total_ml")]
    for label, measured, true, key in pairs:
        if measured is not None and measured.get(key) is not None:
            rows.append((label, measured[key], true[key], "mL"))
    involvement = ((lesion_numbers or {}).get("percent_involvement") or {}).get("total")
    if involvement is not None and truth["lungs"]["total_ml"] > 0:
        rows.append(("involvement", involvement, 100.0 * truth["lesions"]["total_ml"] / truth["lungs"]["total_ml"],
                     "%"))
    def cells(m: float, t: float, unit: str) -> str:  # involvement to 0.01 %, its difference in points
        digits, off = (2, "points") if unit == "%" else (1, unit)
        return f"<td>{m:,.{digits}f} {unit}</td><td>{t:,.{digits}f} {unit}</td><td>{m - t:+,.{digits}f} {off}</td>"

    body = "".join(f"<tr><th>{html.escape(label)}</th>{cells(m, t, unit)}</tr>" for label, m, t, unit in rows)
    return f"<table><tr><th></th><th>measured</th><th>true</th><th>difference</th></tr>{body}</table>"


def _classifier_line(result: dict, names: SliceNames | None = None) -> str:
    """One readable line per classifier: probability, label and the numbers its paper reports; slices named by
    ``names`` (without it, counted from the feet, 1 = lowest slice)."""
    parts = [f"P(COVID-19) = {result['probability']:.3f} → {result['label']}"]
    if result.get("probability_raw") is not None:
        parts[0] += f" (calibrated, {result['calibration']}; uncalibrated {result['probability_raw']:.3f})"
    if "corona_score_cm3" in result:
        parts.append(f"Corona score {result['corona_score_cm3']:.1f} cm³ "
                     f"({result['positive_slices']}/{result['lung_slices']} lung slices positive)")
    loc = result.get("localization")
    if isinstance(loc, dict) and loc.get("centre_mm"):
        centre = ", ".join(f"{v:.0f}" for v in loc["centre_mm"])
        parts.append(f"localized lesion {loc['volume_ml']:.1f} mL at ({centre}) mm LPS")
    if result.get("percent_infected") is not None:
        sides = [f"{side} {result[f'percent_infected_{side}']:.1f} %" for side in ("right", "left")
                 if result.get(f"percent_infected_{side}") is not None]
        parts.append(f"infected lung {result['percent_infected']:.1f} % of its k-means lung regions"
                     + (f" ({', '.join(sides)})" if sides else ""))
    if result.get("top_slices"):
        zs = [int(z) for z in result["top_slices"]]
        if names is not None and all(0 <= z < names.size[2] for z in zs) and not names.where(zs[0]).startswith(
                "slice "):
            parts.append("most attended axial slices: " + "; ".join(names.where(z) for z in zs))
        else:
            parts.append("most attended axial slices " + ", ".join(str(z + 1) for z in zs) + f" ({FROM_THE_FEET})")
    return "; ".join(parts)
