"""The `covidct` command (docs/CONTRACTS.md, 'Command line').

Exit status: 0 success; 2 bad input or usage (one line on stderr naming the file and the problem, nothing written);
1 internal error (one line; set COVIDCT_DEBUG=1 for the traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

from . import __version__
from .errors import InputError, LungsNotFoundError, Terminated, UsageParser, raise_terminated
from .heap import keep_freed_memory


#: segment-lesions --model value for the intensity pseudo-mask of seed 001 section 2.7.2 (no weights).
PSEUDO_MASK = "pseudo-mask"


def _numbers(kind: type, text: str) -> tuple:
    """'1,2,3' -> (1, 2, 3); () when any item does not parse."""
    try:
        return tuple(kind(v) for v in text.split(","))
    except ValueError:
        return ()


def _spacing(text: str) -> tuple[float, float, float]:
    values = _numbers(float, text)
    if len(values) != 3 or not all(v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"--spacing needs three positive millimetre values X,Y,Z, not {text!r}")
    return values  # type: ignore[return-value]


def _window(text: str) -> tuple[float, float]:
    values = _numbers(float, text)
    if len(values) != 2 or values[0] <= 0:
        raise argparse.ArgumentTypeError(f"--window needs WIDTH,LEVEL in HU with a positive width, not {text!r}")
    return values  # type: ignore[return-value]


def demo_size(text: str) -> tuple[int, int, int]:
    """``--demo-size X,Y,Z`` of a generated thorax (voxels), within what the generator is meant for."""
    values = _numbers(int, text)
    if len(values) != 3 or not all(16 <= v <= 512 for v in values[:2]) or not 8 <= values[2] <= 300:
        raise argparse.ArgumentTypeError(f"--demo-size needs X,Y,Z with X,Y in 16..512 and Z in 8..300, not {text!r}")
    return values  # type: ignore[return-value]


def _seed(text: str) -> int:
    values = _numbers(int, text)
    if len(values) != 1 or not 0 <= values[0] < 2**32:
        raise argparse.ArgumentTypeError(f"--demo-seed needs a whole number from 0 to {2**32 - 1}, not {text!r}")
    return values[0]


def _port(text: str) -> int:
    port = int(text) if text.strip().isdigit() else -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return port


def _upload_mb(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of MiB")
    return int(text)


def _workers(text: str) -> int:
    values = _numbers(int, text)
    if len(values) != 1 or not 1 <= values[0] <= 256:
        raise argparse.ArgumentTypeError(f"--workers needs a whole number from 1 to 256, not {text!r}")
    return values[0]


def _device(preference: str, needs_torch: bool):
    """The torch.device for a model that runs on PyTorch; lungs-classic and the pseudo-mask run without PyTorch
    (a 3D Slicer without the PyTorch extension can use them), so they never import it and get the preference text."""
    if not needs_torch:
        return preference
    from .models import select_device

    return select_device(preference)


def _add_input_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spacing", type=_spacing, metavar="X,Y,Z",
                   help="voxel spacing in mm for 2-D slices and slice stacks (they carry none)")
    p.add_argument("--window", type=_window, metavar="WIDTH,LEVEL",
                   help="display window of 8-bit PNG/JPEG sources, to map them to HU (default 1500,-600: lung window)")


def _add_weights_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", action="append", metavar="NAME=FILE",
                   help="run model NAME with your own weights FILE (from its training script) instead of the shipped "
                        "ones; repeatable")


def build_parser() -> argparse.ArgumentParser:
    parser = UsageParser(prog="covidct", description="COVID-19 chest-CT analysis (research use only).")
    parser.add_argument("--version", action="version", version=f"covidct {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=UsageParser)

    a = sub.add_parser("analyze", help="full pipeline for one CT: lungs, lesions, classifiers, report")
    a.add_argument("input", nargs="?", type=Path, help="CT file, DICOM folder, 2-D slice or slice folder")
    a.add_argument("--demo", action="store_true", help="analyze a generated demo chest CT with known lesions")
    a.add_argument("--demo-size", type=demo_size, default=(256, 256, 96), metavar="X,Y,Z",
                   help="voxels of the demo CT (default 256,256,96; at most 512,512,300)")
    a.add_argument("--demo-seed", type=_seed, default=0, help="seed of the demo CT (default 0)")
    a.add_argument("-o", "--output", type=Path, required=True, metavar="OUTDIR")
    a.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    a.add_argument("--models", default="all", help="classifiers to run: all, or a comma-separated list")
    a.add_argument("--progress", choices=("jsonl",), help="print progress events as JSON lines on stdout")
    a.add_argument("--keep-identifiers", action="store_true",
                   help="keep the patient's name, ID and birth date of a DICOM input in the reports and DICOM outputs "
                        "(default: left out)")
    _add_input_options(a)
    _add_weights_option(a)

    for name, what in (("segment-lungs", "lung"), ("segment-lesions", "lesion")):
        s = sub.add_parser(name, help=f"{what} segmentation to a label map (.nii.gz, .nrrd, .seg.nrrd, .png)")
        s.add_argument("input", type=Path)
        s.add_argument("-o", "--output", type=Path, required=True, metavar="OUT")
        s.add_argument("--model", default=None, help=f"{what} model (default: the best validated one)"
                       + (f"; {PSEUDO_MASK}: seed-001 intensity pseudo-mask for annotators" if what == "lesion" else ""))
        s.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
        _add_input_options(s)
        _add_weights_option(s)

    c = sub.add_parser("classify", help="one classifier on each input, to a CSV")
    c.add_argument("input", nargs="+", type=Path)
    c.add_argument("--model", required=True)
    c.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.csv")
    c.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    _add_input_options(c)
    _add_weights_option(c)

    b = sub.add_parser("batch", help="analyze a cohort on Dask: one folder per case, resumable, cohort.csv")
    b.add_argument("input", nargs="*", type=Path, help="CTs (files, DICOM folders, slices)")
    b.add_argument("--list", type=Path, metavar="CASES.csv", help="a CSV with a 'path' column, one case per row")
    b.add_argument("-o", "--output", type=Path, required=True, metavar="OUTDIR")
    b.add_argument("--workers", type=_workers, default=1, help="Dask worker processes on this machine (default 1)")
    b.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler (tcp://host:port) instead")
    b.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    b.add_argument("--models", default="all", help="classifiers to run: all, or a comma-separated list")
    b.add_argument("--id-map", action="store_true", help="also write ids.csv: case id -> input path")
    b.add_argument("--labels", type=Path, metavar="LABELS.csv",
                   help="truth for cohort.html's ROC curves and threshold table: a CSV with a header, a 'path' "
                        "column (the input as given; relative to the CSV's folder) or a 'case_id' column "
                        "(case-0001...), and a 'label' column: 1 or COVID-19, 0 or non-COVID")
    _add_weights_option(b)

    m = sub.add_parser("models", help="list registered models, their versions and whether their weights are intact")
    _add_weights_option(m)

    w = sub.add_parser("serve", help="the browser app (needs the web extra): open a CT, analyze, correct lesions")
    w.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    w.add_argument("--port", type=_port, default=8080, help="port (default 8080; 0: any free port)")
    w.add_argument("--data", type=Path, default=Path("."), metavar="DIR",
                   help="folder whose CTs the page may open by path (default: the current folder)")
    from .web.serve import DEFAULT_OUTPUTS

    w.add_argument("--outputs", type=Path, default=None, metavar="DIR",
                   help=f"where analyses, uploads and saved corrections go (default ./{DEFAULT_OUTPUTS}; "
                        "another folder must lie outside --data)")
    w.add_argument("--demo", action="store_true", help="open the demo CT when the server starts")
    w.add_argument("--demo-size", type=demo_size, default=(256, 256, 96), metavar="X,Y,Z",
                   help="voxels of the demo CT the page offers (default 256,256,96)")
    w.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    w.add_argument("--models", default="all", help="classifiers to run: all, or a comma-separated list")
    w.add_argument("--max-upload-mb", type=_upload_mb, default=1024, metavar="MB",
                   help="largest upload accepted, in MiB (default 1024)")
    w.add_argument("--ready-file", type=Path, help=argparse.SUPPRESS)  # written with the URL once serving
    _add_weights_option(w)
    return parser


def _progress_printer(jsonl: bool):
    if jsonl:
        def emit(stage: str, fraction: float, message: str) -> None:
            print(json.dumps({"stage": stage, "progress": round(fraction, 4), "message": message}), flush=True)
    elif sys.stderr.isatty():
        def emit(stage: str, fraction: float, message: str) -> None:
            print(f"[{stage:>11}] {fraction * 100:3.0f}%  {message}", file=sys.stderr, flush=True)
    else:  # scripts and pipes get a quiet stderr: errors there stay one line
        emit = None
    return emit


def _cmd_analyze(args) -> int:
    from .io import check_output_path
    from .pipeline import AnalyzeOptions, analyze

    if args.demo == (args.input is not None):
        raise InputError(None, "analyze needs either an INPUT or --demo (not both)")
    check_output_path(args.output, [args.input] if args.input else [], expect="dir")
    options = AnalyzeOptions(device=args.device, models=args.models, spacing=args.spacing, window=args.window,
                             demo_size=args.demo_size, demo_seed=args.demo_seed,
                             keep_identifiers=args.keep_identifiers)
    report = analyze(args.input, args.output, options, emit=_progress_printer(args.progress == "jsonl"))
    for warning in report.get("warnings", []):
        print(f"covidct: warning: {warning}", file=sys.stderr)
    if args.progress != "jsonl":
        for line in _summary(report):
            print(line)
        print(f"report: {args.output / 'report.html'}")
    return 0


def _summary(report: dict) -> list[str]:
    """The few lines a reader of the terminal wants before opening report.html: lung and lesion volumes, the
    severity band, each classifier's call and the consensus."""
    lines = []
    lungs = report.get("lungs")
    if lungs:
        lines.append(f"lungs: right {lungs['right_ml']:.0f} mL, left {lungs['left_ml']:.0f} mL")
    lesions = report.get("lesions")
    if lesions:
        text = (f"lesions: {lesions['total_ml']:.1f} mL (GGO {lesions['ggo_ml']:.1f} mL, consolidation "
                f"{lesions['consolidation_ml']:.1f} mL)")
        involvement = (lesions.get("percent_involvement") or {}).get("total")
        if involvement is not None:
            text += f", {involvement:.1f} % of the lungs"
        severity = lesions.get("severity") or {}
        if severity.get("band"):
            text += f"; {severity['band']} ({severity.get('description', '')})"
        elif severity.get("description"):  # withheld, and why
            text += f"; {severity['description']}"
        lines.append(text)
    for name, entry in (report.get("classifiers") or {}).items():
        lines.append(f"{name}: {entry['label']}, P(COVID-19) {entry['probability']:.2f}")
    agreement = report.get("consensus") or {}
    if agreement.get("probability") is not None and len(agreement.get("models", [])) > 1:
        lines.append(f"consensus: P(COVID-19) {agreement['probability']:.2f}"
                     + ("; the classifiers disagree" if agreement.get("disagreement") else ""))
    return lines


