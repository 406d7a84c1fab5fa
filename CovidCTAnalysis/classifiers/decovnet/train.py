"""Training and evaluation of DeCoVNet (seed 002, §II-F3, §II-G, §II-H).

§II-G: "trained in an end-to-end manner ... for 100 epochs using Adam optimizer with a constant learning rate of
1e-5. Because the length of CT volume of each patient was not fixed, the batch size was set to 1. The binary
cross-entropy loss function was used"; "Of the training volumes, 15 % were randomly selected for hyperparameter
tuning". Here: Adam with a constant learning rate, batch 1, the binary cross-entropy of the softmax output P(COVID-19)
(two logits, so this is the cross-entropy over the two classes), the augmentation of §II-F3 (``augment.py``) drawn
once per volume, 15 % of the training volumes (whole matched pairs or patients) held for validation; the weights
kept are those of the epoch with the lowest validation loss.

Two optional departures, both off by default (the paper), for short CPU budgets (the model card says which the
shipped weights used and why):
- ``warmup_epochs``: the first epochs run without augmentation and with Dropout3d off. With global max pooling the
  gradient reaches only the strongest response; until lesions are among the strongest responses, augmentation and
  dropout mostly add noise. On 12 synthetic volumes the network learned in ~60 steps without them and not at all
  in as many steps with them. The 0.1.0 weights (which 0.2.0 continues): lr 1e-3, 12 warm-up epochs; at lr 1e-4
  and 3e-4 (3 and 8 warm-up epochs) the loss stayed at 0.69-0.70 for 6-9 epochs on the full synthetic set (model card).
- ``init``: start from a state dict (e.g. the shipped weights) instead of random weights, to continue training them
  with the paper's augmentation from the first epoch (``warmup_epochs`` 0): every epoch that can be kept then saw
  §II-F3's augmentation and dropout.
- ``frozen_bn``: batch-norm statistics estimated at the start of each epoch on a few volumes, then fixed. (With
  batch 1, batch norm normalizes each volume by its own statistics; tried, not used for the shipped weights.)

Samples are prepared once (``inputs.prepare`` on the model grid) and kept as 8-bit CT plus a binary mask; the
channel encoding of the spec (``inputs.encode``) is applied after augmentation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from . import augment, inputs, localize
from .model import build, fast_layout

Log = Callable[[str], None]


@dataclass
class Sample:
    """One prepared volume: 8-bit CT and mask on its model grid, label, boxes (LPS mm) and the grid geometry."""

    name: str
    ct: np.ndarray  # (T, H, W) uint8 = round(255 x normalized CT)
    mask: np.ndarray  # (T, H, W) bool
    label: int
    boxes: list = field(default_factory=list)
    origin: tuple = (0.0, 0.0, 0.0)
    spacing: tuple = (1.0, 1.0, 1.0)
    group: str = ""  # what must not be split across train and validation (a background, a patient)

    @classmethod
    def from_input(cls, name: str, x: inputs.ModelInput, label: int, boxes=(), group: str = "") -> "Sample":
        return cls(name, np.round(x.ct * 255).astype(np.uint8), x.lungs.copy(), int(label), list(boxes),
                   tuple(x.grid.GetOrigin()), tuple(x.grid.GetSpacing()), group or name)

    def array(self) -> np.ndarray:
        return np.stack([self.ct.astype(np.float32) / 255.0, self.mask.astype(np.float32)])

    def grid(self):
        import SimpleITK as sitk

        g = sitk.Image(*self.ct.shape[::-1], sitk.sitkUInt8)
        g.SetOrigin(self.origin)
        g.SetSpacing(self.spacing)
        return g


@dataclass
class TrainConfig:
    arch: str = "decovnet"
    epochs: int = 100
    lr: float = 1e-5
    weight_decay: float = 0.0
    seed: int = 0
    val_fraction: float = 0.15
    augment: bool = True
    threads: int = 2
    time_limit_s: float | None = None
    spec: inputs.InputSpec = field(default_factory=inputs.InputSpec)  # channel encoding (``inputs.encode``)
    warmup_epochs: int = 0  # first epochs without augmentation and with Dropout3d off (0: the paper)
    frozen_bn: bool = False  # batch-norm statistics estimated once per epoch, then fixed (see the module doc)
    bn_volumes: int = 16
    init: dict | None = None  # a state dict to start from (see the module doc)
    dropout: float = 0.5  # Dropout3d's p after the warm-up; 0 is Table III's "DeCoVNet w/o dropout"
    device: str = "cpu"  # "cuda" for the paper's configuration on a GPU


def _bn_layers(net):
    import torch

    return [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def recalibrate_bn(net, samples: Sequence[Sample], spec: inputs.InputSpec) -> None:
    """Batch-norm running statistics as the plain average over ``samples`` (no augmentation), then fixed."""
    import torch

    layers = _bn_layers(net)
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    net.train()
    with torch.no_grad():
        for s in samples:
            x = torch.as_tensor(inputs.encode(s.array(), spec))[None].to(next(net.parameters()).device)
            net(x.contiguous(memory_format=torch.channels_last_3d))
    for m in layers:
        m.eval()


def split_validation(samples: Sequence[Sample], fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """(train, validation): ``fraction`` of the groups drawn at random (groups are never split)."""
    groups = sorted({s.group for s in samples})
    rng = np.random.default_rng(seed)
    n_val = max(int(round(fraction * len(groups))), 1) if len(groups) > 1 else 0
    val_groups = set(rng.choice(groups, size=n_val, replace=False).tolist()) if n_val else set()
    return [s for s in samples if s.group not in val_groups], [s for s in samples if s.group in val_groups]


def _loss_and_probability(net, array: np.ndarray, label: int):
    import torch
    import torch.nn.functional as F

    device = next(net.parameters()).device
    x = torch.as_tensor(array)[None].to(device).contiguous(memory_format=torch.channels_last_3d)
    logits = net(x)
    loss = F.cross_entropy(logits, torch.tensor([label], device=device))
    return loss, torch.softmax(logits.detach(), 1)[0, 1].item()


def evaluate_loss(net, samples: Sequence[Sample], spec: inputs.InputSpec) -> tuple[float, np.ndarray]:
    """(mean loss, P(COVID-19) per sample) without augmentation."""
    import torch

    net.eval()
    losses, probs = [], []
    with torch.inference_mode():
        for s in samples:
            loss, p = _loss_and_probability(net, inputs.encode(s.array(), spec), s.label)
            losses.append(float(loss))
            probs.append(p)
    return (float(np.mean(losses)) if losses else float("nan")), np.array(probs)


def train(samples: Sequence[Sample], config: TrainConfig, log: Log = print,
          validation: Sequence[Sample] | None = None) -> tuple[dict, dict]:
    """Train a network of ``config.arch``; returns (best state dict, history)."""
    import torch

    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = np.random.default_rng(config.seed)
    if validation is None:
        train_set, val_set = split_validation(samples, config.val_fraction, config.seed)
    else:
        train_set, val_set = list(samples), list(validation)
    net = build(config.arch)
    if config.init is not None:
        from ...models.weights import float_state

        net.load_state_dict(float_state(config.init))
    net = fast_layout(net.to(config.device))
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history = {"epochs": [], "train": len(train_set), "validation": len(val_set),
               "train_positives": sum(s.label for s in train_set),
               "validation_positives": sum(s.label for s in val_set)}
    best = (np.inf, None, -1)
    start = time.time()
    dropouts = [m for m in net.modules() if isinstance(m, torch.nn.Dropout3d)]
    for epoch in range(1, config.epochs + 1):
        net.train()
        warm = epoch <= config.warmup_epochs
        for m in dropouts:
            m.p = 0.0 if warm else config.dropout
        if config.frozen_bn:
            pick = rng.choice(len(train_set), size=min(config.bn_volumes, len(train_set)), replace=False)
            recalibrate_bn(net, [train_set[i] for i in pick], config.spec)  # leaves the BN layers in eval mode
        order = rng.permutation(len(train_set))
        losses = []
        for i in order:
            s = train_set[i]
            array = s.array()
            if config.augment and not warm:
                array, _ = augment.augment(array, rng)
            loss, _ = _loss_and_probability(net, inputs.encode(array, config.spec), s.label)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        if val_set:
            val_loss, val_p = evaluate_loss(net, val_set, config.spec)
        else:
            val_loss, val_p = float(np.mean(losses)), np.array([])
        val_y = np.array([s.label for s in val_set])
        val_acc = float(np.mean((val_p >= 0.5) == val_y)) if val_set else None
        row = {"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": val_loss, "val_accuracy": val_acc,
               "wall_s": round(time.time() - start, 1)}
        history["epochs"].append(row)
        log(f"epoch {epoch}: train loss {row['train_loss']:.4f}, val loss {val_loss:.4f}, "
            f"val accuracy {val_acc}, {row['wall_s']:.0f} s")
        if val_loss < best[0]:
            best = (val_loss, {k: v.detach().cpu().clone().contiguous() for k, v in net.state_dict().items()}, epoch)
            history["validation_predictions"] = {  # of the kept epoch: what a calibration would be fitted on
                "names": [s.name for s in val_set], "labels": val_y.tolist(), "probabilities": val_p.tolist(),
                "groups": [s.group for s in val_set]}
        if config.time_limit_s is not None and time.time() - start > config.time_limit_s:
            log(f"time limit {config.time_limit_s:.0f} s reached after epoch {epoch}")
            break
    history["best_epoch"] = best[2]
    history["best_val_loss"] = best[0]
    history["wall_s"] = round(time.time() - start, 1)
    return best[1], history


def network_seconds(net, samples: Sequence[Sample], spec: inputs.InputSpec) -> float:
    """Median seconds of one forward pass (no augmentation, no localization) over ``samples``: Table III's cost."""
    import torch

    net.eval()
    times = []
    with torch.inference_mode():
        for s in samples:
            x = torch.as_tensor(inputs.encode(s.array(), spec))[None].to(next(net.parameters()).device)
            x = x.contiguous(memory_format=torch.channels_last_3d)
            start = time.perf_counter()
            net(x)
            if x.is_cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    return float(np.median(times)) if times else float("nan")


