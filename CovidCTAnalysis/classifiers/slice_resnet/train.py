"""Training of slice-resnet (seeded): COVID-CT fine-tuning, optionally after pseudo-label pre-training on COVID-SemiSeg.

What runs by default (``TrainConfig()``, ``scripts/train_slice_resnet.py`` without options; the recipe of the
shipped weights). A ResNet-18 from scratch (no ImageNet weights here; the paper fine-tunes an ImageNet ResNet-50,
§2.2) is trained on the COVID-CT train split (425 figures) with binary cross-entropy and AdamW (lr 1e-3, weight decay
1e-4, batch 32, one warm-up epoch then cosine decay per step; the paper: Adam, lr 1e-4) for 20 epochs on random
160 px crops of the 224 px network input, the batches augmented first by horizontal flips only (``augment.py``,
profile "flips"; the richer profiles "figure" and "frame" scored lower, ``--augment``). ``finetune_sizes`` can add
epochs at other crop sizes (e.g. 14 at 160 px then 2 at the full 224 px: run B in the model card). Crops keep the
pixel scale of inference (a 224 input) while costing half the compute of full views; shrinking whole views to 160
px instead lost validation AUC once the network had adapted to the smaller scale. After every epoch the model is
scored on the val split and the epoch with the best validation ROC AUC is returned (so validation numbers are
optimistic; the held-out test split is never read, DATA.md). ``ema_decay`` > 0 evaluates and returns an
exponential moving average of the weights instead of the raw weights (off by default).

Optional stage 1 (``pretrain_epochs`` > 0, off by default; the model card says what it gave). The anchor on this
dataset (Self-Trans) gained most from pre-training on unlabelled CT slices; a contrastive method needs far more
compute than a CPU session, so stage 1 uses the cheapest signal unlabelled slices carry here: the 1600 COVID-SemiSeg
"Pseudo-label" slices come with Inf-Net's infection masks (model outputs, not ground truth). 1 x 1 convolution heads
on ``layer3`` and ``layer4`` predict, per cell, the fraction of the cell covered by the pseudo-mask (binary
cross-entropy with soft targets, AdamW lr 2e-3, batch 32, random 128 px crops of the 224 input, profile "figure"
augmentation, its geometry applied to images and masks alike); the heads are then dropped. SemiSeg slices are rotated
90 deg from radiological display (DATA.md); they are rotated back first (``np.rot90(k=1)``). Stage-1 weights are
cached and reused.

All randomness flows from one seed (stage 2 reseeds, so reusing a cached stage 1 gives the same result); the data
caches are rebuilt identically from ../shared/data and named by a hash of ``inputs.py``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import inputs
from .augment import augment

SEMISEG_PSEUDO = Path("covid-semiseg/TrainingSet/LungInfection-Train/Pseudo-label")


@dataclass
class TrainConfig:
    depth: int = 18
    seed: int = 0
    batch: int = 32  # stage 1
    finetune_batch: int = 32
    pretrain_epochs: int = 0  # stage 1 is optional: see the model card for why it is off
    pretrain_size: int = 128  # random crops of the 224 input (same pixel scale as inference)
    pretrain_lr: float = 2e-3
    finetune_epochs: tuple[int, ...] = (20,)  # epochs at each of finetune_sizes (crop sizes)
    finetune_sizes: tuple[int, ...] = (160,)
    finetune_lr: float = 1e-3
    ema_decay: float = 0.0  # per step; 0 = select among the raw weights of each epoch
    weight_decay: float = 1e-4
    augment: str = "flips"  # augmentation profile of stage 2 (augment.PROFILES)
    threads: int = 2
    log: list = field(default_factory=list)


# ----------------------------------------------------------------------------------------------------------- data
def preprocessing_tag() -> str:
    """Short hash of inputs.py, in the cache names: caches built by other preprocessing code are never reused."""
    import hashlib

    return hashlib.sha256(Path(inputs.__file__).read_bytes()).hexdigest()[:10]


def _square_u8(sq: np.ndarray) -> np.ndarray:
    return np.rint(sq * 255.0).astype(np.uint8)


def load_square(path: Path) -> np.ndarray:
    """One 2-D figure as the cached 256 px uint8 square, through io (HU) and ``inputs`` exactly as at inference."""
    import SimpleITK as sitk

    from ...io import load_ct

    ct = load_ct(path)
    return _square_u8(inputs.square_from_hu(sitk.GetArrayFromImage(ct.image)[0]))


def covid_ct_cache(data_root: Path, cache_dir: Path) -> dict[str, np.ndarray]:
    """COVID-CT train/val squares and labels, cached in ``cache_dir`` (an .npz outside the repository)."""
    from ...evaluation.datasets import covid_ct_split

    cache = cache_dir / f"covid-ct-{preprocessing_tag()}.npz"
    if cache.is_file():
        return dict(np.load(cache))
    out = {}
    for split in ("train", "val"):
        items = covid_ct_split(data_root / "covid-ct", split)
        out[f"{split}_x"] = np.stack([load_square(p) for p, _ in items])
        out[f"{split}_y"] = np.array([y for _, y in items], dtype=np.float32)
        out[f"{split}_names"] = np.array([p.name for p, _ in items])
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **out)
    return out


def semiseg_cache(data_root: Path, cache_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """COVID-SemiSeg pseudo-label slices and their masks as 256 px uint8 squares (display orientation restored)."""
    import SimpleITK as sitk
    from PIL import Image

    from ...io import load_ct

    cache = cache_dir / f"semiseg-pseudo-{preprocessing_tag()}.npz"
    if cache.is_file():
        d = np.load(cache)
        return d["x"], d["m"]
    folder = data_root / SEMISEG_PSEUDO
    xs, ms = [], []
    for img_path in sorted((folder / "Imgs").iterdir()):
        mask_path = folder / "GT" / (img_path.stem + ".png")
        if not mask_path.is_file():
            continue
        unit = inputs.hu_to_unit(sitk.GetArrayFromImage(load_ct(img_path).image)[0])
        with Image.open(mask_path) as im:
            mask = (np.asarray(im.convert("L")) > 127).astype(np.float32)
        if mask.shape != unit.shape:
            continue
        unit, mask = np.rot90(unit, 1), np.rot90(mask, 1)
        rows, cols = inputs.content_box(unit)
        xs.append(_square_u8(inputs.resize(inputs.square_pad(unit[rows, cols]), inputs.CACHE_SIZE)))
        ms.append(_square_u8(inputs.resize(inputs.square_pad(mask[rows, cols]), inputs.CACHE_SIZE)))
    x, m = np.stack(xs), np.stack(ms)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(cache, x=x, m=m)
    return x, m


def _batch(u8: np.ndarray):
    import torch

    return torch.from_numpy(u8.astype(np.float32) / 255.0)[:, None]


def _random_crops(x, size: int, rng: np.random.Generator):
    """Random ``size`` x ``size`` crops of network inputs (N, 1, 224, 224), one per image, at the input's scale.

    Cropping keeps the pixel scale of inference (a 224 input), so a network trained on 160 px crops sees lesions at
    the size it meets them at inference; shrinking the whole view to 160 px instead (our first run) did not.
    """
    import torch

    full = x.shape[-1]
    if size >= full:
        return x
    offsets = rng.integers(0, full - size + 1, (x.shape[0], 2))
    return torch.stack([x[i, :, oy:oy + size, ox:ox + size] for i, (oy, ox) in enumerate(offsets)])


# ------------------------------------------------------------------------------------------------------ training
def _cosine(step: int, total: int, lr: float, warmup: int) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    return 0.5 * lr * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def pretrain(net, x: np.ndarray, m: np.ndarray, cfg: TrainConfig, rng: np.random.Generator, say=print) -> None:
    """Stage 1: pseudo-label infection localization on COVID-SemiSeg (heads on layer3 and layer4, then dropped)."""
    import torch
    import torch.nn.functional as F

    from .model import forward_stages

    c3 = net.layer3[-1].bn2.num_features if hasattr(net.layer3[-1], "bn2") and not hasattr(net.layer3[-1], "bn3") \
        else net.layer3[-1].bn3.num_features
    c4 = net.fc.in_features
    heads = torch.nn.ModuleDict({"layer3": torch.nn.Conv2d(c3, 1, 1), "layer4": torch.nn.Conv2d(c4, 1, 1)})
    params = list(net.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.pretrain_lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = len(x) // cfg.batch
    total = steps_per_epoch * cfg.pretrain_epochs
    net.train()
    step = 0
    for epoch in range(cfg.pretrain_epochs):
        order = rng.permutation(len(x))
        t0, losses = time.time(), []
        for b in range(steps_per_epoch):
            idx = np.sort(order[b * cfg.batch:(b + 1) * cfg.batch])
            imgs, masks = augment(_batch(x[idx]), rng, _batch(m[idx]))
            size = (inputs.INPUT_SIZE, inputs.INPUT_SIZE)
            both = torch.cat([inputs.to_tensor(imgs[:, 0]), F.interpolate(masks, size=size, mode="area")], dim=1)
            both = _random_crops(both, cfg.pretrain_size, rng)  # image and mask cropped together
            out = forward_stages(net, both[:, :1])
            loss = 0.0
            for name, head in heads.items():
                fmap = out[name]
                target = F.adaptive_avg_pool2d(both[:, 1:], fmap.shape[-2:]).clamp(0, 1)
                loss = loss + F.binary_cross_entropy_with_logits(head(fmap), target)
            for g in opt.param_groups:
                g["lr"] = _cosine(step, total, cfg.pretrain_lr, warmup=steps_per_epoch // 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            step += 1
        entry = {"stage": "pretrain", "epoch": epoch + 1, "loss": float(np.mean(losses)),
                 "seconds": round(time.time() - t0, 1)}
        cfg.log.append(entry)
        say(json.dumps(entry))


def predict(net, x: np.ndarray, batch: int = 64) -> np.ndarray:
    """P(COVID-19) for cached squares (identity view = the inference input)."""
    import torch

    net.eval()
    probs = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            logits = net(inputs.to_tensor(x[i:i + batch].astype(np.float32) / 255.0))
            probs.append(torch.sigmoid(logits[:, 0]).numpy())
    return np.concatenate(probs)


def finetune(net, data: dict, cfg: TrainConfig, rng: np.random.Generator, say=print) -> dict:
    """Stage 2: COVID-CT train split, best epoch by validation ROC AUC; returns that epoch's state dict.

    With ``cfg.ema_decay`` > 0 the model evaluated (and returned) each epoch is the exponential moving average of the
    weights, which smooths the epoch-to-epoch swings of validation AUC that 425 training images cause.
    """
    import torch
    import torch.nn.functional as F
    from sklearn.metrics import roc_auc_score

    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    x, y = data["train_x"], data["train_y"]
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.finetune_lr, weight_decay=cfg.weight_decay)
    ema = None
    if cfg.ema_decay > 0:  # evaluate and keep an exponential moving average of the weights (and BN statistics)
        ema = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
    steps_per_epoch = math.ceil(len(x) / cfg.finetune_batch)
    total = steps_per_epoch * sum(cfg.finetune_epochs)
    sizes = [s for s, n in zip(cfg.finetune_sizes, cfg.finetune_epochs) for _ in range(n)]
    best = {"auc": -1.0}
    step = 0
    for epoch, size in enumerate(sizes):
        net.train()
        order = rng.permutation(len(x))
        t0, losses = time.time(), []
        for b in range(steps_per_epoch):
            idx = np.sort(order[b * cfg.finetune_batch:(b + 1) * cfg.finetune_batch])
            if len(idx) < 2:
                continue
            imgs, _ = augment(_batch(x[idx]), rng, profile=cfg.augment)
            logits = net(_random_crops(inputs.to_tensor(imgs[:, 0]), size, rng))[:, 0]
            loss = F.binary_cross_entropy_with_logits(logits, torch.from_numpy(y[idx]))
            for g in opt.param_groups:
                g["lr"] = _cosine(step, total, cfg.finetune_lr, warmup=steps_per_epoch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if ema is not None:
                ema.update_parameters(net)
            losses.append(float(loss.detach()))
            step += 1
        train_s = time.time() - t0
        evaluated = ema.module if ema is not None else net
        p = predict(evaluated, data["val_x"])
        auc = float(roc_auc_score(data["val_y"], p))
        entry = {"stage": "finetune", "epoch": epoch + 1, "size": size, "loss": float(np.mean(losses)),
                 "val_auc": round(auc, 4), "val_acc@0.5": round(float(np.mean((p >= 0.5) == data["val_y"])), 4),
                 "seconds": round(train_s, 1)}
        cfg.log.append(entry)
        say(json.dumps(entry))
        if auc > best["auc"]:
            best = {"auc": auc, "epoch": epoch + 1,
                    "state": {k: v.detach().clone() for k, v in evaluated.state_dict().items()}}
    return best


def train(data_root: Path, cache_dir: Path, cfg: TrainConfig, say=print) -> tuple[dict, dict]:
    """Both stages; returns (best state dict in fp16, summary with the log and the config)."""
    import torch

    from .model import build_model

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    t0 = time.time()
    data = covid_ct_cache(data_root, cache_dir)
    net = build_model(cfg.depth)
    if cfg.pretrain_epochs > 0:
        stage1 = cache_dir / (f"pretrained-r{cfg.depth}-{preprocessing_tag()}-e{cfg.pretrain_epochs}-"
                              f"crop{cfg.pretrain_size}-lr{cfg.pretrain_lr:g}-b{cfg.batch}-seed{cfg.seed}.pt")
        if stage1.is_file():  # stage 1 is deterministic: reuse it across fine-tuning experiments
            net.load_state_dict(torch.load(stage1, weights_only=True))
            say(f"stage 1 weights reused from {stage1}")
        else:
            x, m = semiseg_cache(data_root, cache_dir)
            say(f"caches ready in {time.time() - t0:.0f} s: covid-ct train {len(data['train_x'])}, "
                f"val {len(data['val_x'])}, semiseg {len(x)}")
            pretrain(net, x, m, cfg, rng, say)
            torch.save(net.state_dict(), stage1)
    torch.manual_seed(cfg.seed + 1)  # stage 2 randomness does not depend on whether stage 1 ran or was reused
    best = finetune(net, data, cfg, np.random.default_rng([cfg.seed, 2]), say)
    state = {k: (v.half() if torch.is_floating_point(v) else v) for k, v in best["state"].items()}
    summary = {"best_epoch": best["epoch"], "best_val_auc": best["auc"], "wall_s": round(time.time() - t0, 1),
               "config": {k: v for k, v in asdict(cfg).items() if k != "log"}, "log": cfg.log}
    return state, summary
