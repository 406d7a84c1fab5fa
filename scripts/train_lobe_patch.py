#!/usr/bin/env python
"""Train the Sharif lobe-patch network (Ghavami Modegh et al., seed 001) or cross-validate it; see
CovidCTAnalysis/classifiers/lobe_patch/train.py.

The shipped weights and their numbers (Resources/Models/cards/lobe-patch.md):
    python scripts/train_lobe_patch.py --cv --out cv-lobe-patch.json --threads 1
    python scripts/train_lobe_patch.py --out Resources/Models/lobe-patch/lobe-patch.pt --threads 1
A user's cohort of CT volumes (CSV with columns path,label; 0 healthy, 1 COVID-19, 2 other disease; relative paths
are read from the CSV's folder; 10 lung slices per case as the paper trains): add --cohort cases.csv; --network
covid-vs-other trains §2.5's second network on its diseased cases. ImageNet starts need `pip install -e '.[train]'`.
The volume network, a fine-tuning of the figure network (--init, default the registered lobe-patch weights) on
the train split of DeCoVNet's semi-synthetic volumes (scripts/make_decovnet_data.py), with their lesion masks as
patch labels; the written file holds both networks (the figure network of --init unchanged):
    python scripts/train_lobe_patch.py --synthetic /tmp/decovnet/data --epochs 30 --out lobe-patch.pt
Without --cv: writes OUT (float16 state dict) and OUT with suffix .json (config, training log).
The cohort CSV, the headers of the CTs it lists, --init and --out are checked before any work: a problem stops the
script with one line naming the file and exit status 2, nothing written.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from CovidCTAnalysis.classifiers.lobe_patch.model import TRUNKS  # noqa: E402
from CovidCTAnalysis.classifiers.lobe_patch.train import (  # noqa: E402
    TrainConfig, cohort_items, cross_validate, train)
from CovidCTAnalysis.errors import InputError, UsageParser  # noqa: E402
from CovidCTAnalysis.models.registry import load_registry  # noqa: E402
from CovidCTAnalysis.models.training import (  # noqa: E402
    check_out, load_weights_file, run_script, save_cv_run, save_training_run)


def check_inputs(a) -> None:
    """The user's inputs, cheaply, before any work (InputError naming the file): the cohort CSV (the classes
    ``--network`` learns) and the headers of its CTs, the --synthetic folder, --init (a state dict that fits) and
    --out."""
    inputs = []
    if a.cohort is not None:
        inputs += [a.cohort] + [path for path, _ in cohort_items(a.cohort, a.network)]
    if a.synthetic is not None and not (a.synthetic / "index.json").is_file():
        raise InputError(a.synthetic, "has no index.json (make the folder with scripts/make_decovnet_data.py)")
    if a.init:
        from CovidCTAnalysis.classifiers.lobe_patch.model import VOLUMES_PREFIX, LobeNet
        from CovidCTAnalysis.models.weights import network_from_state, split_states

        state, _ = split_states(load_weights_file(a.init), VOLUMES_PREFIX)
        network_from_state(lambda: LobeNet(a.trunk, infection=a.network == "diseased"), state, source=a.init)
        inputs.append(a.init)
    check_out(a.out, inputs, summary=not a.cv)


def main(argv=None) -> int:
    return run_script(lambda: _main(argv), "train_lobe_patch")


def _main(argv=None) -> int:
    p = UsageParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "covidct" / "lobe-patch")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cv", action="store_true", help="5-fold patient-disjoint CV on COVID-CT train+val")
    p.add_argument("--folds", help="with --cv: only these folds (e.g. 1,2)")
    p.add_argument("--cohort", type=Path, help="train on this CSV of CT volumes (columns path,label; relative paths "
                                               "from the CSV's folder)")
    p.add_argument("--synthetic", type=Path, help="train the volume network on this folder of semi-synthetic volumes")
    p.add_argument("--init", type=Path, help="with --synthetic: the figure network to start from (default: the "
                                             "registered lobe-patch weights)")
    p.add_argument("--patch-weight", type=float, default=TrainConfig.patch_weight,
                   help="weight of the coarse patch loss (paper: 0.01)")
    p.add_argument("--network", default="diseased", choices=("diseased", "covid-vs-other"))
    p.add_argument("--trunk", default="efficientnet-lite0", choices=TRUNKS,
                   help="vgg: Table 1's patch feature extractor from random weights, trained end to end (a GPU's job)")
    p.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    if sum(bool(v) for v in (a.synthetic, a.cohort, a.cv)) > 1:
        p.error("choose one of --synthetic, --cohort and --cv")
    if a.init and not a.synthetic:
        p.error("--init goes with --synthetic")
    if a.network != "diseased" and (a.cv or a.cohort is None):
        p.error("--network covid-vs-other needs a --cohort with other-disease cases (label 2)")
    check_inputs(a)
    init = str(a.init or load_registry().get("lobe-patch").verified_weights()) if a.synthetic else None
    cfg = TrainConfig(epochs=a.epochs, threads=a.threads, network=a.network, trunk=a.trunk,
                      patch_weight=a.patch_weight, init=init)
    command = "python scripts/train_lobe_patch.py " + " ".join(sys.argv[1:] if argv is None else argv)
    say = lambda s: print(s, flush=True)  # noqa: E731
    if a.cv:
        only = tuple(int(v) for v in a.folds.split(",")) if a.folds else None
        save_cv_run(a.out, cross_validate(a.data, a.cache, cfg, say=say, only=only), command, "lobe-patch")
        return 0
    state, summary = train(a.data, a.cache, cfg, say=say, cohort=a.cohort, synthetic=a.synthetic)
    summary["command"] = command
    save_training_run(a.out, state, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
