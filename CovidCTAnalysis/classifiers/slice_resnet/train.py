"""Training of slice-resnet (Gozes et al., seed 003, §2.2) on COVID-CT, and its honest evaluation by cross-validation.

Recipe (``TrainConfig()``; what ships, the model card has the numbers). The network starts from ImageNet: §2.2
fine-tunes an ImageNet ResNet-50; the ImageNet weights available offline are EfficientNet-Lite0/1/2's
(``model.py``), Lite0 by default. Fine-tuning with binary cross-entropy, AdamW (lr 5e-4, weight decay 1e-4; the paper
names Adam at lr 1e-4 for its far larger cohort), batch 32, one warm-up epoch then cosine decay per step, for a FIXED
number of epochs (8). The batches are augmented as §2.2 says - rotation, horizontal flips, cropping - with
``augment.py``'s profile "paper" (rotation +-10 deg, zoom 0.9-1.15, shift +-5 %, flips), then a random ``crop`` px
window (272) of the network input is taken: the pixel scale of inference, at 3/4 of the compute.

Input size: 320 px, where §2.2 (ResNet-50) takes 224 (``inputs.INPUT_SIZE``). A departure chosen by cross-validation
(model card, "A larger input"): COVID-CT's figures are mostly 300-600 px wide, and at 224 px the ImageNet network
loses the detail of faint ground glass; ``input_size`` 224 is the paper's, and what the lesion-guidance and
semi-synthetic experiments below were cached and run at.

Framing: the cached squares are made by ``infer.image_square`` from canonical HU exactly as inference does for a
2-D input (a display-windowed figure: trimmed of uniform borders, padded square with air; with ``lung_focus``: the
lung ROI of the figure's lungs-unet mask, everything outside the lungs and their margin set to air).

No epoch and no recipe is ever chosen on the data it is scored on. ``cross_validate`` pools the official train and val
splits (543 figures) and splits them into 5 patient-disjoint, class-stratified folds (scikit-learn's
``StratifiedGroupKFold``; patients from the COVID-CT metadata CSVs, a figure with no patient ID is its own group):
each fold's network is trained with the fixed recipe on the other four and scored once, after its last epoch, on its
own fold. ``train`` fits the same recipe on a chosen split ("train", or "train+val" for the shipped weights) and,
when the val split is not in training, scores it after the last epoch.

Lesion guidance (``lesion_guidance`` > 0; not in the paper, an experiment: lesion_guidance.py): every step also
trains the head's class activation map on half a batch of COVID-SemiSeg's pseudo-labelled slices against their
infection masks; the figure-level loss and its data are unchanged.

Semi-synthetic CT slices (``synthetic`` > 0 with ``synthetic_dir``; not in the paper, an experiment:
synthetic_slices.py): every step also draws half a batch of lung-ROI slices of semi-synthetic CT volumes, half with
lesions and half without, and adds their binary cross-entropy, times ``synthetic``, to the figures'.

Mixup (``mixup`` > 0; not in the paper, an experiment: ``mixup``): the figures of each batch blended in pairs, their
labels alike. Cross-validated against the shipped recipe and not better (model card).

All randomness of the networks flows from one seed (the CV folds are always those of seed 0); the data cache is
rebuilt identically from ../shared/data and named by a hash of ``inputs.py``.

Several processes (``torchrun``, models/distributed.py): ``fit`` takes a ``Distributed`` and then trains the network
in DistributedDataParallel, every process drawing the same global batch of ``batch`` images and training on its
share, so the recipe per global batch (size, steps per epoch, schedule) is the one above; each process draws its own
augmentations. One process (rank 0) logs and writes.
"""

from __future__ import annotations

import csv
import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ...models.weights import half_state
from . import inputs
from .augment import augment
from .lesion_guidance import guidance_loss, semiseg_cache
from .model import DEFAULT_BACKBONE, build_model, family, with_input_size
from .synthetic_slices import balanced_draw, synthetic_cache

FOLDS = 5
#: The network input of the shipped recipe (§2.2 takes 224, ``inputs.INPUT_SIZE``; see the module doc).
RECIPE_INPUT_SIZE = 320