def evaluate(model, samples: Sequence[Sample], log: Log | None = None) -> list[dict]:
    """P(COVID-19) and the localized lesion centre (predicted positives) of each sample, as ``classify_volume``.

    model: an ``infer.LoadedDeCoVNet``. Returns one dict per sample: name, label, probability, centre_mm, source,
    boxes - the input of ``localize.hit_rate`` and of the evaluation metrics.
    """
    rows = []
    for s in samples:
        array = s.array()
        p, cam = model.run(array)
        centre, source = None, None
        if p >= 0.5:
            loc = localize.localize(array[0], array[1] > 0.5, cam)
            if not loc.empty:
                centre = localize.centre_mm(loc.mask, s.grid())
                source = loc.source
        rows.append({"name": s.name, "label": s.label, "probability": p, "centre_mm": centre, "source": source,
                     "boxes": s.boxes})
        if log:
            log(f"{s.name}: label {s.label}, P(COVID-19) {p:.3f}")
    return rows


# ---------------------------------------------------------------------------------------------- sample sources


def synthetic_samples(folder: Path, spec: inputs.InputSpec, split: str, log: Log | None = None) -> list[Sample]:
    """Prepared samples of one split of a ``synthetic.build_dataset`` folder (group = background variant)."""
    from .synthetic import load_case, read_index

    out = []
    for row in read_index(folder, split):
        hu, lungs, _, meta = load_case(Path(folder) / row["file"])
        x = inputs.prepare_arrays(hu, lungs, meta["spacing"], spec)
        boxes = [lesion["box"] for lesion in meta["lesions"]]
        group = f"{meta['background']}-v{meta['variant']}"  # a matched pair stays together
        out.append(Sample.from_input(row["file"], x, meta["label"], boxes, group=group))
        if log:
            log(f"prepared {row['file']}: {x.array.shape[1]} slices")
    return out


def cohort_samples(items, spec: inputs.InputSpec, log: Log | None = None, lung_model: str = "lungs-classic",
                   device: str = "cpu") -> list[Sample]:
    """Prepared samples of a user's cohort (``cohort.read_cohort``): load_ct, the lung mask of ``lung_model``
    (lungs-classic, or lungs-unet: §II-F1's 2-D U-Net trained on unsupervised masks), model grid."""
    from ...io import load_ct
    from ...lungs.select import segment_lungs

    out = []
    for item in items:
        ct = load_ct(item.path)
        lungs = segment_lungs(ct.image, lung_model, display_windowed=ct.display_windowed, device=device)
        x = inputs.prepare(ct.image, lungs, spec)
        out.append(Sample.from_input(str(item.path), x, item.label))
        if log:
            log(f"prepared {item.path}: label {item.label}, {x.array.shape[1]} slices")
    return out
