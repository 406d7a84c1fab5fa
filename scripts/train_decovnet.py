#!/usr/bin/env python
"""Train and evaluate DeCoVNet (seed 002); see CovidCTAnalysis/classifiers/decovnet/train.py.

On the semi-synthetic set (scripts/make_decovnet_data.py), as for the shipped weights (0.2.0: 0.1.0's weights, trained
from random weights with 12 warm-up epochs, continued with augmentation from the first epoch; both commands in
Resources/Models/cards/decovnet.md, "Training"):
    python scripts/train_decovnet.py --synthetic /tmp/decovnet/data --out decovnet-0.1.0.pt \
        --in-plane 112,168 --z-mm 5 --lung-only --mask-value 0.1 --lr 1e-3 --warmup-epochs 12 --epochs 40 \
        --time-limit 2100 --threads 1
    python scripts/train_decovnet.py --synthetic /tmp/decovnet/data --out Resources/Models/decovnet/decovnet.pt \
        --init decovnet-0.1.0.pt --in-plane 112,168 --z-mm 5 --lung-only --mask-value 0.1 --lr 1e-4 \
        --warmup-epochs 0 --epochs 13 --threads 1 --real --eval-dir /tmp/decovnet/eval
The paper's configuration on a GPU (Table I grid, every slice, lungs-unet masks, Adam 1e-5, 100 epochs, augmentation):
    python scripts/train_decovnet.py --cohort /data/mosmed --labels labels.csv --paper --device cuda --out w.pt
On your own cohort (a folder of CTs and a labels CSV with columns path,label[,split]; relative paths are read from
the cohort folder; label 1/0, COVID-19/non-COVID or positive/negative; split train, val or test):
    python scripts/train_decovnet.py --cohort /data/mosmed --labels /data/mosmed/labels.csv --out my-decovnet.pt \
        --in-plane 224,336 --epochs 100 --lr 1e-5
Evaluate existing weights only:  --evaluate WEIGHTS (no training; give an --out whose .json may be written).
The weights are saved as a float16 state dict and every evaluation here uses those rounded weights.
Writes OUT (state dict) and OUT with suffix .json: configuration, per-epoch log, synthetic test metrics (ROC/PR AUC
with bootstrap CI, threshold table, calibration, lesion hit rate) and, with --real, results on the Radiopaedia
stacks and the imlab volumes of ../shared/data.
The labels CSV, the headers of the CTs it lists, both classes in what is trained on, --init / --evaluate and --out
are checked before any work: a problem stops the script with one line naming the file and exit status 2, nothing
written; OUT and OUT.json are written at the end, atomically (an interrupted run leaves neither).
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from CovidCTAnalysis.classifiers.decovnet import cohort, inputs, localize  # noqa: E402
from CovidCTAnalysis.classifiers.decovnet import train as T  # noqa: E402
from CovidCTAnalysis.classifiers.decovnet.infer import model_from_state_dict  # noqa: E402
from CovidCTAnalysis.classifiers.decovnet.model import ARCHITECTURES, build, fast_layout, parameter_count  # noqa: E402
from CovidCTAnalysis.errors import InputError, UsageParser  # noqa: E402
from CovidCTAnalysis.io.writers import atomic_path  # noqa: E402
from CovidCTAnalysis.models.training import (  # noqa: E402
    check_case_files, check_classes, check_out, load_weights_file, run_script)

RADIOPAEDIA = ("74560", "74576", "74867", "74880", "74887", "75329", "75329_2", "75330", "75349")
IMLAB = ("id001-128x128x64.nii.gz", "id002-128x128x64.nii.gz")


def metrics(rows: list[dict]) -> dict:
    """ROC/PR AUC with bootstrap CI, threshold table and ECE from the shared harness (CovidCTAnalysis.evaluation)."""
    from CovidCTAnalysis.evaluation import metrics as M

    y = [r["label"] for r in rows]
    p = [r["probability"] for r in rows]
    if len(set(y)) < 2:
        return {"n": len(y), "positives": sum(y), "accuracy_at_0.5": M.at_threshold(y, p, 0.5)["accuracy"]}
    return M.summary(y, p)


def harness(rows: list[dict], folder: Path | None, name: str, title: str) -> None:
    """The shared harness's files (metrics.json with per-case scores, roc.png, pr.png, calibration.png) of one set."""
    if folder is None or len({r["label"] for r in rows}) < 2:
        return
    from CovidCTAnalysis.evaluation import evaluate

    evaluate([r["label"] for r in rows], [r["probability"] for r in rows], folder / name, title=title,
             names=[r["name"] for r in rows])