def default_crop(input_size: int) -> int:
    """The random-crop side for an input of ``input_size`` px: 6/7 of it, to 16 px (192 of 224, 272 of 320)."""
    return int(round(input_size * 6 / 7 / 16)) * 16


@dataclass
class TrainConfig:
    backbone: str = DEFAULT_BACKBONE
    pretrained: str = "imagenet"  # "imagenet" (the backbone's wheel), "none", or a state dict file
    seed: int = 0
    batch: int = 32
    epochs: int = 8
    crop: int = default_crop(RECIPE_INPUT_SIZE)  # random crop of the input (same pixel scale as inference)
    input_size: int = RECIPE_INPUT_SIZE  # the network's input side; squares cached at inputs.cache_size of it
    lr: float = 5e-4
    weight_decay: float = 1e-4
    augment: str = "paper"  # augment.PROFILES
    lung_focus: bool = False  # train on lung-focused squares (inputs.py); the registry entry must then say so
    lesion_guidance: float = 0.0  # weight of lesion_guidance.py's loss (SemiSeg half-batches); 0: the paper's recipe
    synthetic: float = 0.0  # weight of the semi-synthetic CT slices' loss (synthetic_slices.py); 0: the paper's recipe
    synthetic_dir: str = ""  # a decovnet.synthetic.build_dataset folder (its train volumes), with synthetic > 0
    mixup: float = 0.0  # alpha of mixup's Beta(alpha, alpha) between the figures of a batch; 0: the paper's recipe
    probe_head: bool = False  # start the head from a logistic regression on the frozen features (``probe_head``)
    probe_c: str = "1"  # that regression's inverse L2 strength C, or "auto": chosen by log-loss in inner 5-fold CV
    threads: int = 2
    device: str = "cpu"  # "cpu", "cuda" or "auto" (models/device.py); under torchrun each process's own
    log: list = field(default_factory=list)


# ----------------------------------------------------------------------------------------------------------- data
def preprocessing_tag() -> str:
    """Short hash of inputs.py, in the cache names: caches built by other preprocessing code are never reused."""
    from ...models.training import code_tag

    return code_tag(inputs)


def load_square(path: Path, lung_focus: bool = False, size: int = inputs.CACHE_SIZE) -> np.ndarray:
    """One 2-D figure as the cached ``size`` px uint8 square, through io (HU) and ``infer.image_square`` exactly as at
    inference."""
    from ...io import load_ct
    from .infer import image_square

    square = image_square(load_ct(path), lung_focus, size=size)[0]
    return inputs.to_cache(square)


def covid_ct_cache(data_root: Path, cache_dir: Path, lung_focus: bool = False, size: int = inputs.CACHE_SIZE
                   ) -> dict[str, np.ndarray]:
    """COVID-CT train/val squares (``size`` px), labels and file names, cached in ``cache_dir`` (an .npz outside the
    repository)."""
    from ...evaluation.datasets import covid_ct_split

    from ...io.writers import atomic_path

    sized = "" if size == inputs.CACHE_SIZE else f"-{size}px"
    cache = cache_dir / f"covid-ct-{preprocessing_tag()}{'-focus' if lung_focus else ''}{sized}.npz"
    if cache.is_file():
        return dict(np.load(cache))
    out = {}
    for split in ("train", "val"):
        items = covid_ct_split(data_root / "covid-ct", split)
        out[f"{split}_x"] = np.stack([load_square(p, lung_focus, size) for p, _ in items])
        out[f"{split}_y"] = np.array([y for _, y in items], dtype=np.float32)
        out[f"{split}_names"] = np.array([p.name for p, _ in items])
    cache_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(cache) as tmp:  # a reader never sees half a cache (e.g. another training process)
        with open(tmp, "wb") as f:
            np.savez(f, **out)
    return out