def _print_reading_warnings(ct) -> None:
    """What the reader of a label map or CSV must know about how the input was read (a series without positions, a
    volume file without a voxel spacing)."""
    for warning in ct.warnings:
        print(f"covidct: warning: {ct.source}: {warning}", file=sys.stderr)


def _cmd_segment_lungs(args) -> int:
    from .io import check_output_for, check_output_path, load_ct, to_input_grid, write_label_map
    from .labels import LUNG_SEGMENTS
    from .lungs.select import DEFAULT_LUNG_MODEL, segment_lungs
    from .models.registry import load_registry

    model = args.model or DEFAULT_LUNG_MODEL
    entry = load_registry().get(model)  # unknown or not-shipped models stop here, before any work
    if entry.task != "lung-segmentation":
        raise InputError(None, f"--model takes a lung model; {model} is a {entry.task} model")
    check_output_path(args.output, [args.input])
    ct = load_ct(args.input, spacing=args.spacing, window=args.window)
    check_output_for(args.output, ct)
    _print_reading_warnings(ct)
    device = _device(args.device, needs_torch=model != "lungs-classic")
    try:
        labels = segment_lungs(ct.image, model, display_windowed=ct.display_windowed, device=device)
    except LungsNotFoundError as exc:  # name the file (issue 24)
        raise LungsNotFoundError(exc.path or ct.source, ct.with_hu_doubt(exc.problem)) from None
    write_label_map(to_input_grid(labels, ct), args.output, LUNG_SEGMENTS)
    return 0


