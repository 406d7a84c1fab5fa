"""What the project's trainers share: weighted slice sources, batch drawing, the LR schedule, the saving of a run,
and the checks of a trainer script's user inputs (cohort CSV, weights, --out) before any work.

lesions-unet (lesions/training.py) and lungs-unet (lungs/unet_train.py) both train on slices pooled from several
sources, each drawn with a relative weight, with AdamW, a 5 % linear warm-up and cosine decay.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np


@dataclass
class Source:
    """Training slices (float16 [N, S, S]) and their targets (uint8 [N, S, S]), drawn with relative ``weight``."""

    name: str
    images: np.ndarray
    targets: np.ndarray
    weight: float


def draw_batch(sources: list[Source], rng: np.random.Generator, batch: int,
               transform: Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray] | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """(images float32 [B, S, S], targets [B, S, S]): each slice from a source picked by weight, then uniformly.

    ``transform(image, target, rng)`` may alter each float32 image (e.g. paste a synthetic lesion).
    """
    weights = np.array([s.weight for s in sources], float)
    picks = rng.choice(len(sources), size=batch, p=weights / weights.sum())
    images, targets = [], []
    for k in picks:
        j = int(rng.integers(len(sources[k].images)))
        image, target = sources[k].images[j].astype(np.float32), sources[k].targets[j]
        images.append(transform(image, target, rng) if transform is not None else image)
        targets.append(target)
    return np.stack(images), np.stack(targets)


def adamw_warmup_cosine(net, lr: float, iterations: int, weight_decay: float = 1e-4):
    """(AdamW optimizer, scheduler): linear warm-up over the first 5 % of ``iterations``, then cosine decay to 0."""
    import torch

    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    warm = max(1, iterations // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, i / iterations))))
    return opt, sched


def optimize_step(net, opt, sched, x, y, loss_fn, bf16: bool) -> float:
    """One optimizer step on batch (x, y), the forward pass under bfloat16 autocast (on x's device type) when
    ``bf16``; the loss."""
    import torch

    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = net(x)
    loss = loss_fn(logits, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    return loss.item()


def save_training_run(out, state: dict, summary: dict) -> None:
    """Write a trainer's fp16 state dict to ``out`` and its summary to ``out`` with suffix .json (both atomically),
    then print the val ROC AUC (when the val split was held out) and the wall time: the end of every slice trainer
    script."""
    import json
    from pathlib import Path

    import torch

    from ..io.writers import atomic_path

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        torch.save(state, tmp)
    with atomic_path(out.with_suffix(".json")) as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=1), encoding="utf-8")
    if "val" in summary:
        m = summary["val"]["metrics"]["roc_auc"]
        print(f"val ROC AUC after the last epoch {m['value']:.4f} {m['ci95']}")
    print(f"{summary['wall_s']:.0f} s")


def save_cv_run(out, result: dict, command: str, label: str = "") -> None:
    """Write a trainer's cross-validation result (``slice_resnet.train.out_of_fold``'s, with ``command``) to ``out``
    atomically, then print its per-fold and pooled ROC AUC and FPR at TPR 95 %: the end of every ``--cv`` run of the
    classifier trainer scripts."""
    import json
    from pathlib import Path

    from ..io.writers import atomic_path

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result["command"] = command
    with atomic_path(out) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=1), encoding="utf-8")
    m = result["pooled"]["metrics"]
    sd = f" +- {result['auc_sd']:.4f}" if result["auc_sd"] is not None else ""
    print(f"{label + ': ' if label else ''}CV ROC AUC {result['auc_mean']:.4f}{sd} (per fold "
          f"{', '.join('%.3f' % f['roc_auc'] for f in result['folds'])}); pooled out-of-fold "
          f"{m['roc_auc']['value']:.4f} {m['roc_auc']['ci95']}, FPR at TPR 95 % {m['fpr_at_tpr95']['value']:.3f} "
          f"{m['fpr_at_tpr95']['ci95']}")


def code_tag(*modules) -> str:
    """Short hash of the source files of ``modules`` (in order), for the names of training caches: a cache built by
    other preprocessing code is never reused."""
    import hashlib
    from pathlib import Path

    return hashlib.sha256(b"".join(Path(m.__file__).read_bytes() for m in modules)).hexdigest()[:10]


# ------------------------------------------------------------------------------- the trainer scripts' user inputs
# A user's cohort, weights and output are checked, cheaply, before any preparation or training: each problem stops
# the script with one line naming the file (``run_script``), exit status 2, nothing written (docs/CONTRACTS.md).

POSITIVE = {"1", "covid-19", "covid", "positive", "pos", "true", "yes"}
NEGATIVE = {"0", "non-covid", "noncovid", "negative", "neg", "normal", "false", "no"}
BINARY_LABELS = "1/0, COVID-19/non-COVID or positive/negative"
BINARY_CLASSES = (("COVID-19", (1,)), ("non-COVID", (0,)))


@dataclass(frozen=True)
class CohortRow:
    """One case of a cohort CSV: its file (relative paths resolved), label, line in the CSV and the row's columns
    (lower-case names)."""

    path: Path
    label: int
    line: int
    fields: dict = dataclasses.field(default_factory=dict, compare=False)


def binary_label(text: str) -> int | None:
    """1 (COVID-19), 0 (non-COVID) or None for a label of ``BINARY_LABELS`` (case-insensitive)."""
    value = text.strip().lower()
    return 1 if value in POSITIVE else 0 if value in NEGATIVE else None


def read_cohort_csv(csv_path, *, base=None, label: Callable[[str], int | None] = binary_label,
                    label_help: str = BINARY_LABELS, name: str = "cohort CSV", what: str = "case",
                    exists: bool = True, row_word: str = "row") -> list[CohortRow]:
    """The rows of a cohort CSV (header with the columns ``path`` and ``label``, any others kept in ``fields``),
    relative paths resolved against ``base`` (default: the CSV's folder) and, with ``exists``, checked to exist.
    Blank rows are skipped; anything else wrong is an InputError naming the CSV (or the listed file) and the row
    (``row_word`` N: the line in the file)."""
    import csv

    from ..errors import InputError

    csv_path = Path(csv_path)
    base = csv_path.parent if base is None else Path(base)
    if csv_path.is_dir():
        raise InputError(csv_path, f"is a folder, not the {name}")
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(csv_path, f"the {name} does not exist") from None
    except UnicodeDecodeError as e:
        raise InputError(csv_path, f"the {name} is not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    except OSError as e:
        raise InputError(csv_path, f"the {name} cannot be read ({e.strerror or e})") from None
    try:
        reader = csv.DictReader(text.splitlines())
        columns = {c.strip().lower(): c for c in (reader.fieldnames or []) if c is not None}
        rows = [(reader.line_num, row) for row in reader]  # line_num: the row's line in the file
    except csv.Error as e:
        raise InputError(csv_path, f"the {name} is not a readable CSV ({e})") from None
    if "path" not in columns or "label" not in columns:
        found = ", ".join(columns) if columns else "an empty file"
        raise InputError(csv_path, f"the {name} needs a header with the columns path and label (found: {found})")
    items, seen = [], {}
    for n, row in rows:
        fields = {k: (row.get(c) or "").strip() for k, c in columns.items()}
        raw_path, raw_label = fields["path"], fields["label"]
        if not any(fields.values()):
            continue
        if not raw_path:
            raise InputError(csv_path, f"{row_word} {n} has no path")
        value = label(raw_label)
        if value is None:
            raise InputError(csv_path, f"{row_word} {n} has the label {raw_label!r}; use {label_help}")
        path = Path(raw_path).expanduser()
        relative = not path.is_absolute()
        path = base / path if relative else path
        if exists and not path.exists():
            where = f" (relative paths are read from {base})" if relative else ""
            raise InputError(path, f"listed in {row_word} {n} of {csv_path.name}, but it does not exist{where}")
        key = path.resolve()
        if key in seen:
            raise InputError(csv_path, f"{row_word} {n} lists {raw_path} a second time (first in {row_word} "
                                       f"{seen[key]})")
        seen[key] = n
        items.append(CohortRow(path, value, n, fields))
    if not items:
        raise InputError(csv_path, f"the {name} lists no {what}")
    return items


def check_classes(csv_path, labels, classes=BINARY_CLASSES, where: str = "", advice: str = "") -> None:
    """Refuse ``labels`` (ints) that lack one of ``classes`` ((name, label values) pairs): no classifier is learnt
    from one class. ``where`` qualifies the cases counted (e.g. what is left to train on)."""
    from ..errors import InputError

    labels = list(labels)
    absent = [name for name, values in classes if not any(y in values for y in labels)]
    if absent:
        counts = ", ".join(f"{sum(y in values for y in labels)} {name}" for name, values in classes)
        need = " and ".join(name for name, _ in classes)
        raise InputError(csv_path, f"has no {' or '.join(absent)} case{where} ({counts}); a classifier learns from "
                                   f"both {need} cases{advice}")


def check_case_files(rows: list[CohortRow], csv_path, dims: int, hint: str = "") -> None:
    """Each listed case a CT input of ``dims`` dimensions (2: one slice, 3: a volume), from its name, first bytes and
    header only (no pixels read): catches a text file, a corrupt header or a volume in a list of slices before any
    work. Deeper faults surface when the case is read, named as well."""
    from ..errors import InputError

    for row in rows:
        if dims == 2 and row.path.is_dir():
            raise InputError(row.path, f"is a folder (a DICOM series or slice stack), listed in row {row.line} of "
                                       f"{Path(csv_path).name}; this cohort lists 2-D images{hint}")
        try:
            slices = _case_slices(row.path)
        except InputError as e:
            raise InputError(e.path or row.path, f"{e.problem} (row {row.line} of {Path(csv_path).name})") from None
        if dims == 2 and slices is not None and slices > 1:
            raise InputError(row.path, f"is a CT volume ({slices} slices), listed in row {row.line} of "
                                       f"{Path(csv_path).name}; this cohort lists 2-D images{hint}")
        if dims == 3 and slices == 1:
            raise InputError(row.path, f"is a 2-D image, listed in row {row.line} of {Path(csv_path).name}; "
                                       f"this cohort lists CT volumes{hint}")


def _case_slices(path: Path) -> int | None:
    """Number of slices of a CT input from its header (None: a folder, or a DICOM file whose header says nothing
    clear)."""
    import SimpleITK as sitk

    from ..errors import InputError
    from ..io.dicom import quiet_itk
    from ..io.sniff import SUPPORTED_INPUTS, check_regular_file, classify, compound_suffix
    from ..io.volume_files import IMAGE_IO, LABEL

    if path.is_dir():
        files = [p for p in sorted(path.iterdir()) if not p.name.startswith(".") and p.is_file()]
        kinds = {classify(p) for p in files[:50]}
        if not kinds & {"dicom", "image"}:
            raise InputError(path, "is a folder without DICOM or PNG/JPEG slices")
        return None  # a series or stack: load_ct checks it in full
    check_regular_file(path)
    kind = classify(path)
    if kind == "image":
        from ..io.slices import header_size

        header_size(path)
        return 1
    if kind not in IMAGE_IO and kind != "dicom":
        raise InputError(path, f"is not a CT or image file (extension {compound_suffix(path) or 'none'}); supported: "
                               f"{SUPPORTED_INPUTS}")
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    if kind in IMAGE_IO:
        reader.SetImageIO(IMAGE_IO[kind])
    try:
        with quiet_itk():
            reader.ReadImageInformation()
    except RuntimeError:
        if kind == "dicom":
            return None
        raise InputError(path, f"is not a readable {LABEL[kind]} file (its header is corrupt or truncated)") from None
    size = reader.GetSize()
    return int(size[2]) if len(size) > 2 else 1


def cohort_tag(items) -> str:
    """Short hash of a cohort's (file, label) pairs, each file by resolved path, size and modification time, for the
    names of its training caches: another cohort, an edited CSV or a replaced file never reuses them."""
    import hashlib

    lines = []
    for path, label in items:
        stat = Path(path).stat()
        lines.append(f"{Path(path).resolve()}\t{label}\t{stat.st_size}\t{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:10]


def check_out(out, inputs=(), summary: bool = True) -> Path:
    """Refuse an ``--out`` that cannot or must not be written (a folder, an input, a place that cannot be created or
    written; ``io.check_output_path``); with ``summary`` also its sibling OUT.json (a weights run writes both)."""
    from ..errors import InputError
    from ..io.outputs import check_output_path
    from ..io.sniff import compound_suffix

    out = Path(out).expanduser()
    if out.is_dir():
        raise InputError(out, "is an existing folder, but --out names a file (e.g. "
                              f"{out / ('weights.pt' if summary else 'result.json')})")
    inputs = [Path(p) for p in inputs if p is not None]
    if summary and compound_suffix(out) == ".json":
        raise InputError(out, "is where the run's summary goes (OUT with suffix .json); name the weights e.g. "
                              f"{out.with_suffix('.pt').name}")
    check_output_path(out, inputs, extensions=(compound_suffix(out),))
    if summary:
        check_output_path(out.with_suffix(".json"), inputs, extensions=(".json",))
    return out


def load_weights_file(path, option: str = "--init") -> dict:
    """The state dict in ``path`` (CPU, as stored), or an InputError naming it: missing, not a PyTorch file, or a
    file that holds no state dict."""
    import torch

    from ..errors import InputError
    from ..io.sniff import check_regular_file

    path = Path(path).expanduser()
    try:
        check_regular_file(path)
    except InputError as e:
        raise InputError(path, f"{option}: {e.problem}") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - pickle, zip and torch errors alike: not a weights file
        raise InputError(path, f"{option}: not a PyTorch weights file ({type(e).__name__})") from None
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(path, f"{option}: holds no state dict (a mapping of tensor names to tensors)")
    return state


def run_script(main: Callable[[], int], prog: str) -> int:
    """Exit status of a trainer script's ``main`` as the CLI gives it (docs/CONTRACTS.md): bad input 2 with one line
    ``PROG: error: ...``, Ctrl-C 130 and SIGTERM 143 with one line (atomic writers leave nothing behind)."""
    import signal
    import sys

    from ..errors import InputError, Terminated, raise_terminated

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        return main()
    except InputError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print(f"{prog}: terminated", file=sys.stderr)
        return 143
    finally:
        signal.signal(signal.SIGTERM, previous)
