#!/usr/bin/env python
"""Train slice-resnet (Gozes et al., seed 003) on ../shared/data; see CovidCTAnalysis/classifiers/slice_resnet/train.py.

The shipped weights (the defaults, on 1 thread; Resources/Models/cards/slice-resnet.md records every run):
    python scripts/train_slice_resnet.py --out Resources/Models/slice-resnet/slice-resnet18.pt --threads 1
Writes OUT (fp16 state dict) and OUT with suffix .json (config, per-epoch log, wall time).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from CovidCTAnalysis.classifiers.slice_resnet.train import TrainConfig, train  # noqa: E402


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "covidct" / "slice-resnet")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--depth", type=int, default=18, choices=(18, 34, 50))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=32, help="stage 1 batch size")
    p.add_argument("--finetune-batch", type=int, default=32)
    p.add_argument("--pretrain-epochs", type=int, default=0,
                   help="epochs of pseudo-label pre-training (stage 1); 0 = none")
    p.add_argument("--pretrain-size", type=int, default=128)
    p.add_argument("--finetune-epochs", type=_ints, default=(20,), help="epochs per crop size, e.g. 14,2")
    p.add_argument("--finetune-sizes", type=_ints, default=(160,),
                   help="random-crop sizes of the 224 input, e.g. 160,224")
    p.add_argument("--finetune-lr", type=float, default=1e-3)
    p.add_argument("--ema", type=float, default=0.0, help="per-step EMA decay of the weights (0 = off)")
    p.add_argument("--augment", default="flips", choices=("figure", "frame", "flips"),
                   help="augmentation profile of fine-tuning (see augment.py)")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    if len(a.finetune_epochs) != len(a.finetune_sizes):
        p.error("--finetune-epochs and --finetune-sizes need the same number of values")
    cfg = TrainConfig(depth=a.depth, seed=a.seed, batch=a.batch, finetune_batch=a.finetune_batch,
                      pretrain_epochs=a.pretrain_epochs,
                      pretrain_size=a.pretrain_size, finetune_epochs=a.finetune_epochs,
                      finetune_sizes=a.finetune_sizes, finetune_lr=a.finetune_lr, ema_decay=a.ema,
                      augment=a.augment,
                      threads=a.threads)
    import torch

    state, summary = train(a.data, a.cache, cfg, say=lambda s: print(s, flush=True))
    summary["command"] = "python scripts/train_slice_resnet.py " + " ".join(sys.argv[1:] if argv is None else argv)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, a.out)
    a.out.with_suffix(".json").write_text(json.dumps(summary, indent=1))
    print(f"best epoch {summary['best_epoch']}, val AUC {summary['best_val_auc']:.4f}, {summary['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
