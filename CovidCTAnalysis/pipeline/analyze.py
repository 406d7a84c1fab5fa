"""`covidct analyze`: the full pipeline for one CT.

Stages, in order: ``load`` (or ``demo`` then ``load``), ``lungs``, ``lesions``, ``classifiers``, ``report``. Each
emits progress events and is timed. A stage whose model this version does not ship is recorded in the report's
``unavailable`` section instead of pretending. Every output is written into a staging folder inside OUTDIR and moved
into place only when the whole run has succeeded, so a failed run leaves no partial output; one run owns OUTDIR at a
time, and a new analysis replaces an earlier one in it as a whole (outfolder.py); report.json lists the files. A 2-D
image in which the lung finder finds no lung is not refused: it goes on without a lung mask, and the report's
``warnings`` say what that leaves out (lungs.py). A volume whose lungs are not wholly inside the scan gets no severity
band, and one whose pixels are coarser than lesions-unet was trained on keeps its numbers; both with a warning
(coverage.py).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from .. import __version__
from ..errors import InputError
from ..io import CTVolume, load_ct, to_input_grid, write_label_map
from ..labels import LESION_SEGMENTS, LUNG_SEGMENTS
from ..classifiers.interface import SLICE, VOLUME
from ..lungs.select import DEFAULT_LUNG_MODEL
from ..models import select_device, user_weights
from ..models.calibration import calibrated_entry, consensus
from ..models.registry import CONTRACT_MODELS, Registry, load_registry
from ..classifiers.table import classifier_names, refusal
from .background import BackgroundWrites
from .classifiers import picture_lung_model, run_classifier, write_outputs
from .coverage import PARTIAL_LUNGS_NOT_GRADED, coarse_pixel_warning, partial_lungs_warning
from .dicom_outputs import DicomOutputs
from .lungs import find_lungs
from .outfolder import OutputFolder
from .privacy import Privacy, patient_section
from .progress import Emit, Progress
from .report import build_report, demo_truth, write_html, write_json
from .report_images import SliceNames, heatmap_figures, key_figures
from .report_pdf import write_pdf

LUNG_MODEL = DEFAULT_LUNG_MODEL
LESION_MODEL = "lesions-unet"


@dataclass(frozen=True)
class AnalyzeOptions:
    device: str = "auto"
    models: str = "all"  # "all" or comma-separated classifier names
    spacing: tuple[float, float, float] | None = None
    window: tuple[float, float] | None = None
    demo_size: tuple[int, int, int] = (256, 256, 96)
    demo_seed: int = 0
    keep_identifiers: bool = False  # patient name, ID and birth date in DICOM outputs and reports (issue 22)


def selected_classifiers(models: str, registry: Registry) -> list[str]:
    """Classifier names to run: 'all' = every runnable classifier; a named one must exist (else exit 2)."""
    if models.strip() == "all":
        return classifier_names(registry)
    names = [m.strip() for m in models.split(",") if m.strip()]
    if not names:
        raise InputError(None, "--models needs 'all' or a comma-separated list of classifier names")
    for name in names:
        entry = registry.get(name)  # raises 'not available in this version' for contract names not shipped
        if entry.task != "classification":
            raise InputError(None, f"--models takes classifiers; {name} is a {entry.task} model")
    return names


def analyze(
    source: Path | None,
    outdir: Path,
    options: AnalyzeOptions = AnalyzeOptions(),
    emit: Emit | None = None,
) -> dict:
    """Analyze the CT at ``source`` (or a generated demo CT when ``source`` is None) into ``outdir``; returns the report."""
    registry = load_registry()
    classifiers = selected_classifiers(options.models, registry)
    privacy = Privacy(source, options.keep_identifiers)  # no patient identifiers in texts by default (privacy.py)
    progress = Progress(privacy.emit(emit))

    # one run per folder; a failed run leaves only what was there; the input is never removed (outfolder.py)
    with OutputFolder(outdir, keep=() if source is None else (Path(source),)) as folder, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="covidct-writer") as pool:
        report = _run(source, folder.staging, outdir, options, registry, classifiers, progress, privacy,
                      BackgroundWrites(pool))
        folder.commit()
    return report


def _run(source, staging: Path, outdir: Path, options, registry: Registry, classifiers, progress: Progress,
         privacy: Privacy, writes: BackgroundWrites) -> dict:
    """The pipeline into ``staging``; segmentations and heatmaps are written by ``writes`` (background.py)."""
    demo = None
    if source is None:
        with progress.stage("demo", "generating the demo chest CT") as report:
            from ..demo import make_demo_ct, write_demo_case

            demo = make_demo_ct(size=options.demo_size, seed=options.demo_seed)
            source = write_demo_case(demo, staging)
            report(1.0, f"demo CT {options.demo_size} written to {source.name}")

    with progress.stage("load", f"reading {source}") as report:
        ct: CTVolume = load_ct(source, spacing=options.spacing, window=options.window)
        privacy.add(ct.input_files)
        report(1.0, f"{ct.kind}, size {list(ct.image.GetSize())}")
    # the demo CT lives in staging until the run succeeds; name it where it will be
    input_path = outdir / source.name if demo is not None else Path(source)
    device = select_device(options.device)  # after reading: bad input is reported without loading torch

    versions: dict[str, str] = {}
    unavailable: dict[str, str] = {}
    warnings: list[str] = list(ct.warnings)  # e.g. a DICOM series without slice positions
    dicom = DicomOutputs(ct, warnings, options.keep_identifiers)  # .seg.dcm files when the input is DICOM

    with progress.stage("lungs", "segmenting the lungs") as report:
        from ..lungs import lung_volumes_ml

        found = find_lungs(ct, LUNG_MODEL, device, report)  # a 2-D image without lungs goes on (lungs.py)
        lung_labels = to_input_grid(found.labels, ct)
        writes(write_label_map, lung_labels, staging / "lungs.seg.nrrd", LUNG_SEGMENTS)
        versions[LUNG_MODEL] = registry.get(LUNG_MODEL).version
        dicom.segmentation(lung_labels, staging / "lungs.seg.dcm", LUNG_SEGMENTS, (LUNG_MODEL, versions[LUNG_MODEL]),
                           "lungs")
        partial = None  # the warning when the lungs are not wholly inside the scan (coverage.py)
        if found.found:
            lungs, pleural, lung_ml = found.labels, found.pleural, lung_volumes_ml(found.labels)
            partial = partial_lungs_warning(ct, found.labels)
            if partial is not None:
                warnings.append(partial)
        else:
            lungs, pleural, lung_ml = None, None, None
            warnings.append(found.warning)

    lesions = None  # canonical lesion label map, when a lesion model ships
    lesion_numbers = None
    with progress.stage("lesions", "segmenting lesions") as report:
        if LESION_MODEL in registry.entries:
            from ..lesions import quantify, segment_lesions

            lesions = segment_lesions(ct.image, lungs, display_windowed=ct.display_windowed, device=device,
                                      progress=report, pleural=pleural, whole_image=lungs is None)
            lesion_labels = to_input_grid(lesions, ct)
            writes(write_label_map, lesion_labels, staging / "lesions.seg.nrrd", LESION_SEGMENTS)
            version = registry.get(LESION_MODEL).version
            dicom.segmentation(lesion_labels, staging / "lesions.seg.dcm", LESION_SEGMENTS, (LESION_MODEL, version),
                               "lesions")
            lesion_numbers = quantify(lesions, found.labels)
            if lungs is None:  # no lung mask: volumes only
                lesion_numbers = without_lung_numbers(lesion_numbers)
            elif ct.is_2d:  # the MosMedData scale grades the whole lungs; one slice does not show them
                lesion_numbers = not_graded(lesion_numbers, "not graded: the scale needs the whole lungs, "
                                                            "not a single slice")
            elif partial is not None:  # nor does a scan that holds only part of them; % involvement stays
                lesion_numbers = not_graded(lesion_numbers, PARTIAL_LUNGS_NOT_GRADED)
            coarse = coarse_pixel_warning(ct, LESION_MODEL, lungs_found=lungs is not None)
            if coarse is not None:  # the numbers stay as measured (coverage.py)
                warnings.append(coarse)
            versions[LESION_MODEL] = registry.get(LESION_MODEL).version
        else:
            unavailable["lesions"] = f"model {LESION_MODEL} is not available in this version"
            report(1.0, unavailable["lesions"])

    classifier_results: dict[str, dict] = {}
    heatmaps: dict[str, dict] = {}  # model -> {method: map}, the default method first
    with progress.stage("classifiers", f"running {len(classifiers)} classifier(s)") as report:
        if options.models.strip() == "all":
            for name, task in CONTRACT_MODELS.items():
                if task == "classification" and name not in classifiers:
                    unavailable[name] = f"model {name} is not available in this version"
        if not classifiers:
            report(1.0, "no classifier is available in this version")
        for i, name in enumerate(classifiers):
            reason = refusal(name, ct)
            if reason:
                unavailable[name] = reason
                continue
            share = _share(report, i, len(classifiers), name)
            try:
                run = run_classifier(name, ct, lungs, device, share, lesions)
            except InputError as exc:  # this input is not for this classifier (a thin stack without lungs ...)
                unavailable[name] = exc.problem
                continue
            # calibrated where the model ships a calibration, the raw probability beside it (models/calibration.py)
            entry = write_outputs(name, run, ct, staging, dicom, submit=writes)
            classifier_results[name] = calibrated_entry(entry, registry.get(name).calibration,
                                                        SLICE if ct.is_2d else VOLUME)
            if registry.get(name).validation:  # how far these weights were validated, kept with the result
                classifier_results[name]["validation"] = registry.get(name).validation
            if run.heatmaps:
                heatmaps[name] = {run.default_heatmap: run.heatmap, **run.heatmaps}
            versions[name] = run.version
            framing = picture_lung_model(name, ct)  # a picture's lungs, found by the classifier itself
            if framing is not None:
                versions.setdefault(framing, registry.get(framing).version)
        writes.wait()  # every file on disk (or its error raised) before the report lists the folder

    ran = list(versions)  # every model that ran, a picture's lung model for a classifier's framing included
    warnings.extend(user_weights.warnings_for(registry, ran))  # a user's own weights ran (models/user_weights.py)
    patient = patient_section(ct.input_files) if options.keep_identifiers and ct.input_files else None
    agreement = consensus({n: r["probability"] for n, r in classifier_results.items()},
                          registry.disagreement_threshold, registry.consensus.get("validation"),
                          SLICE if ct.is_2d else VOLUME)
    if agreement.get("validation") and any(registry.get(n).user_weights for n in agreement["models"]):
        agreement["validation"] = f"includes {user_weights.USER_VALIDATION}"
    truth = None if demo is None else demo_truth(demo)  # once, for report.html and report.json
    with progress.stage("report", "rendering report.html and report.pdf"):
        # every text derived from the input, without the patient's identifiers (privacy.py)
        shown = replace(ct, notes=tuple(privacy.text(n) for n in ct.notes))
        names = SliceNames(ct.image, ct, keep_identifiers=options.keep_identifiers)
        # the key images, lesion maps and heatmap images, made once for report.html and report.pdf
        figures = key_figures(ct.image, lungs, lesions, names=names), heatmap_figures(ct.image, heatmaps, names=names)
        write_html(staging / "report.html", patient=patient, ct=shown, input_path=Path(privacy.text(str(input_path))),
                   lungs=lungs, lesions=lesions, lung_ml=lung_ml, lesion_numbers=lesion_numbers,
                   classifiers=privacy.data(classifier_results), heatmaps=heatmaps,
                   unavailable=privacy.data(unavailable), timings_s=progress.timings_s, version=__version__,
                   warnings=privacy.data(warnings), consensus=agreement, keep_identifiers=options.keep_identifiers,
                   truth=truth, figures=figures)
        result = privacy.data(build_report(ct=ct, input_path=input_path, truth=truth, lung_ml=lung_ml,
                                           lesion_numbers=lesion_numbers, classifiers=classifier_results,
                                           versions=versions, unavailable=unavailable, timings_s=progress.timings_s,
                                           warnings=warnings, keep_identifiers=options.keep_identifiers))
        result["consensus"] = agreement
        own = {n: registry.get(n).sha256 for n in ran if registry.get(n).user_weights}
        if own:
            result["user_weights"] = own
        if patient is not None:
            result["patient"] = patient
        write_pdf(staging / "report.pdf", result, *figures)
    result["timings_s"] = dict(progress.timings_s)  # the report stage included
    result["files"] = sorted({p.name for p in staging.iterdir()} | {"report.json"})
    write_json(staging / "report.json", result)
    return result


def without_lung_numbers(numbers: dict) -> dict:
    """Lesion numbers of an image without a lung mask: the lesion volumes stay; % involvement, the lung volumes and
    the severity band (which grades % involvement) are null."""
    out = dict(numbers, percent_involvement=None, lung_ml=None)
    out["severity"] = dict(numbers["severity"], band=None,
                           description="not graded: no lung mask, so no % involvement")
    return out


def not_graded(numbers: dict, description: str) -> dict:
    """Lesion numbers with the severity band withheld (null) and ``description`` saying why; the rest stays."""
    return dict(numbers, severity=dict(numbers["severity"], band=None, description=description))


def _share(report, index: int, count: int, name: str):
    """The classifier stage's progress callback for classifier ``index`` of ``count``: its own slice of 0..1."""
    def emit(fraction: float, message: str) -> None:
        text = message if message.startswith(f"{name}:") else f"{name}: {message}"
        report((index + min(max(fraction, 0.0), 1.0)) / count, text)
    return emit