def _cmd_segment_lesions(args) -> int:
    """lesions-unet (default) or the seed-001 intensity pseudo-mask, inside the default lung model's mask.

    A 2-D image in which no lung is found is not refused (pipeline/lungs.py): lesions-unet segments it whole, the
    pseudo-mask (defined inside the lungs) is empty, and a warning goes to stderr. In-plane pixels coarser than the
    lesion network was trained on get the warning `analyze` gives (pipeline/coverage.py), on stderr; the pseudo-mask
    is an intensity rule, trained on nothing, and gets none."""
    from .io import check_output_for, check_output_path, load_ct, to_input_grid, write_label_map
    from .labels import LESION_SEGMENTS
    from .lungs.select import DEFAULT_LUNG_MODEL
    from .models.registry import load_registry
    from .pipeline.coverage import coarse_pixel_warning
    from .pipeline.lungs import find_lungs

    model = args.model or "lesions-unet"
    if model != PSEUDO_MASK:
        entry = load_registry().get(model)  # not shipped or unknown: stop before any work
        if entry.task != "lesion-segmentation":
            raise InputError(None, f"--model takes a lesion model or {PSEUDO_MASK}; {model} is a {entry.task} model")
    device = _device(args.device, needs_torch=model != PSEUDO_MASK or DEFAULT_LUNG_MODEL != "lungs-classic")
    check_output_path(args.output, [args.input])
    ct = load_ct(args.input, spacing=args.spacing, window=args.window)
    check_output_for(args.output, ct)
    _print_reading_warnings(ct)
    found = find_lungs(ct, DEFAULT_LUNG_MODEL, device)
    if model == PSEUDO_MASK:
        from .lesions import PSEUDO_MASK_SEGMENT, pseudo_infection_mask

        labels, segments = pseudo_infection_mask(ct.image, found.labels), (PSEUDO_MASK_SEGMENT,)
    else:
        from .lesions import segment_lesions

        labels = segment_lesions(ct.image, found.labels if found.found else None,
                                 display_windowed=ct.display_windowed, device=device, pleural=found.pleural,
                                 whole_image=not found.found)
        segments = LESION_SEGMENTS
    if not found.found:
        print(f"covidct: warning: {ct.source}: {found.warning}", file=sys.stderr)
    coarse = None if model == PSEUDO_MASK else coarse_pixel_warning(ct, model, lungs_found=found.found)
    if coarse is not None:  # the label map stays as segmented, as analyze keeps its numbers
        print(f"covidct: warning: {ct.source}: {coarse}", file=sys.stderr)
    write_label_map(to_input_grid(labels, ct), args.output, segments)
    return 0


