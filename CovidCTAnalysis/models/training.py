"""What the project's 2-D segmentation trainers share: weighted slice sources, batch drawing, the LR schedule.

lesions-unet (lesions/training.py) and lungs-unet (lungs/unet_train.py) both train on slices pooled from several
sources, each drawn with a relative weight, with AdamW, a 5 % linear warm-up and cosine decay.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass
class Source:
    """Training slices (float16 [N, S, S]) and their targets (uint8 [N, S, S]), drawn with relative ``weight``."""

    name: str
    images: np.ndarray
    targets: np.ndarray
    weight: float


def draw_batch(sources: list[Source], rng: np.random.Generator, batch: int,
               transform: Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray] | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """(images float32 [B, S, S], targets [B, S, S]): each slice from a source picked by weight, then uniformly.

    ``transform(image, target, rng)`` may alter each float32 image (e.g. paste a synthetic lesion).
    """
    weights = np.array([s.weight for s in sources], float)
    picks = rng.choice(len(sources), size=batch, p=weights / weights.sum())
    images, targets = [], []
    for k in picks:
        j = int(rng.integers(len(sources[k].images)))
        image, target = sources[k].images[j].astype(np.float32), sources[k].targets[j]
        images.append(transform(image, target, rng) if transform is not None else image)
        targets.append(target)
    return np.stack(images), np.stack(targets)


def adamw_warmup_cosine(net, lr: float, iterations: int, weight_decay: float = 1e-4):
    """(AdamW optimizer, scheduler): linear warm-up over the first 5 % of ``iterations``, then cosine decay to 0."""
    import torch

    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    warm = max(1, iterations // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, i / iterations))))
    return opt, sched


def optimize_step(net, opt, sched, x, y, loss_fn, bf16: bool) -> float:
    """One optimizer step on batch (x, y), the forward pass under bfloat16 autocast (on x's device type) when
    ``bf16``; the loss."""
    import torch

    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = net(x)
    loss = loss_fn(logits, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    return loss.item()


def save_training_run(out, state: dict, summary: dict) -> None:
    """Write a trainer's fp16 state dict to ``out`` and its summary to ``out`` with suffix .json (both atomically),
    then print the val ROC AUC (when the val split was held out) and the wall time: the end of every slice trainer
    script."""
    import json
    from pathlib import Path

    import torch

    from ..io.writers import atomic_path

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        torch.save(state, tmp)
    with atomic_path(out.with_suffix(".json")) as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=1), encoding="utf-8")
    if "val" in summary:
        m = summary["val"]["metrics"]["roc_auc"]
        print(f"val ROC AUC after the last epoch {m['value']:.4f} {m['ci95']}")
    print(f"{summary['wall_s']:.0f} s")


def save_cv_run(out, result: dict, command: str, label: str = "") -> None:
    """Write a trainer's cross-validation result (``slice_resnet.train.out_of_fold``'s, with ``command``) to ``out``
    atomically, then print its per-fold and pooled ROC AUC and FPR at TPR 95 %: the end of every ``--cv`` run of the
    classifier trainer scripts."""
    import json
    from pathlib import Path

    from ..io.writers import atomic_path

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result["command"] = command
    with atomic_path(out) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=1), encoding="utf-8")
    m = result["pooled"]["metrics"]
    sd = f" +- {result['auc_sd']:.4f}" if result["auc_sd"] is not None else ""
    print(f"{label + ': ' if label else ''}CV ROC AUC {result['auc_mean']:.4f}{sd} (per fold "
          f"{', '.join('%.3f' % f['roc_auc'] for f in result['folds'])}); pooled out-of-fold "
          f"{m['roc_auc']['value']:.4f} {m['roc_auc']['ci95']}, FPR at TPR 95 % {m['fpr_at_tpr95']['value']:.3f} "
          f"{m['fpr_at_tpr95']['ci95']}")


def code_tag(*modules) -> str:
    """Short hash of the source files of ``modules`` (in order), for the names of training caches: a cache built by
    other preprocessing code is never reused."""
    import hashlib
    from pathlib import Path

    return hashlib.sha256(b"".join(Path(m.__file__).read_bytes() for m in modules)).hexdigest()[:10]