def patient_ids(covid_ct_root: Path) -> dict[str, str]:
    """File name -> patient ID from the COVID-CT metadata CSVs (COVID and non-COVID IDs kept apart)."""
    ids = {}
    for name, file_col, patient_col, prefix in (("COVID-CT-MetaInfo.csv", "File name", "Patient ID", "covid:"),
                                                ("NonCOVID-CT-MetaInfo.csv", "image name", "patient id", "noncovid:")):
        path = Path(covid_ct_root) / name
        if not path.is_file():
            continue
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            for row in csv.DictReader(f):
                file, patient = (row.get(file_col) or "").strip(), (row.get(patient_col) or "").strip()
                if file and patient:
                    ids[file] = prefix + patient
    return ids


def pooled(data: dict, ids: dict[str, str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(squares, labels, names, groups) of train + val; a figure without a patient ID is its own group."""
    x = np.concatenate([data["train_x"], data["val_x"]])
    y = np.concatenate([data["train_y"], data["val_y"]])
    names = np.concatenate([data["train_names"], data["val_names"]])
    groups = np.array([ids.get(str(n), "figure:" + str(n)) for n in names])
    return x, y, names, groups


def folds(y: np.ndarray, groups: np.ndarray, k: int = FOLDS, seed: int = 0) -> list[np.ndarray]:
    """Index arrays of ``k`` patient-disjoint, class-stratified folds."""
    from sklearn.model_selection import StratifiedGroupKFold

    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [test for _, test in splitter.split(np.zeros(len(y)), y.astype(int), groups)]


#: The seed of every slice trainer's CV folds, whatever the run's own seed: runs of one recipe with other seeds, and
#: the project's classifiers among themselves (the consensus's validation), score the same held-out figures.
FOLD_SEED = 0


def out_of_fold(y: np.ndarray, groups: np.ndarray, k: int,
                fit_predict: Callable[[int, np.ndarray, np.ndarray], np.ndarray],
                say: Callable[[str], None] = print, only=None) -> dict:
    """The cross-validation loop of the slice trainers (slice-resnet, da-cmil, cvae-netvlad, lobe-patch): for each
    fold of ``folds`` (seed ``FOLD_SEED``; 1-based numbers in ``only``, or all), ``fit_predict(i, train_index,
    test_index)`` trains on the other folds and returns P(COVID-19) of the held-out one, scored once. Returns
    {"folds": per fold n / positives / ROC AUC, "auc_mean", "auc_sd", "pooled": metrics of every scored figure,
    "fold_of", "oof"} (the last two as lists)."""
    from ...evaluation import metrics

    oof = np.full(len(y), np.nan, np.float32)
    fold_of = np.full(len(y), -1, int)
    per_fold = []
    for i, test in enumerate(folds(y, groups, k, FOLD_SEED)):
        if only and i + 1 not in only:
            continue
        oof[test] = fit_predict(i, np.setdiff1d(np.arange(len(y)), test), test)
        fold_of[test] = i
        per_fold.append({"fold": i + 1, "n": int(len(test)), "positives": int(y[test].sum()),
                         "roc_auc": metrics.roc_auc(y[test], oof[test])})
        say(json.dumps(per_fold[-1]))
    aucs = np.array([f["roc_auc"] for f in per_fold])
    scored = fold_of >= 0
    return {"folds": per_fold, "auc_mean": float(aucs.mean()),
            "auc_sd": float(aucs.std(ddof=1)) if len(aucs) > 1 else None,
            "pooled": metrics.summary(y[scored], oof[scored]), "fold_of": fold_of.tolist(), "oof": oof.tolist()}


# ------------------------------------------------------------------------------------------------------ training
def _batch(u8: np.ndarray):
    import torch

    return torch.from_numpy(u8.astype(np.float32) / 255.0)[:, None]


def _random_crops(x, size: int, rng: np.random.Generator, masks=None):
    """Random ``size`` x ``size`` crops of network inputs (N, 1, 224, 224), one per image, at the input's scale; with
    ``masks`` (N, 1, 224, 224), (crops, the same crops of the masks)."""
    import torch

    full = x.shape[-1]
    if size >= full:
        return x if masks is None else (x, masks)
    offsets = rng.integers(0, full - size + 1, (x.shape[0], 2))

    def crop(t):
        return torch.stack([t[i, :, oy:oy + size, ox:ox + size] for i, (oy, ox) in enumerate(offsets)])

    return crop(x) if masks is None else (crop(x), crop(masks))


def _views(u8: np.ndarray, cfg: "TrainConfig", rng: np.random.Generator):
    """Cached uint8 squares as augmented network inputs (``cfg.augment``, then random ``cfg.crop`` px crops)."""
    imgs, _ = augment(_batch(u8), rng, profile=cfg.augment)
    return _random_crops(inputs.to_tensor(imgs[:, 0], cfg.input_size), cfg.crop, rng)


def _cosine(step: int, total: int, lr: float, warmup: int) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    return 0.5 * lr * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def initial_network(cfg: TrainConfig):
    """The backbone with its starting weights (``cfg.pretrained``), carrying its input size (saved with it)."""
    from ...networks.pretrained import load_pretrained, wheel_weights

    net = build_model(cfg.backbone)
    if cfg.pretrained == "imagenet":
        load_pretrained(net, family(cfg.backbone), wheel_weights(cfg.backbone), 1)
    elif cfg.pretrained != "none":
        load_pretrained(net, family(cfg.backbone), Path(cfg.pretrained), 1)
    return with_input_size(net, cfg.input_size)


def predict(net, x: np.ndarray, batch: int = 64, size: int = inputs.INPUT_SIZE, mirrored: bool = False
            ) -> np.ndarray:
    """P(COVID-19) for cached squares seen at ``size`` px (identity view = the inference input); ``mirrored``: of
    their left-right mirror images instead (a view training's horizontal flips also show)."""
    import torch

    net.eval()
    probs = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            view = inputs.to_tensor(x[i:i + batch].astype(np.float32) / 255.0, size)
            logits = net(torch.flip(view, dims=(-1,)) if mirrored else view)
            probs.append(torch.sigmoid(logits[:, 0]).numpy())
    return np.concatenate(probs) if probs else np.zeros(0, np.float32)


def fit(x: np.ndarray, y: np.ndarray, cfg: TrainConfig, seed: int, say: Callable[[str], None] = print,
        tag: str = "", dist=None, guide: dict | None = None, synth: dict | None = None) -> object:
    """The fixed recipe on (x, y): the network after its last epoch (eval mode, on the CPU).

    ``dist`` (models.distributed.Distributed, under torchrun): DDP, each global batch shared out over the processes;
    only rank 0 calls ``say``. ``guide`` (``lesion_guidance.semiseg_cache``): with ``cfg.lesion_guidance`` > 0,
    every step adds half a batch of these squares, whose class activation map is trained against their masks
    (lesion_guidance.py); their draws and augmentations come from a generator of their own, so the figures' stream
    is the recipe's. ``synth`` (``synthetic_slices.synthetic_cache``): with ``cfg.synthetic`` > 0, every step adds
    half a batch of these slices (balanced), classified with the figures, their loss weighted by ``cfg.synthetic``;
    drawn and augmented by a generator of their own too.
    """
    import torch
    import torch.nn.functional as F

    from ...models.device import select_device

    guided = cfg.lesion_guidance > 0
    if guided and (guide is None or dist is not None or family(cfg.backbone) != "efficientnet"):
        raise ValueError("lesion guidance needs the SemiSeg squares, one process and an EfficientNet-Lite backbone")
    synthetic = cfg.synthetic > 0
    if synthetic and (synth is None or dist is not None or guided):
        raise ValueError("semi-synthetic slices need their squares and one process, without lesion guidance")
    if (guided or synthetic) and cfg.input_size != inputs.INPUT_SIZE:
        raise ValueError(f"lesion guidance and semi-synthetic slices are cached for {inputs.INPUT_SIZE} px inputs only")
    if cfg.crop > cfg.input_size:
        raise ValueError(f"a {cfg.crop} px crop does not fit a {cfg.input_size} px input")
    synth_rng = np.random.default_rng([seed, 2])
    mix_rng = np.random.default_rng([seed, 3])  # mixup's draws: the figures' order and augmentations stay the recipe's
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)  # the order of the images: the same in every process
    guide_rng = np.random.default_rng([seed, 1])
    aug_rng = rng if dist is None else np.random.default_rng([seed, dist.rank])  # augmentations: each its own
    device = dist.device if dist is not None else torch.device("cpu") if cfg.device == "cpu" else select_device(
        cfg.device)
    net = initial_network(cfg)
    if cfg.probe_head:
        entry = {"run": tag, "probe_c": probe_head(net, x, y, cfg.input_size, cfg.probe_c)}
        cfg.log.append(entry)
        if dist is None or dist.is_main:
            say(json.dumps(entry))
    net = net.to(device, memory_format=torch.channels_last)
    model = net if dist is None else dist.wrap(net)
    world = 1 if dist is None else dist.world_size
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(x) / cfg.batch)
    total = steps_per_epoch * cfg.epochs
    step = 0
    for epoch in range(cfg.epochs):
        model.train()
        order = rng.permutation(len(x))
        t0, losses, extra_losses = time.time(), [], []
        for b in range(steps_per_epoch):
            idx = np.sort(order[b * cfg.batch:(b + 1) * cfg.batch])
            if len(idx) < 2 * world:  # BatchNorm needs two images (in every process: all step together)
                continue
            if dist is not None:
                idx = dist.shard(idx)
            batch = _views(x[idx], cfg, aug_rng)
            targets = torch.from_numpy(y[idx])
            if cfg.mixup > 0:
                batch, targets = mixup(batch, targets, cfg.mixup, mix_rng)
            if guided:
                gbatch, gmasks = _guide_batch(guide, cfg, guide_rng)
                feats = net.features(torch.cat([batch, gbatch]).to(device).contiguous(
                    memory_format=torch.channels_last))
                logits = net.classify_features(feats[:len(idx)])[:, 0]
                guide_loss = guidance_loss(net, feats[len(idx):], gmasks.to(device))
            elif synthetic:
                pick = balanced_draw(synth["y"], max(2, cfg.batch // 2), synth_rng)
                sbatch = _views(synth["x"][pick], cfg, synth_rng)
                both = model(torch.cat([batch, sbatch]).to(device).contiguous(memory_format=torch.channels_last))
                logits, slogits = both[:len(idx), 0], both[len(idx):, 0]
                synth_loss = F.binary_cross_entropy_with_logits(slogits, torch.from_numpy(synth["y"][pick]).to(device))
            else:
                logits = model(batch.to(device).contiguous(memory_format=torch.channels_last))[:, 0]
            loss = F.binary_cross_entropy_with_logits(logits, targets.to(device))
            if synthetic:
                extra_losses.append(float(synth_loss.detach()))
                loss = loss + cfg.synthetic * synth_loss
            if guided:
                extra_losses.append(float(guide_loss.detach()))
                loss = loss + cfg.lesion_guidance * guide_loss
            for g in opt.param_groups:
                g["lr"] = _cosine(step, total, cfg.lr, warmup=steps_per_epoch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            step += 1
        mean_loss = float(np.mean(losses)) if dist is None else dist.mean(float(np.mean(losses)))
        entry = {"run": tag, "epoch": epoch + 1, "loss": round(mean_loss, 4), "seconds": round(time.time() - t0, 1)}
        if guided or synthetic:
            entry["guidance_loss" if guided else "synthetic_loss"] = round(float(np.mean(extra_losses)), 4)
        if dist is not None:
            entry["processes"] = dist.world_size
        cfg.log.append(entry)
        if dist is None or dist.is_main:
            say(json.dumps(entry))
    return net.cpu().eval()


def probe_head(net, x: np.ndarray, y: np.ndarray, size: int, c: str = "1", batch: int = 32) -> float:
    """Linear probing, then fine-tuning (LP-FT; Kumar et al., ICLR 2022; not in the paper, an experiment): the head of
    ``net`` (an EfficientNet-Lite, eval mode, on the CPU) set to an L2 logistic regression (scikit-learn) on the
    pooled ImageNet features of the training squares ``x`` as inference sees them (no augmentation), with its
    standardization folded into the weights. Fine-tuning then starts from a head that already separates the classes,
    so its first gradients do not tear the pretrained features apart to fit a random head.

    ``c``: the regression's C, or "auto": the C of 11 from 1e-4 to 10 with the best log-loss in a stratified 5-fold
    CV of ``x`` (figures, not patients, are split: a mild optimism). Measured at 320 px, both did worse than the random
    head (model card, "More experiments at 320 px"): with C = 1 a near-separating head fitted in eval mode on
    unaugmented squares gave logits far off on augmented batches with BatchNorm in training mode; with "auto" training
    went as usual and the CV AUC still fell by 0.1. Returns the C used."""
    import torch
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

    if not hasattr(net, "stage_layers"):
        raise ValueError("the probe head needs an EfficientNet-Lite backbone")
    net.eval()
    with torch.no_grad():
        feats = np.concatenate([net._avg_pooling(net.features(inputs.to_tensor(
            x[i:i + batch].astype(np.float32) / 255.0, size))).flatten(1).numpy() for i in range(0, len(x), batch)])
    mean, scale = feats.mean(0), feats.std(0) + 1e-6
    z = (feats - mean) / scale
    with warnings.catch_warnings():  # scikit-learn 1.9 announces LogisticRegressionCV's coming attribute changes
        warnings.simplefilter("ignore", FutureWarning)
        lr = (LogisticRegressionCV(Cs=np.logspace(-4, 1, 11), cv=5, scoring="neg_log_loss", max_iter=2000)
              if c == "auto" else LogisticRegression(C=float(c), max_iter=2000)).fit(z, y)
    weight = lr.coef_[0] / scale
    with torch.no_grad():
        net._fc.weight.copy_(torch.from_numpy(weight[None].astype(np.float32)))
        net._fc.bias.fill_(float(lr.intercept_[0] - (weight * mean).sum()))
    return float(np.ravel(lr.C_)[0]) if c == "auto" else float(c)


def mixup(batch, targets, alpha: float, rng: np.random.Generator):
    """Mixup (Zhang et al., ICLR 2018; not in the paper, an experiment): each figure blended with another of the batch
    by one weight lam ~ Beta(alpha, alpha) per batch, its target blended alike (binary cross-entropy is linear in the
    target, so this is the mixup loss)."""
    import torch

    lam = float(rng.beta(alpha, alpha))
    perm = torch.from_numpy(rng.permutation(len(targets)))
    return lam * batch + (1.0 - lam) * batch[perm], lam * targets + (1.0 - lam) * targets[perm]


def _guide_batch(guide: dict, cfg: TrainConfig, rng: np.random.Generator):
    """Half a batch of SemiSeg squares as network inputs, and their infected fractions on the same crops."""
    import torch.nn.functional as F

    pick = np.sort(rng.integers(0, len(guide["x"]), max(2, cfg.batch // 2)))
    imgs, masks = augment(_batch(guide["x"][pick]), rng, masks=_batch(guide["mask"][pick]), profile=cfg.augment)
    masks = F.interpolate(masks, size=(inputs.INPUT_SIZE, inputs.INPUT_SIZE), mode="bilinear", align_corners=False,
                          antialias=True)
    return _random_crops(inputs.to_tensor(imgs[:, 0]), cfg.crop, rng, masks)


def _guide(data_root: Path, cache_dir: Path, cfg: TrainConfig) -> dict | None:
    return semiseg_cache(data_root, cache_dir) if cfg.lesion_guidance > 0 else None


def _synth(cache_dir: Path, cfg: TrainConfig) -> dict | None:
    if cfg.synthetic <= 0:
        return None
    if not cfg.synthetic_dir:
        raise ValueError("synthetic > 0 needs synthetic_dir, a generated semi-synthetic folder")
    return synthetic_cache(Path(cfg.synthetic_dir), cache_dir)


def _cache(data_root: Path, cache_dir: Path, cfg: TrainConfig, dist) -> dict:
    size = inputs.cache_size(cfg.input_size)
    if dist is None:
        return covid_ct_cache(data_root, cache_dir, cfg.lung_focus, size)
    with dist.main_first():  # rank 0 builds a missing cache, the others then read it
        return covid_ct_cache(data_root, cache_dir, cfg.lung_focus, size)


def cross_validate(data_root: Path, cache_dir: Path, cfg: TrainConfig, k: int = FOLDS,
                   say: Callable[[str], None] = print, dist=None) -> dict:
    """5-fold patient-disjoint CV of the fixed recipe on COVID-CT train+val: out-of-fold P(COVID-19) per figure and
    the ROC AUC of each fold (scored once, after the last epoch)."""
    import torch

    torch.set_num_threads(cfg.threads)
    t0 = time.time()
    x, y, names, groups = pooled(_cache(data_root, cache_dir, cfg, dist), patient_ids(data_root / "covid-ct"))
    guide, synth = _guide(data_root, cache_dir, cfg), _synth(cache_dir, cfg)

    mirrored = np.full(len(y), np.nan, np.float32)  # the same networks on the mirror images (test-time flips)

    def fit_predict(i, train_idx, test):
        net = fit(x[train_idx], y[train_idx], cfg, seed=cfg.seed * 100 + i, say=say, tag=f"fold {i + 1}/{k}",
                  dist=dist, guide=guide, synth=synth)
        mirrored[test] = predict(net, x[test], size=cfg.input_size, mirrored=True)
        return predict(net, x[test], size=cfg.input_size)

    # The folds stay those of seed 0 whatever cfg.seed is: runs with other seeds then score the same held-out figures
    # (seed spread, seed ensembles), the folds of the other classifiers' CVs at their default seed 0.
    cv = out_of_fold(y, groups, k, fit_predict, say)
    return {"folds": cv["folds"], "auc_mean": cv["auc_mean"], "auc_sd": cv["auc_sd"], "pooled": cv["pooled"],
            "names": [str(n) for n in names], "labels": y.tolist(), "groups": [str(g) for g in groups],
            "fold_of": cv["fold_of"], "oof": cv["oof"], "oof_mirrored": mirrored.tolist(),
            "config": {k2: v for k2, v in asdict(cfg).items() if k2 != "log"}, "log": cfg.log,
            "wall_s": round(time.time() - t0, 1)}


def train(data_root: Path, cache_dir: Path, cfg: TrainConfig, on: str = "train",
          say: Callable[[str], None] = print, dist=None) -> tuple[dict, dict]:
    """The fixed recipe on the official ``on`` split ("train" or "train+val"): (fp16 state dict, summary).

    With ``on == "train"`` the val split is scored once, after the last epoch (its numbers chose nothing).
    """
    import torch

    from ...evaluation import metrics

    if on not in ("train", "train+val"):
        raise ValueError(f"on must be 'train' or 'train+val', not {on!r}")
    torch.set_num_threads(cfg.threads)
    t0 = time.time()
    data = _cache(data_root, cache_dir, cfg, dist)
    x, y = data["train_x"], data["train_y"]
    if on == "train+val":
        x, y = np.concatenate([x, data["val_x"]]), np.concatenate([y, data["val_y"]])
    net = fit(x, y, cfg, seed=cfg.seed, say=say, tag=on, dist=dist, guide=_guide(data_root, cache_dir, cfg),
              synth=_synth(cache_dir, cfg))
    summary = {"trained_on": on, "config": {k: v for k, v in asdict(cfg).items() if k != "log"}, "log": cfg.log}
    if dist is not None:
        summary["distributed"] = {"processes": dist.world_size, "backend": dist.backend}
    if on == "train" and (dist is None or dist.is_main):  # scored once, by the process that writes
        p = predict(net, data["val_x"], size=cfg.input_size)
        summary["val"] = metrics.summary(data["val_y"], p)
        summary["val_scores"] = {str(n): round(float(v), 5) for n, v in zip(data["val_names"], p)}
    summary["wall_s"] = round(time.time() - t0, 1)
    return half_state(net), summary