def _cmd_classify(args) -> int:
    """One classifier on every input; the CSV is written only when every input was classified (docs/CONTRACTS.md)."""
    from .classifiers.table import classifier_names, refusal
    from .io import check_output_path, load_ct
    from .models import select_device
    from .models.registry import load_registry
    from .io.writers import write_csv
    from .pipeline.classifiers import csv_row, needs_lungs, run_classifier

    registry = load_registry()
    entry = registry.get(args.model)  # unknown or not-shipped models stop here
    if entry.task != "classification":
        raise InputError(None, f"{args.model} is a {entry.task} model, not a classifier")
    if args.model not in classifier_names(registry):
        raise InputError(None, f"model {args.model} is not available in this version")
    check_output_path(args.output, args.input, extensions=(".csv",))
    device = select_device(args.device)
    emit = _progress_printer(False)
    rows = []
    for n, path in enumerate(args.input, 1):
        ct = load_ct(path, spacing=args.spacing, window=args.window)
        reason = refusal(args.model, ct)
        if reason:
            raise InputError(path, reason)
        _print_reading_warnings(ct)  # e.g. a volume file without a voxel spacing, read as 1 mm
        lungs = None
        if needs_lungs(args.model):  # the default lung model, as in analyze; a 2-D image may have none found
            from .lungs.select import DEFAULT_LUNG_MODEL
            from .pipeline.lungs import find_lungs

            found = find_lungs(ct, DEFAULT_LUNG_MODEL, device)
            lungs = found.labels if found.found else None
        run = run_classifier(args.model, ct, lungs, device)
        if lungs is None and needs_lungs(args.model):  # a refusal has said so already, as its one-line error
            print(f"covidct: warning: {ct.source}: lung mask not found: {found.problem}; {args.model} classified "
                  "the image anyway", file=sys.stderr)
        rows.append(csv_row(str(path), run))
        if emit:
            emit("classify", n / len(args.input), f"{path}: P(COVID-19) {run.probability:.3f}")
    write_csv(args.output, rows)  # columns: path, probability, label, then the model's own
    return 0


