#!/usr/bin/env python
"""Train slice-resnet (Gozes et al., seed 003) on ../shared/data, or cross-validate its recipe; see
CovidCTAnalysis/classifiers/slice_resnet/train.py.

The shipped weights and their numbers (Resources/Models/cards/slice-resnet.md):
    python scripts/train_slice_resnet.py --cv --out Resources/Models/slice-resnet/cv/cv-lite0-320.json   # 5-fold CV
    python scripts/train_slice_resnet.py --on train --out /tmp/slice-train.pt                     # val-split number
    python scripts/train_slice_resnet.py --on train+val --out Resources/Models/slice-resnet/slice-resnet-lite0-320.pt
Without --cv: writes OUT (fp16 state dict) and OUT with suffix .json (config, per-epoch log, val metrics when the val
split was not trained on). With --cv: writes OUT (JSON: per-fold AUC, mean and sd, pooled out-of-fold metrics with
bootstrap CIs, out-of-fold scores). ImageNet starts need `pip install -e '.[train]'`; on a GPU machine the paper's
ResNet-50 is `--backbone resnet50 --pretrained FILE` (an ImageNet state dict you bring).

Several processes (DistributedDataParallel; models/distributed.py), e.g. the GPUs of one node, or CPU processes:
    torchrun --standalone --nproc_per_node 8 scripts/train_slice_resnet.py --device cuda --on train+val --out W.pt
    torchrun --standalone --nproc_per_node 2 scripts/train_slice_resnet.py --device cpu --threads 1 --cv --out cv.json
NCCL on CUDA (one GPU per process), gloo on the CPU; --batch stays the global batch (shared out over the
processes), so the recipe is unchanged; rank 0 alone prints and writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from CovidCTAnalysis.classifiers.slice_resnet.model import BACKBONES, DEFAULT_BACKBONE  # noqa: E402
from CovidCTAnalysis.classifiers.slice_resnet.synthetic_slices import check_lesion_source  # noqa: E402
from CovidCTAnalysis.classifiers.slice_resnet.train import (  # noqa: E402
    FOLDS, TrainConfig, cross_validate, default_crop, train)
from CovidCTAnalysis.errors import InputError, UsageParser  # noqa: E402
from CovidCTAnalysis.models.training import (  # noqa: E402
    check_out, run_script, save_cv_run, save_training_run)
from CovidCTAnalysis.models.distributed import from_environment  # noqa: E402


def main(argv=None) -> int:
    return run_script(lambda: _main(argv), "train_slice_resnet")


def _main(argv=None) -> int:
    p = UsageParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "covidct" / "slice-resnet")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cv", action="store_true", help=f"{FOLDS}-fold patient-disjoint CV on train+val instead")
    p.add_argument("--on", default="train+val", choices=("train", "train+val"), help="split to train on")
    p.add_argument("--backbone", default=DEFAULT_BACKBONE, choices=BACKBONES)
    p.add_argument("--pretrained", default="imagenet",
                   help="'imagenet' (the backbone's PyPI wheel), 'none', or an ImageNet state dict file")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the networks' start, data order and augmentation (the CV folds are always seed 0's)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--input-size", type=int, default=TrainConfig.input_size,
                   help=f"the network's input side in px (default {TrainConfig.input_size}, the shipped recipe's; 224 is "
                        "the paper's, and what --lesion-guidance and --synthetic need)")
    p.add_argument("--crop", type=int, default=None,
                   help="random-crop size of the input (default 6/7 of --input-size to 16 px: 272 of 320, 192 of 224)")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--augment", default="paper", choices=("paper", "figure", "frame", "flips"))
    p.add_argument("--lung-focus", action="store_true",
                   help="train on lung-focused squares (only the lungs and their margin; see inputs.py)")
    p.add_argument("--lesion-guidance", type=float, default=0.0, metavar="WEIGHT",
                   help="weight of the class-activation-map loss on COVID-SemiSeg's pseudo-labelled slices "
                        "(classifiers/slice_resnet/lesion_guidance.py; 0, the default: the paper's recipe)")
    p.add_argument("--synthetic", type=float, default=0.0, metavar="WEIGHT",
                   help="weight of the loss on semi-synthetic CT slices (classifiers/slice_resnet/synthetic_slices.py;"
                        " 0, the default: the paper's recipe); needs --synthetic-dir")
    p.add_argument("--synthetic-dir", type=Path, default=None,
                   help="a scripts/make_decovnet_data.py --lesions pseudo folder (its train volumes are used)")
    p.add_argument("--mixup", type=float, default=0.0, metavar="ALPHA",
                   help="mixup between the figures of a batch, weights ~ Beta(ALPHA, ALPHA) (0, the default: the "
                        "paper's recipe)")
    p.add_argument("--probe-head", action="store_true",
                   help="start the head from a logistic regression on the frozen ImageNet features, then fine-tune "
                        "all (LP-FT; an experiment, not the paper's recipe)")
    p.add_argument("--probe-c", default="1", metavar="C",
                   help="with --probe-head: the regression's inverse L2 strength C (default 1), or 'auto' (chosen by "
                        "log-loss in an inner 5-fold CV)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (per process under torchrun)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"),
                   help="where to train (default cpu); under torchrun with cuda each process takes GPU LOCAL_RANK")
    a = p.parse_args(argv)
    if not 64 <= a.input_size <= 1024:
        p.error(f"--input-size takes 64-1024 px, not {a.input_size}")
    if a.crop is None:
        a.crop = default_crop(a.input_size)
    if not 32 <= a.crop <= a.input_size:
        p.error(f"--crop takes 32 px up to --input-size ({a.input_size}), not {a.crop}")
    if a.probe_head and not a.backbone.startswith("efficientnet"):
        p.error("--probe-head needs an efficientnet-lite backbone")
    if a.probe_c != "auto" and not _positive(a.probe_c):
        p.error(f"--probe-c takes a number > 0 or 'auto', not {a.probe_c!r}")
    if (a.lesion_guidance > 0 or a.synthetic > 0) and a.input_size != 224:
        p.error("--lesion-guidance and --synthetic squares are cached for 224 px inputs: add --input-size 224")
    cfg = TrainConfig(backbone=a.backbone, pretrained=a.pretrained, seed=a.seed, batch=a.batch, epochs=a.epochs,
                      crop=a.crop, input_size=a.input_size, lr=a.lr, augment=a.augment, threads=a.threads,
                      lung_focus=a.lung_focus, lesion_guidance=a.lesion_guidance, device=a.device,
                      synthetic=a.synthetic, synthetic_dir=str(a.synthetic_dir.resolve()) if a.synthetic_dir else "",
                      mixup=a.mixup, probe_head=a.probe_head, probe_c=a.probe_c)
    if a.mixup < 0:
        p.error(f"--mixup takes an alpha >= 0 (0: no mixup), not {a.mixup}")
    if (a.synthetic > 0) != (a.synthetic_dir is not None):
        p.error("--synthetic WEIGHT and --synthetic-dir DIR go together")
    if a.synthetic_dir is not None:
        if not (a.synthetic_dir / "index.json").is_file():
            p.error(f"--synthetic-dir {a.synthetic_dir}: no index.json (make it with scripts/make_decovnet_data.py)")
        try:
            check_lesion_source(a.synthetic_dir)
        except ValueError as e:
            p.error(str(e))
    if a.pretrained not in ("imagenet", "none") and not Path(a.pretrained).is_file():
        raise InputError(a.pretrained, "--pretrained: neither 'imagenet', 'none' nor a weights file")
    check_out(a.out, [a.pretrained] if Path(a.pretrained).is_file() else [], summary=not a.cv)
    command = "python scripts/train_slice_resnet.py " + " ".join(sys.argv[1:] if argv is None else argv)
    dist = from_environment(a.device)  # None unless torchrun started several processes
    try:
        return run(a, cfg, command, dist)
    finally:
        if dist is not None:
            dist.close()


def _positive(text: str) -> bool:
    try:
        return float(text) > 0
    except ValueError:
        return False


def run(a, cfg: TrainConfig, command: str, dist) -> int:
    """Train or cross-validate; under torchrun every process trains and rank 0 alone prints and writes."""
    main_process = dist is None or dist.is_main
    say = (lambda s: print(s, flush=True)) if main_process else (lambda s: None)  # noqa: E731
    if dist is not None:
        command = f"torchrun --nproc_per_node {dist.world_size} " + command.replace("python ", "", 1)
    if a.cv:
        result = cross_validate(a.data, a.cache, cfg, say=say, dist=dist)
        if not main_process:
            return 0
        save_cv_run(a.out, result, command)
        return 0
    state, summary = train(a.data, a.cache, cfg, on=a.on, say=say, dist=dist)
    if not main_process:
        return 0
    summary["command"] = command
    save_training_run(a.out, state, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
