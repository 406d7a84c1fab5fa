"""Running a registered classifier on one CT and writing what it returns, for ``covidct analyze`` and ``classify``.

Every classifier is reached through ``classifiers.table`` and answers with one ``ClassifierResult``; nothing here
names a system. Outputs (docs/CONTRACTS.md): the default map as ``heatmap-MODEL.nrrd``, every other map as
``heatmap-MODEL-METHOD.nrrd`` and all of them under ``heatmaps: {METHOD: file}`` (for a DICOM input each also as a
Parametric Map ``.dcm``, under ``heatmaps_dicom``); a segment NAME as
``NAME-MODEL.seg.nrrd`` listed as ``NAME_segmentation`` (DeCoVNet's ``localization_segmentation``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import SimpleITK as sitk

from ..classifiers.interface import ClassifierResult
from ..classifiers.table import classifier_class, load_classifier, refusal
from ..errors import InputError
from ..io import CTVolume, to_input_grid, write_label_map, write_volume

Report = Callable[[float, str], None]


def needs_lungs(name: str) -> bool:
    """Whether classifier ``name`` wants the lung label map with the CT."""
    return bool(classifier_class(name).needs_lungs)


def picture_lungs(name: str) -> str | None:
    """The lung model classifier ``name`` finds a display-windowed picture's lungs with itself (``picture_lungs``),
    or None."""
    return getattr(classifier_class(name), "picture_lungs", None)


def picture_lung_model(name: str, ct: CTVolume) -> str | None:
    """The lung model classifier ``name`` runs itself on ``ct`` (``picture_lungs``, on a display-windowed 2-D
    picture), else None."""
    return picture_lungs(name) if ct.is_2d and ct.display_windowed else None


def run_classifier(name: str, ct: CTVolume, lungs: sitk.Image | None, device, progress: Report | None = None,
                   lesions: sitk.Image | None = None) -> ClassifierResult:
    """Classifier ``name`` on ``ct`` and its lung label map on the canonical grid (None when not segmented);
    ``lesions``, the lesion label map on the same grid, goes to a classifier that uses it (``needs_lesions``)."""
    reason = refusal(name, ct)
    if reason:
        raise InputError(ct.source, reason)
    classifier = load_classifier(name, device)
    if getattr(classifier, "needs_lesions", False):
        return classifier.run(ct, lungs, progress, lesions=lesions)
    return classifier.run(ct, lungs, progress)


def heatmap_file(name: str, method: str, default: bool) -> str:
    return f"heatmap-{name}.nrrd" if default else f"heatmap-{name}-{method}.nrrd"


def write_outputs(name: str, run: ClassifierResult, ct: CTVolume, folder: Path, dicom=None,
                  submit: Callable | None = None) -> dict:
    """Write the run's maps and segments on the input's grid into ``folder``; its report.json entry. ``dicom``
    (pipeline.dicom_outputs.DicomOutputs, for a DICOM input): each map also as a Parametric Map, listed under
    ``heatmaps_dicom: {METHOD: file}``. ``submit(function, *args)``: where the map and segment files are written
    (e.g. a thread pool's ``submit``, so that compressing them overlaps the next classifier; the caller then waits for
    every write and sees its error); by default here and now."""
    write = submit or (lambda function, *args: function(*args))
    entry = run.summary()
    files, dicom_files = {}, {}
    for method, image in run.heatmaps.items():
        files[method] = heatmap_file(name, method, method == run.default_heatmap)
        on_input = to_input_grid(image, ct)
        write(write_volume, on_input, folder / files[method])
        dcm = files[method][:-len(".nrrd")] + ".dcm"
        if dicom is not None and dicom.parametric_map(on_input, folder / dcm, name, method):
            dicom_files[method] = dcm
    if files:
        entry["heatmap"] = files[run.default_heatmap]
        entry["heatmaps"] = files
    if dicom_files:
        entry["heatmaps_dicom"] = dicom_files
    for segment, (mask, description) in run.segments.items():
        entry[f"{segment}_segmentation"] = f"{segment}-{name}.seg.nrrd"
        described = description if isinstance(description, tuple) else (description,)
        write(write_label_map, to_input_grid(mask, ct), folder / entry[f"{segment}_segmentation"], described)
    return entry


def csv_row(path: str, run: ClassifierResult) -> dict:
    """One row of ``covidct classify``'s CSV: path, probability, label, then the model's scalar fields."""
    return {"path": path, **run.csv_columns()}