def _cmd_batch(args) -> int:
    from .io import check_output_path
    from .models.registry import load_registry
    from .pipeline import AnalyzeOptions
    from .pipeline.analyze import selected_classifiers
    from .pipeline.batch import (COHORT, COHORT_PAGE, FAILURES, check_scheduler_address, make_cases,
                                 read_case_list, run_batch)
    from .pipeline.cohort_labels import read_labels

    try:
        import distributed  # noqa: F401
    except ImportError:
        raise InputError(None, "covidct batch needs the batch extra (distributed missing): "
                               "pip install -e '.[batch]'") from None
    if args.scheduler is not None:  # a malformed address stops here, before any input is read or anything written
        check_scheduler_address(args.scheduler)
    inputs = list(args.input) + (read_case_list(args.list) if args.list else [])
    if not inputs:
        raise InputError(None, "batch needs INPUT paths or --list CASES.csv")
    missing = [p for p in inputs if not Path(p).exists()]
    if missing:
        raise InputError(missing[0], f"does not exist ({len(missing)} of {len(inputs)} inputs are missing)")
    check_output_path(args.output, inputs, expect="dir")
    selected_classifiers(args.models, load_registry())  # unknown models stop here, before any worker starts
    options = AnalyzeOptions(device=args.device, models=args.models)
    cases = make_cases(inputs)
    labels = read_labels(args.labels, cases) if args.labels else None  # a bad file stops here, nothing written
    if labels is not None and labels.ignored:
        print(f"covidct: {args.labels}: {labels.ignored} rows name no input of this batch (ignored)", file=sys.stderr)
    result = run_batch(cases, args.output, options, workers=args.workers, scheduler=args.scheduler,
                       id_map=args.id_map, labels=None if labels is None else labels.by_case,
                       report=lambda line: print(f"covidct: {line}", file=sys.stderr, flush=True))
    succeeded = result.done or result.skipped  # cohort.csv is written only when a case is done
    table = f"cohort table {args.output / COHORT}, " if succeeded else ""
    print(f"{len(result.done)} analyzed, {len(result.skipped)} done before, {len(result.failed)} failed "
          f"(see {args.output / FAILURES}); {table}page {args.output / COHORT_PAGE}")
    if not succeeded:
        print(f"covidct: error: every case failed ({len(result.failed)}); their errors are in "
              f"{args.output / FAILURES}", file=sys.stderr)
        return 1
    return 0


def _cmd_models(args) -> int:
    from .models.registry import CONTRACT_MODELS, load_registry

    registry = load_registry()
    wide = max([9] + [len(e.version) for e in registry.entries.values()])  # a user's weights: 1.0.0+user.1a2b3c4d
    print(f"{'model':<14} {'version':<{wide}} {'task':<20} weights")
    broken = []
    for name, task in CONTRACT_MODELS.items():
        entry = registry.entries.get(name)
        if entry is None:
            print(f"{name:<14} {'-':<{wide}} {task:<20} not available in this version")
        else:
            state = entry.check()
            own = f" (your file {entry.weights})" if entry.user_weights else ""
            print(f"{name:<14} {entry.version:<{wide}} {entry.task:<20} {state}{own}")
            if state in ("missing", "checksum mismatch"):
                broken.append(f"{name} ({state})")
    if broken:  # a broken installation is not a success (issue 24)
        print(f"covidct: error: weights that cannot be used: {', '.join(broken)}; reinstall or retrain them",
              file=sys.stderr)
        return 1
    return 0


def _cmd_serve(args) -> int:
    from .web.serve import serve

    return serve(args.data, args.outputs, host=args.host, port=args.port, demo=args.demo, demo_size=args.demo_size,
                 device=args.device, models=args.models, max_upload_bytes=args.max_upload_mb << 20,
                 ready_file=args.ready_file)


