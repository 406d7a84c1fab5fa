"""Training lesions-unet: loss, sampling from several sources, stages, validation.

Loss (per pixel, then averaged): cross-entropy on the three classes where the class is known; where a target only
says "infection, class unknown" (binary pseudo-labels, binary corrected segments) the loss is
-log(P(GGO) + P(consolidation)), i.e. cross-entropy on the infection marginal. Plus a soft Dice loss (batch-pooled)
on infection, GGO and consolidation (the class-wise terms only over slices with class-level labels), which counters
the class imbalance (about 87 % background on the labelled slices). A network with an edge branch
(``lite0-unet-edge``) adds ``edge_loss`` with weight ``EDGE_WEIGHT``.

Semi-supervised schemes (compared on the fixed validation slices by scripts/train_lesions.py):

- ``supervised``: the 37 labelled training slices only.
- ``supervised+phantom``: the labelled slices plus slices of generated demo phantoms (phantom.py; never the demo
  CT's own seed), about a quarter of each batch, so the model also works on the synthetic demo CT.
- ``semi-infnet``: the idea of Semi-Inf-Net (Fan et al., Inf-Net, IEEE TMI 2020, section III-C): the 1600 unlabelled
  slices with Inf-Net's pseudo-labels enlarge the training set (here as infection-marginal targets, mixed with the
  labelled slices), then the network is fine-tuned on the labelled slices alone (their multi-class step also starts
  from the semi-supervised infection model).
- ``self-training``: ``semi-infnet``, then that model labels the 1600 slices itself (multi-class;
  pixels with a top probability under ``SELF_TRAINING_CONFIDENCE`` ignored), a student is trained from it on labelled
  + own pseudo-labelled slices and fine-tuned on the labelled ones (self-training with a confident teacher, e.g. Xie
  et al. 2020, "noisy student": the student sees strong augmentation, the teacher did not).
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from ..models.device import bf16_supported
from ..models.training import Source, adamw_warmup_cosine, draw_batch, optimize_step
from .augment import augment_batch
from .constants import IGNORE, INFECTION_UNKNOWN_CLASS
from .metrics import confusion, summarize
from .samples import Sample

SELF_TRAINING_CONFIDENCE = 0.7
#: Inf-Net's total loss adds its edge loss to the segmentation losses without a weight (Fan et al., IEEE TMI 2020,
#: the loss function of Inf-Net, as we read it).
EDGE_WEIGHT = 1.0


def edge_target(target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The lesions' boundary band (infection dilated by one pixel minus infection eroded by one pixel, 3 x 3) and
    where it is known: not within one pixel of an IGNORE pixel (a teacher's unsure pixels lie mostly at margins)."""
    inf = (((target >= 1) & (target <= 2)) | (target == INFECTION_UNKNOWN_CLASS)).float()[:, None]
    dilated = F.max_pool2d(inf, 3, 1, 1)
    eroded = -F.max_pool2d(-inf, 3, 1, 1)
    near_ignore = F.max_pool2d((target == IGNORE).float()[:, None], 3, 1, 1)
    return (dilated - eroded)[:, 0], near_ignore[:, 0] == 0


