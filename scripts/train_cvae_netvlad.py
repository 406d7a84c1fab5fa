#!/usr/bin/env python
"""Train iCovid's lesion-informed CVAE and its SPP + NetVLAD classifier (Díaz Berenguer et al., seed 000), or
cross-validate it and the paper's ablation; see CovidCTAnalysis/classifiers/cvae_netvlad/train.py.

The shipped weights and their numbers (Resources/Models/cards/cvae-netvlad.md):
    python scripts/train_cvae_netvlad.py --cv --out cv-full.json                          # 5-fold CV, full model
    python scripts/train_cvae_netvlad.py --cv --variant cvae-global --out cv-global.json  # ablation: no side info
    python scripts/train_cvae_netvlad.py --cv --variant no-cvae --out cv-no-cvae.json     # ablation: no CVAE
    python scripts/train_cvae_netvlad.py --cv --cvae-epochs 200 --epochs 200 --lr 1e-5 --out cv-paper.json  # §5.1
    python scripts/train_cvae_netvlad.py --cv --tune-last-stage --seed 1 --out cv-tuned-1.json  # trunk stage 5 tuned
    python scripts/train_cvae_netvlad.py --out Resources/Models/cvae-netvlad/cvae-netvlad.pt
Without --cv: writes OUT (fp16 state dict of the frozen trunk and the classifier) and OUT with suffix .json (config,
log).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from CovidCTAnalysis.classifiers.cvae_netvlad.train import (  # noqa: E402
    FOLDS, VARIANTS, TrainConfig, cross_validate, train)
from CovidCTAnalysis.io.writers import atomic_path  # noqa: E402
from CovidCTAnalysis.errors import UsageParser  # noqa: E402
from CovidCTAnalysis.models.training import check_out, run_script, save_cv_run  # noqa: E402


def main(argv=None) -> int:
    return run_script(lambda: _main(argv), "train_cvae_netvlad")


def _main(argv=None) -> int:
    p = UsageParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "covidct" / "cvae-netvlad")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cv", action="store_true", help=f"{FOLDS}-fold patient-disjoint CV on COVID-CT train+val")
    p.add_argument("--folds", help="with --cv: run only these folds (e.g. 1)")
    p.add_argument("--variant", default="full", choices=VARIANTS)
    p.add_argument("--epochs", type=int, help="classifier epochs")
    p.add_argument("--lr", type=float, help="classifier learning rate")
    p.add_argument("--cvae-epochs", type=int)
    p.add_argument("--tune-last-stage", action="store_true",
                   help="fine-tune the ImageNet trunk's last stage with the classifier (not the shipped recipe)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the networks' start and data order (the CV folds are always seed 0's)")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    check_out(a.out, summary=not a.cv)
    chosen = {"variant": a.variant, "seed": a.seed, "threads": a.threads, "tune_last_stage": a.tune_last_stage}
    chosen.update({k: v for k, v in (("epochs", a.epochs), ("lr", a.lr), ("cvae_epochs", a.cvae_epochs))
                   if v is not None})
    cfg = TrainConfig(**chosen)
    command = "python scripts/train_cvae_netvlad.py " + " ".join(sys.argv[1:] if argv is None else argv)
    say = lambda s: print(s, flush=True)  # noqa: E731
    if a.cv:
        only = tuple(int(v) for v in a.folds.split(",")) if a.folds else None
        save_cv_run(a.out, cross_validate(a.data, a.cache, cfg, say=say, only=only), command, a.variant)
        return 0
    import torch

    state, summary = train(a.data, a.cache, cfg, say=say)
    summary["command"] = command
    with atomic_path(a.out) as tmp:
        torch.save(state, tmp)
    with atomic_path(a.out.with_suffix(".json")) as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