def _models_run_by(args) -> set[str] | None:
    """The registered models a command runs (None: any of them, as analyze, batch and serve may), the lung model
    that segment-lesions and a classifier that needs lungs run first among them, and the lung model a classifier
    finds a picture's lungs with (``picture_lungs``: it may run, the inputs decide)."""
    from .lungs.select import DEFAULT_LUNG_MODEL

    if args.command == "classify":
        from .pipeline.classifiers import needs_lungs, picture_lungs

        try:
            lungs = {DEFAULT_LUNG_MODEL} if needs_lungs(args.model) else set()
            framing = picture_lungs(args.model)
        except InputError:  # not a classifier of this version: the command itself says so
            return {args.model}
        return {args.model} | lungs | ({framing} if framing else set())
    if args.command == "segment-lungs":
        return {args.model or DEFAULT_LUNG_MODEL}
    if args.command == "segment-lesions":
        from .lesions.network import MODEL_NAME

        return {args.model or MODEL_NAME, DEFAULT_LUNG_MODEL}
    return None


def _use_own_weights(args) -> None:
    """A user's own weights (models/user_weights.py), from ``--weights NAME=FILE`` or $COVIDCT_WEIGHTS: the options go
    into this process's environment (worker processes inherit it); then the network of every override the command
    runs is built once from its file, so that a file that does not fit stops the command before any work (a file for
    a model it does not run only gets a warning), and the commands that report on stderr say which models run such
    weights (analyze: its report's warnings; models: its listing)."""
    from .models import user_weights

    given = getattr(args, "weights", None)
    if given and getattr(args, "scheduler", None):
        raise InputError(None, "--weights reaches the workers this command starts, not those of --scheduler; set "
                               f"{user_weights.ENV} on the cluster's workers instead")
    if given:
        user_weights.install(user_weights.from_arguments(given))
    overrides = user_weights.current()
    if not overrides:
        return
    from .models import load_registry

    registry = load_registry()  # unknown names and missing files are refused here
    runs = None if args.command in ("analyze", "models") else _models_run_by(args)
    used = [n for n in overrides if runs is None or n in runs]
    for name in used:  # a file for a model this command does not run cannot stop it
        user_weights.check_loadable(name)
    if args.command in ("analyze", "models"):
        return
    for warning in user_weights.warnings_for(registry, used):
        print(f"covidct: warning: {warning}", file=sys.stderr)
    for name in overrides:
        if name not in used:
            print(f"covidct: warning: weights given for {name}, which `covidct {args.command}` does not run here",
                  file=sys.stderr)


COMMANDS = {
    "analyze": _cmd_analyze,
    "segment-lungs": _cmd_segment_lungs,
    "segment-lesions": _cmd_segment_lesions,
    "classify": _cmd_classify,
    "models": _cmd_models,
    "batch": _cmd_batch,
    "serve": _cmd_serve,
}


def _stdout_closed() -> bool:
    """Whether stdout's reader has gone (``covidct models | head``: the pipe's write end reports an error); if so,
    stdout now goes to the null device, so that Python's own flush at exit does not report a second error."""
    import select

    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError, AttributeError):  # a replaced stdout without a file descriptor
        return False
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        if not any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0)):
            return False
    os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
    return True


def main(argv: list[str] | None = None) -> int:
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, raise_terminated) if in_main_thread else None
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            build_parser().print_help()
            return 2
        if args.command != "serve":  # a short-lived process: freed arrays stay mapped for reuse (heap.py)
            keep_freed_memory()
        from .models.user_weights import ENV

        kept = os.environ.get(ENV)  # --weights holds for this call only (main may be called again in-process)
        try:
            _use_own_weights(args)
            return COMMANDS[args.command](args)
        finally:
            if kept is None:
                os.environ.pop(ENV, None)
            else:
                os.environ[ENV] = kept
    except InputError as exc:
        print(f"covidct: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("covidct: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError as exc:
        if not _stdout_closed():  # another pipe (a worker's, a socket's) broke: a real failure
            print(f"covidct: internal error: BrokenPipeError: {exc} (set COVIDCT_DEBUG=1 for details)",
                  file=sys.stderr)
            return 1
        return 141  # `covidct models | head`: the reader of stdout left; nothing of ours went wrong
    except Terminated:
        print("covidct: terminated", file=sys.stderr)
        return 143
    except Exception as exc:  # noqa: BLE001 - the one place internal errors become exit 1
        if os.environ.get("COVIDCT_DEBUG"):
            traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"covidct: internal error: {type(exc).__name__}: {first} (set COVIDCT_DEBUG=1 for details)",
              file=sys.stderr)
        return 1
    finally:
        if in_main_thread and previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