def edge_loss(edge_logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the edge map against ``edge_target``, averaged over the known pixels (Inf-Net's edge
    loss is a plain BCE against the ground truth's edges)."""
    edge, known = edge_target(target)
    bce = F.binary_cross_entropy_with_logits(edge_logits.float()[:, 0], edge, reduction="none")
    return (bce * known).sum() / known.sum().clamp(min=1)


def lesion_loss(logits, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy (class-known and infection-marginal pixels) + soft Dice on infection, GGO, consolidation; for a
    network with an edge branch (``logits`` = (class logits, edge logits)) plus ``EDGE_WEIGHT`` x ``edge_loss``."""
    if isinstance(logits, tuple):
        logits, edge_logits = logits
        return lesion_loss(logits, target) + EDGE_WEIGHT * edge_loss(edge_logits, target)
    logp = F.log_softmax(logits.float(), dim=1)
    known = target <= 2
    unknown = target == INFECTION_UNKNOWN_CLASS
    valid = known | unknown
    t_known = target.clamp(max=2)
    ce_known = -logp.gather(1, t_known[:, None])[:, 0]
    ce_unknown = -torch.logsumexp(logp[:, 1:3], dim=1)
    ce = torch.where(known, ce_known, torch.where(unknown, ce_unknown, torch.zeros_like(ce_known)))
    ce = ce.sum() / valid.sum().clamp(min=1)

    prob = logp.exp()
    vf = valid.float()
    p_inf = (prob[:, 1] + prob[:, 2]) * vf
    t_inf = (((target >= 1) & (target <= 2)) | unknown).float()
    dice_terms = [1 - (2 * (p_inf * t_inf).sum() + 1) / (p_inf.sum() + t_inf.sum() + 1)]
    multiclass = ~(unknown.flatten(1).any(1))  # slices with class-level labels only
    if multiclass.any():
        m = (known & multiclass[:, None, None]).float()
        for c in (1, 2):
            p = prob[:, c] * m
            t = (target == c).float() * m
            dice_terms.append(1 - (2 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1))
    return ce + torch.stack(dice_terms).mean()


def train_stage(net, sources: list[Source], iterations: int, *, lr: float, batch: int = 8, crop: int = 160,
                seed: int = 0, log=print, label: str = "stage", device="cpu") -> dict:
    """AdamW with linear warm-up (5 %) and cosine decay; each slice of a batch drawn from a source by weight.

    Batches are drawn and augmented on the CPU (same random streams on every device), then moved to ``device``.
    """
    device = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    opt, sched = adamw_warmup_cosine(net, lr, iterations)
    bf16 = bf16_supported(device)  # CUDA, or a CPU with native bf16 (AVX512-BF16 / AMX)
    net.train()
    t0 = time.time()
    running = []
    for it in range(iterations):
        imgs, tgts = draw_batch(sources, rng, batch)
        x = torch.from_numpy(imgs)[:, None]
        y = torch.from_numpy(tgts.astype(np.int64))
        x, y = augment_batch(x, y, gen, crop)
        running.append(optimize_step(net, opt, sched, x.to(device), y.to(device), lesion_loss, bf16))
        if (it + 1) % 50 == 0 or it + 1 == iterations:
            log(f"{label} {it + 1}/{iterations} loss {np.mean(running[-50:]):.4f} "
                f"lr {sched.get_last_lr()[0]:.2e} {time.time() - t0:.0f} s")
    net.eval()
    return {"iterations": iterations, "lr": lr, "batch": batch, "crop": crop, "seconds": round(time.time() - t0, 1),
            "final_loss": float(np.mean(running[-50:]))}


def evaluate(net, samples: list[Sample], tta: str = "none", device="cpu") -> dict:
    """Metrics (metrics.summarize) of the network on labelled slices, each segmented whole at its own size
    (``tta``: inference.probabilities_2d)."""
    from .inference import segment_slices

    conf = []
    for s in samples:
        pred = segment_slices(net, s.hu[None], device, tta=tta)[0]
        truth = np.where(s.target == IGNORE, 0, s.target)
        conf.append(confusion(pred, truth))
    return summarize(conf)


def teacher_labels(net, images: np.ndarray, confidence: float = SELF_TRAINING_CONFIDENCE,
                   batch: int = 16, device="cpu") -> np.ndarray:
    """Multi-class pseudo-labels (uint8, IGNORE where unsure) of normalized 256 x 256 slices."""
    out = np.empty(images.shape, np.uint8)
    with torch.inference_mode():
        for start in range(0, len(images), batch):
            x = torch.from_numpy(images[start:start + batch].astype(np.float32))[:, None].to(device)
            prob = torch.softmax(net(x).float(), 1)
            top, label = prob.max(1)
            out[start:start + batch] = torch.where(top >= confidence, label, IGNORE).cpu().numpy().astype(np.uint8)
    return out