def real_results(data: Path, model, log) -> list[dict]:
    """Every Radiopaedia stack (label 1) and imlab volume (label 0) through load_ct, lungs-classic, classify_volume."""
    from CovidCTAnalysis.classifiers.decovnet.infer import classify_volume
    from CovidCTAnalysis.io import load_ct
    from CovidCTAnalysis.lungs import segment_lungs_classic

    cases = ([(data / "radiopaedia-stacks" / n, 1) for n in RADIOPAEDIA]
             + [(data / "imlab-lung3d" / n, 0) for n in IMLAB])
    rows = []
    for path, label in cases:
        ct = load_ct(path)
        lungs = segment_lungs_classic(ct.image, display_windowed=ct.display_windowed)
        start = time.time()
        result, _, loc = classify_volume(ct.image, lungs, model.device, model=model)
        rows.append({"name": path.name, "label": label, "probability": result["probability"],
                     "slices": result["slices"], "localized": loc is not None,
                     "centre_mm": None if loc is None else list(loc["centre_mm"]),
                     "seconds": round(time.time() - start, 2)})
        log(f"real {path.name}: label {label}, P(COVID-19) {result['probability']:.3f}")
    return rows


def check_inputs(a) -> tuple[list | None, dict | None, dict | None]:
    """(cohort items, --init state, --evaluate state), everything the user gave checked, cheaply, before any work:
    the labels CSV and the headers of its CTs, both classes in the training part (after the validation draw), the
    weights files (state dicts that fit ``a.arch``) and --out (InputError naming the file)."""
    from CovidCTAnalysis.models.weights import network_from_state

    items, inputs, states = None, [], []
    if a.synthetic is not None and not (a.synthetic / "index.json").is_file():
        raise InputError(a.synthetic, "has no index.json (make the folder with scripts/make_decovnet_data.py)")
    if a.cohort is not None:
        items = cohort.read_cohort(a.cohort, a.labels)
        check_case_files(items, a.labels, 3)
        trained = [i for i in items if i.split in ("train", None)]
        check_classes(a.labels, [i.label for i in trained], where=" to train on")
        if not any(i.split == "val" for i in items):  # train() draws the validation volumes as here
            kept, _ = T.split_validation([SimpleNamespace(group=str(i.path), label=i.label) for i in trained],
                                         T.TrainConfig.val_fraction, a.seed)
            check_classes(a.labels, [i.label for i in kept],
                          where=f" left to train on once {T.TrainConfig.val_fraction:.0%} are drawn for validation",
                          advice=" (add cases, or a split column naming the val cases)")
        inputs += [a.labels] + [i.path for i in items]
    for option, path in (("--init", a.init), ("--evaluate", a.evaluate)):
        state = None
        if path is not None:
            state = load_weights_file(path, option)
            network_from_state(lambda: build(a.arch), state, source=path)
            inputs.append(path)
        states.append(state)
    if a.evaluate:  # only OUT.json is written
        check_out(a.out.with_suffix(".json"), inputs, summary=False)
    else:
        check_out(a.out, inputs)
    return items, states[0], states[1]


def main(argv=None) -> int:
    return run_script(lambda: _main(argv), "train_decovnet")


def _main(argv=None) -> int:
    p = UsageParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--synthetic", type=Path, help="folder written by make_decovnet_data.py")
    src.add_argument("--cohort", type=Path, help="folder of CTs (with --labels)")
    p.add_argument("--labels", type=Path, help="labels CSV of --cohort: path,label[,split], paths relative to the "
                                               "cohort folder")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--evaluate", type=Path, help="evaluate these weights instead of training")
    p.add_argument("--init", type=Path, help="start training from these weights (e.g. to continue the shipped ones "
                   "with augmentation from the first epoch: --warmup-epochs 0)")
    p.add_argument("--paper", action="store_true", help="the paper's configuration, whatever the grid, schedule and "
                   "lung options say: 224x336, every slice, CT + 0/1 mask channels, Adam 1e-5, 100 epochs, "
                   "augmentation from the first epoch, and for --cohort the lungs-unet masks of §II-F1")
    p.add_argument("--lungs", default="lungs-classic", choices=("lungs-classic", "lungs-unet"),
                   help="lung masks of a --cohort (the synthetic set carries lungs-classic masks)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (one GPU)")
    p.add_argument("--arch", default="decovnet", choices=ARCHITECTURES)
    p.add_argument("--in-plane", default="224,336", help="model grid height,width (Table I: 224,336)")
    p.add_argument("--z-mm", type=float, default=None, help="resample slices to this spacing (default: keep all)")
    p.add_argument("--lung-only", action="store_true", help="CT channel shows the lungs only (inputs.encode)")
    p.add_argument("--mask-value", type=float, default=1.0, help="lung mask channel value inside the lungs")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--warmup-epochs", type=int, default=0,
                   help="first epochs without augmentation and dropout (0 = the paper)")
    p.add_argument("--dropout", type=float, default=0.5, help="Dropout3d p after the warm-up (0: Table III's "
                   "'DeCoVNet w/o dropout')")
    p.add_argument("--frozen-bn", action="store_true", help="batch-norm statistics fixed per epoch")
    p.add_argument("--time-limit", type=float, default=None, help="stop after the epoch that passes this (s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--real", action="store_true", help="also report the Radiopaedia stacks and imlab volumes")
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--eval-dir", type=Path, help="also write the shared harness's metrics.json and ROC / PR / "
                   "calibration plots of the test split (and of the real cases with --real) into this folder")
    a = p.parse_args(argv)
    if a.cohort and not a.labels:
        p.error("--cohort needs --labels")
    if a.labels and not a.cohort:
        p.error("--labels goes with --cohort")
    items, init, evaluated = check_inputs(a)
    import torch

    torch.set_num_threads(a.threads)
    if a.paper:  # §II-F, §II-G: the values the defaults already hold, forced
        a.in_plane, a.z_mm, a.lung_only, a.mask_value = "224,336", None, False, 1.0
        a.lr, a.epochs, a.warmup_epochs, a.dropout, a.time_limit, a.lungs = 1e-5, 100, 0, 0.5, None, "lungs-unet"
    h, w = (int(v) for v in a.in_plane.split(","))
    spec = inputs.InputSpec(h, w, a.z_mm, a.lung_only, a.mask_value)
    log = lambda m: print(m, flush=True)  # noqa: E731
    report: dict = {"command": " ".join(sys.argv), "spec": spec.to_dict(), "arch": a.arch}
    start = time.time()
    if a.synthetic:
        train_samples = T.synthetic_samples(a.synthetic, spec, "train")
        test_samples = T.synthetic_samples(a.synthetic, spec, "test")
        val_samples = None
    else:
        samples = T.cohort_samples(items, spec, log, lung_model=a.lungs, device=a.device)
        by_split = {s: [x for x, i in zip(samples, items) if i.split == s] for s in ("train", "val", "test")}
        unsplit = [x for x, i in zip(samples, items) if i.split is None]
        train_samples = by_split["train"] + unsplit
        val_samples = by_split["val"] or None
        test_samples = by_split["test"]
    report["prepare_s"] = round(time.time() - start, 1)
    log(f"prepared {len(train_samples)} training and {len(test_samples)} test volumes in {report['prepare_s']} s")
    config = T.TrainConfig(arch=a.arch, epochs=a.epochs, lr=a.lr, seed=a.seed, threads=a.threads,
                           time_limit_s=a.time_limit, spec=spec, warmup_epochs=a.warmup_epochs,
                           frozen_bn=a.frozen_bn, init=init, dropout=a.dropout, device=a.device)
    weights = None
    if a.evaluate:
        state = evaluated
    else:
        state, history = T.train(train_samples, config, log, validation=val_samples)
        report["config"] = {k: (v.to_dict() if k == "spec" else v) for k, v in vars(config).items() if k != "init"}
        report["config"]["init"] = str(a.init) if a.init else None
        report["config"]["lungs"] = a.lungs if a.cohort else "lungs-classic (the synthetic set's masks)"
        report["history"] = history
        # shipped as float16 (half the size; inference computes in float32); everything below evaluates these
        # rounded weights, not the float32 ones
        state = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
        buffer = io.BytesIO()
        torch.save(state, buffer)
        weights = buffer.getvalue()  # written at the end, with OUT.json
        report["weights_sha256"] = hashlib.sha256(weights).hexdigest()
    net = build(a.arch)
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    report["parameters"] = parameter_count(net)
    report["seconds_per_ct"] = T.network_seconds(fast_layout(net), test_samples, spec) if test_samples else None
    timing = f", {report['seconds_per_ct']:.2f} s per test volume" if test_samples else ""
    log(f"{a.arch}: {report['parameters']} parameters{timing} ({a.threads} thread(s))")
    if a.arch == "decovnet":
        model = model_from_state_dict(state, torch.device("cpu"), spec)
        if test_samples:
            rows = T.evaluate(model, test_samples, log)
            report["test"] = {"metrics": metrics(rows), "hit_rate": localize.hit_rate(rows), "cases": rows}
            harness(rows, a.eval_dir, "test", "DeCoVNet, synthetic test split")
            m = report["test"]["metrics"]
            log(f"test: ROC AUC {m.get('metrics', {}).get('roc_auc')}, hit rate {report['test']['hit_rate']}")
        if a.real:
            rows = real_results(a.data, model, log)
            report["real"] = {"metrics": metrics(rows), "cases": rows}
            harness(rows, a.eval_dir, "real", "DeCoVNet, Radiopaedia (COVID-19) vs imlab (normal)")
    else:
        _, probs = T.evaluate_loss(net, test_samples, spec)
        rows = [{"name": s.name, "label": s.label, "probability": float(q)} for s, q in zip(test_samples, probs)]
        report["test"] = {"metrics": metrics(rows), "cases": rows}
    report["total_s"] = round(time.time() - start, 1)
    json_path = a.out.with_suffix(".json")
    if weights is not None:
        with atomic_path(a.out) as tmp:
            tmp.write_bytes(weights)
    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps(report, indent=1, default=float), encoding="utf-8")
    log(f"wrote {json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
