"""Weakly supervised training of the lobe network (seed 001 §2.7), cross-validation, and the training caches.

A sample is one labelled case: a COVID-CT figure (one slice, its one or two lobes) or a CT of a cohort (``SLICES``
= 10 nearly equally spaced lung slices, §2.7.1). Losses, as §2.7 writes them:
- lobe loss (Eq. 3): binary cross-entropy of the top ``TOP_FRACTION`` = 30 % of the sample's lobes by predicted
  probability (at least one), against the sample's label, healthy samples included;
- patch loss (§2.7.2): cross-entropy of the coarse patches against pseudo infection labels (``lesions.pseudo_mask``:
  suspected pixels covering >= 1/3 of a patch in diseased samples; every patch of a healthy sample negative); the
  ``KEEP`` = 80 % of patches that agree best with their label (smallest 1 - p(label)) weigh 1, the rest 0.1, and
  the infected patches are weighted by Eq. 4 so both classes inject the same total weight;
- concordance (§2.7.3): MSE between the lobe's probability and its most infected coarse patch's;
- total: lobe + concordance + 0.01 x patch (§2.7.4). The fine labeller is trained afterwards with everything else
  frozen (§2.7.4), on 6 x 6 patches that are > 3/4 suspected and lie in a coarse patch the network calls infected.

What the CPU here allows, and what differs from §2.7.4 (the model card lists it): the trunk's ImageNet stem and
stages 1-4 are held fixed and their outputs cached once per lobe (and per horizontal flip, the only augmentation),
so an epoch trains stage 5 and everything after it; Adam at 1e-4 as in the paper (a tenfold rate collapsed the lobe
decider to one constant output within an epoch) for a fixed ``EPOCHS`` = 8 epochs (paper: 500 on a GPU, the epoch
chosen by validation accuracy; here none is chosen, since the fold that would choose it is the one cross-validation
scores); batches of 6 samples as in the paper (whose samples had 10 slices; a figure has one). The fine labeller:
1e-4 for ``FINE_EPOCHS`` epochs (paper: 1e-5, batches of 14 samples x 2 slices).

The volume network (``train(synthetic=...)``): the figure network fine-tuned on the train split of DeCoVNet's
semi-synthetic CT volumes (``classifiers.decovnet.synthetic``: real lesions transplanted into lesion-free thoraxes),
``SLICES`` lung slices per volume sampled as inference samples them. Their patch labels are the lesions' exact masks,
which the §2.7.2 pseudo-mask only stands in for; ``TrainConfig.patch_weight`` sets the patch loss's weight (§2.7.4:
0.01). It learns what COVID-CT's figures cannot teach: true HU, CT geometry, lesion-free lungs with their vessels.

COVID-CT has only COVID-19 and non-COVID labels: a non-COVID figure is trained as "healthy" (label 0, all patches
negative). Its non-COVID figures include other diseases that the metadata does not name, so the §2.5 network
(COVID-19 vs other disease) has nothing to learn from here; training it needs a cohort labelled COVID-19 / other
disease (the model card says what).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ...labels import LEFT_LUNG
from .patches import COARSE, COARSE_DENSITY, FINE, FINE_DENSITY, patch_fraction

SLICES = 10          # §2.7.1
TOP_FRACTION = 0.3   # §2.7.1
KEEP = 0.8           # §2.7.2
LOW_WEIGHT = 0.1     # §2.7.2
PATCH_WEIGHT = 0.01  # §2.7.4
EPOCHS = 8
FINE_EPOCHS = 3


@dataclass
class TrainConfig:
    epochs: int = EPOCHS
    batch: int = 6  # §2.7.4: batches of 6 samples
    lr: float = 1e-4  # §2.7.4
    fine_lr: float = 1e-4
    fine_epochs: int = FINE_EPOCHS
    threads: int = 1
    network: str = "diseased"  # or "covid-vs-other" (§2.5)
    trunk: str = "efficientnet-lite0"  # or "vgg": Table 1's layout from random weights, trained end to end
    patch_weight: float = PATCH_WEIGHT  # §2.7.4
    init: str | None = None  # start from this weights file's (first) network instead of ImageNet alone


# ------------------------------------------------------------------------------------------------- the lobe cache
def sample_lobes(hu: np.ndarray, label: int, spacing_xy, zs=None, truth: np.ndarray | None = None) -> list[dict]:
    """Per-lobe training arrays of one sample: ``hu`` (z, y, x), its slices ``zs`` (all when None). The patch labels
    come from the §2.7.2 pseudo-mask, or from ``truth`` (a lesion mask on ``hu``'s grid) where one exists."""
    import SimpleITK as sitk

    from ...lesions.pseudo_mask import pseudo_infection_mask
    from . import lobes as lb
    from .inputs import paper_values, slice_lobes

    values = paper_values(hu)
    zs = range(len(values)) if zs is None else zs
    out = []
    for z in zs:
        found, labels = slice_lobes(values, z)
        pseudo = np.zeros(values[z].shape, np.uint8)
        if label and truth is not None:
            pseudo = lb.to_slice_size(np.asarray(truth[z] > 0, np.float32), order=0)[0] > 0.5
        elif label and labels.any():
            hu512 = lb.to_slice_size(np.asarray(hu[z], np.float32))[0]
            image = sitk.GetImageFromArray(hu512)
            factor = 512.0 / max(hu[z].shape)
            image.SetSpacing(tuple(float(s) / factor for s in spacing_xy))
            lungs = sitk.GetImageFromArray(labels)
            lungs.CopyInformation(image)
            pseudo = sitk.GetArrayFromImage(pseudo_infection_mask(image, lungs))
        for lobe in found:
            on_canvas = lb.to_canvas(pseudo.astype(np.float32), lobe.where, order=0) > 0.5
            out.append({"image": np.rint(lobe.image * 255).clip(0, 255).astype(np.uint8),
                        "mask": lobe.mask, "distance": lobe.distance.astype(np.float16),
                        "coarse": patch_fraction(on_canvas, COARSE).astype(np.float16),
                        "fine": patch_fraction(on_canvas, FINE).astype(np.float16), "slice": int(z),
                        "side": int(lobe.side)})
    return out


def figure_sample(path: Path, label: int) -> list[dict]:
    """A COVID-CT figure through io (display values to HU) as one one-slice sample."""
    import SimpleITK as sitk

    from ...io import load_ct

    ct = load_ct(path)
    return sample_lobes(sitk.GetArrayFromImage(ct.image), label, ct.image.GetSpacing()[:2])


def volume_sample(path: Path, label: int, lungs_model: str = "lungs-classic") -> list[dict]:
    """A cohort CT: ``SLICES`` nearly equally spaced slices over its lungs (§2.7.1)."""
    import SimpleITK as sitk

    from ...io import load_ct
    from ...pipeline.lungs import find_lungs

    ct = load_ct(path)
    hu = sitk.GetArrayFromImage(ct.image)
    lungs = sitk.GetArrayFromImage(find_lungs(ct, lungs_model).labels)
    zs = np.flatnonzero(lungs.any(axis=(1, 2)))
    if zs.size == 0:
        zs = np.arange(len(hu))
    picked = np.unique(np.rint(np.linspace(zs[0], zs[-1], SLICES)).astype(int))
    return sample_lobes(hu, label, ct.image.GetSpacing()[:2], picked)


def synthetic_sample(path: Path, label: int) -> list[dict]:
    """A semi-synthetic volume (``classifiers.decovnet.synthetic``): ``SLICES`` nearly equally spaced slices among its
    lung slices sampled as inference samples them (one every ``infer.SLICE_SPACING_MM``, neighbours 5 mm apart), with
    the transplanted lesions' exact masks as the patch labels (the pseudo-mask of §2.7.2 stands in for masks the
    paper's cohort did not have; here they exist)."""
    from ..decovnet.synthetic import load_case
    from ..slice_resnet.infer import lung_slices, sampled_slices
    from .infer import SLICE_SPACING_MM

    hu, lungs, lesions, meta = load_case(path)
    zs = lung_slices(lungs)
    picked, _ = sampled_slices(len(zs), float(meta["spacing"][2]), SLICE_SPACING_MM)
    kept = zs[picked]
    chosen = np.unique(np.rint(np.linspace(0, len(kept) - 1, SLICES)).astype(int))
    return sample_lobes(hu[kept], label, meta["spacing"][:2], chosen, truth=lesions[kept])


def synthetic_items(folder: Path, split: str = "train") -> list[tuple[Path, int]]:
    """(file, label) of one split of a folder of ``scripts/make_decovnet_data.py``."""
    from ..decovnet.synthetic import read_index

    return [(Path(folder) / row["file"], int(row["label"])) for row in read_index(folder, split)]


def build_cache(items: list[tuple[Path, int]], path: Path, load: Callable[[Path, int], list[dict]] | None = None,
                say: Callable[[str], None] = print) -> dict:
    """Every sample's lobes stacked (``lobe_sample`` maps lobes to samples), cached as an .npz at ``path``;
    ``load(path, label)`` gives one sample's lobes (``figure_sample`` by default)."""
    from ...io.writers import atomic_path

    if path.is_file():
        return dict(np.load(path))
    rows, owner = [], []
    for i, (p, y) in enumerate(items):
        lobes = (load or figure_sample)(p, y)
        rows += lobes
        owner += [i] * len(lobes)
        if (i + 1) % 50 == 0:
            say(f"prepared {i + 1}/{len(items)} samples")
    cache = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
    cache.update(lobe_sample=np.array(owner), y=np.array([y for _, y in items], np.float32),
                 names=np.array([Path(p).name for p, _ in items]))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **cache)
    return cache


def frozen_features(trunk, images: np.ndarray, batch: int = 32):
    """{False: (stage-3, stage-4) maps, True: the same of the flipped images}, float16, of the frozen part of the
    trunk for uint8 lobe images."""
    import torch

    out = {}
    with torch.no_grad():
        for flip in (False, True):
            s3, s4 = [], []
            for i in range(0, len(images), batch):
                x = torch.from_numpy(images[i:i + batch]).float() / 255.0
                _, _, a, b = trunk.frozen(x.flip(-1) if flip else x)
                s3.append(a.half())
                s4.append(b.half())
            out[flip] = (torch.cat(s3), torch.cat(s4))
    return out


# ------------------------------------------------------------------------------------------------------- losses
def lobe_loss(p_lobe, lobe_sample, y_sample):
    """Eq. 3: BCE of the top 30 % lobes of each sample (by probability) against the sample's label."""
    import torch

    terms = []
    for s in torch.unique(lobe_sample):
        p = p_lobe[lobe_sample == s]
        k = max(1, math.ceil(TOP_FRACTION * len(p)))
        top = torch.topk(p, k).values.clamp(1e-6, 1 - 1e-6)
        y = y_sample[s]
        terms.append(-(y * torch.log(top) + (1 - y) * torch.log(1 - top)).mean())
    return torch.stack(terms).mean()


def patch_weights(logits, labels):
    """§2.7.2's per-patch weights (flattened): 1 for the ``KEEP`` = 80 % of patches most concordant with their label
    (smallest 1 - p(label)), 0.1 for the rest; infected patches then scaled by Eq. 4 so that both classes carry the
    same total weight. ``labels``: 0/1 long, the shape of ``logits`` without the class axis."""
    import torch

    with torch.no_grad():
        discord = 1.0 - torch.softmax(logits, 1).gather(1, labels[:, None]).flatten()
        w = torch.full_like(discord, LOW_WEIGHT)
        w[torch.argsort(discord)[:max(1, int(round(KEEP * len(w))))]] = 1.0
        positive = labels.flatten() == 1
        if positive.any():
            w[positive] *= w[~positive].sum() / w[positive].sum().clamp_min(1e-6)  # Eq. 4
    return w


def weighted_patch_loss(logits, labels):
    """Cross-entropy per patch, weighted by ``patch_weights``."""
    import torch.nn.functional as F

    w = patch_weights(logits, labels)
    ce = F.cross_entropy(logits, labels, reduction="none").flatten()
    return (w * ce).sum() / w.sum()


# ------------------------------------------------------------------------------------------------------ training
def _freeze_early(net) -> None:
    for name in ("stem", "stage1", "stage2", "stage3", "stage4"):
        for p in getattr(net.trunk, name).parameters():
            p.requires_grad_(False)


def _batch_lobes(cache, samples, owner_index):
    return np.concatenate([owner_index[s] for s in samples])


def fit(cache: dict, feats, train_samples: np.ndarray, cfg: TrainConfig, seed: int,
        say: Callable[[str], None] = print, trunk_state: dict | None = None):
    """A LobeNet (Lite trunk) trained on ``train_samples`` (sample indices) with the losses of the module doc.

    Sample classes (``cache["y"]``): 0 healthy, 1 COVID-19, 2 other disease (a cohort's third label). The
    ``diseased`` network learns classes 1-2 against 0, with the concordance loss for healthy and COVID-19 samples
    only (§2.7.3); the ``covid-vs-other`` network (§2.5, no infection parts) learns 1 against 2 on diseased samples
    with the lobe loss alone ("the same procedure", §2.7.1)."""
    import torch
    import torch.nn.functional as F

    from .model import LobeNet

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    klass = cache["y"].astype(int)
    infection = cfg.network == "diseased"
    if infection:
        y = torch.from_numpy((klass > 0).astype(np.float32))
    else:
        train_samples = np.asarray([s for s in train_samples if klass[s] > 0])
        y = torch.from_numpy((klass == 1).astype(np.float32))
    concordant = torch.from_numpy(klass != 2)
    net = LobeNet(cfg.trunk, infection=infection)
    if feats is not None:  # the Lite trunk: ImageNet stages fixed, their outputs cached
        net.trunk.load_state_dict(trunk_state, strict=False)
        _freeze_early(net)
    if cfg.init:
        _start_from(net, Path(cfg.init), trunk_state)
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=cfg.lr)
    owner = _owners(cache)
    zero = torch.zeros(())
    for epoch in range(cfg.epochs):
        net.train()
        order = rng.permutation(train_samples)
        totals = np.zeros(4)
        for b in range(0, len(order), cfg.batch):
            samples = order[b:b + cfg.batch]
            idx = _batch_lobes(cache, samples, owner)
            flip = rng.random(len(idx)) < 0.5
            out, coarse = _forward(net, cache, feats, idx, flip)
            p_lobe = torch.sigmoid(out["lobe_logit"])
            position = {int(s): i for i, s in enumerate(samples)}
            lobe_of = torch.tensor([position[int(s)] for s in cache["lobe_sample"][idx]])
            l_lobe = lobe_loss(p_lobe, lobe_of, y[torch.from_numpy(samples)])
            l_patch = l_conc = zero
            if infection:
                of_sample = torch.from_numpy(cache["lobe_sample"][idx])
                labels = ((coarse >= COARSE_DENSITY) & (y[of_sample] > 0.5)[:, None, None]).long()
                l_patch = weighted_patch_loss(out["coarse_logits"], labels)
                top_patch = torch.softmax(out["coarse_logits"], 1)[:, 1].flatten(1).max(1).values
                keep = concordant[of_sample]
                if keep.any():
                    l_conc = F.mse_loss(p_lobe[keep], top_patch[keep])
            loss = l_lobe + l_conc + cfg.patch_weight * l_patch
            opt.zero_grad()
            loss.backward()
            opt.step()
            totals += [t.item() for t in (loss, l_lobe, l_conc, l_patch)]
        n = math.ceil(len(order) / cfg.batch)
        say(json.dumps({"epoch": epoch + 1, "loss": round(totals[0] / n, 4), "lobe": round(totals[1] / n, 4),
                        "concordance": round(totals[2] / n, 4), "patch": round(totals[3] / n, 4)}))
    return net.eval()


def _start_from(net, path: Path, trunk_state: dict | None) -> None:
    """Load the first network of the weights file ``path`` into ``net``; its fixed trunk stages must be the ImageNet
    ones whose outputs were cached (``trunk_state``), or the cache would not be its features."""
    import torch

    from ...models.weights import float_state, load_state, split_states
    from .model import VOLUMES_PREFIX

    state, _ = split_states(load_state("", weights=path), VOLUMES_PREFIX)
    net.load_state_dict(float_state(state))
    fixed = [k for k in (trunk_state or {}) if k.split(".")[0] in ("stem", "stage1", "stage2", "stage3", "stage4")]
    if any(not torch.equal(state["trunk." + k].float(), trunk_state[k].float().half().float()) for k in fixed):
        raise ValueError(f"{path}: its trunk's fixed stages are not the ImageNet ones the feature cache holds")


def _owners(cache: dict) -> dict[int, np.ndarray]:
    owner = cache["lobe_sample"]
    return {int(s): np.flatnonzero(owner == s) for s in np.unique(owner)}


def _forward(net, cache, feats, idx, flip):
    """(network outputs without the fine map, coarse pseudo fractions) of lobes ``idx``, flipped where ``flip``:
    from the cached stage maps, or (``feats`` None, a trunk trained end to end) from the lobe images."""
    import torch

    if feats is None:
        x = torch.from_numpy(cache["image"][idx]).float() / 255.0
        x = torch.where(torch.from_numpy(flip)[:, None, None, None], x.flip(-1), x)
        dist, coarse = _flipped_maps(cache, idx, flip)
        return net.heads(None, None, net.trunk(x)[2], dist), coarse
    s3, s4, dist, coarse = _lobe_tensors(cache, feats, idx, flip)
    return net.heads(None, None, net.trunk.late(s3, s4), dist), coarse


def _flipped_maps(cache, idx, flip):
    """(distances, coarse pseudo fractions) of lobes ``idx``, flipped where ``flip``."""
    import torch

    fl = torch.from_numpy(flip)[:, None, None]
    dist = torch.from_numpy(cache["distance"][idx].astype(np.float32))
    coarse = torch.from_numpy(cache["coarse"][idx].astype(np.float32))
    return torch.where(fl, dist.flip(-1), dist), torch.where(fl, coarse.flip(-1), coarse)


def _lobe_tensors(cache, feats, idx, flip):
    """(stage-3 maps, stage-4 maps, distances, coarse pseudo fractions) of lobes ``idx``, each flipped where
    ``flip``."""
    import torch

    sel = torch.from_numpy(idx)
    f4 = torch.from_numpy(flip)[:, None, None, None]
    s3 = torch.where(f4, feats[True][0][sel], feats[False][0][sel]).float()
    s4 = torch.where(f4, feats[True][1][sel], feats[False][1][sel]).float()
    dist, coarse = _flipped_maps(cache, idx, flip)
    return s3, s4, dist, coarse


def lobe_probabilities(net, cache: dict, feats, idx: np.ndarray, batch: int = 64) -> np.ndarray:
    """P(diseased) of lobes ``idx`` (unflipped)."""
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(idx), batch):
            sel = idx[i:i + batch]
            heads, _ = _forward(net, cache, feats, sel, np.zeros(len(sel), bool))
            out.append(torch.sigmoid(heads["lobe_logit"]).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def sample_probabilities(net, cache: dict, feats, samples: np.ndarray) -> np.ndarray:
    """Each sample's probability: Eq. 2 over its slices' lobe probabilities (``aggregate.case_probability``)."""
    from .aggregate import case_probability

    owner = _owners(cache)
    out = []
    for s in samples:
        idx = owner[int(s)]
        p = lobe_probabilities(net, cache, feats, idx)
        zs = np.unique(cache["slice"][idx])
        grid = np.full((len(zs), 2), np.nan)
        for z, side, v in zip(cache["slice"][idx], cache["side"][idx], p):
            grid[int(np.searchsorted(zs, z)), int(side == LEFT_LUNG)] = v
        out.append(case_probability(grid))
    return np.array(out, np.float32)


def fit_fine(net, cache: dict, train_samples: np.ndarray, cfg: TrainConfig, seed: int,
             say: Callable[[str], None] = print):
    """§2.7.4's second step: only the fine labeller trains; labels: 6 x 6 patches > 3/4 suspected inside a coarse
    patch the trained network calls infected (> 0.5), in diseased samples."""
    import torch

    from .patches import pixel_max

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    for p in net.parameters():
        p.requires_grad_(False)
    for p in net.fine.parameters():
        p.requires_grad_(True)
    opt = torch.optim.Adam(net.fine.parameters(), lr=cfg.fine_lr)
    owner = _owners(cache)
    for epoch in range(cfg.fine_epochs):
        net.eval()
        net.fine.train()
        order = rng.permutation(train_samples)
        total, n = 0.0, 0
        for b in range(0, len(order), cfg.batch):
            idx = _batch_lobes(cache, order[b:b + cfg.batch], owner)
            x = torch.from_numpy(cache["image"][idx]).float() / 255.0
            dist = torch.from_numpy(cache["distance"][idx].astype(np.float32))
            with torch.no_grad():
                p1, p2, f = net.trunk(x)
                feats = net.features(f, dist)
                coarse = torch.softmax(net.patch(feats), 1)[:, 1].numpy()
            covered = np.stack([pixel_max(c, COARSE)[1::2, 1::2] for c in coarse]) > 0.5
            diseased = cache["y"][cache["lobe_sample"][idx]] > 0
            fine = cache["fine"][idx].astype(np.float32) > FINE_DENSITY
            labels = torch.from_numpy((fine & covered & diseased[:, None, None]).astype(np.int64))
            loss = weighted_patch_loss(net.fine(feats, p1, p2), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, n = total + loss.item(), n + 1
        say(json.dumps({"fine_epoch": epoch + 1, "loss": round(total / max(n, 1), 4)}))
    for p in net.parameters():
        p.requires_grad_(True)
    return net.eval()


# ---------------------------------------------------------------------------------------------- CV and final run
def covid_ct_items(data_root: Path) -> tuple[list[tuple[Path, int]], np.ndarray]:
    """(figure paths with labels, patient groups) of COVID-CT train + val."""
    from ...evaluation.datasets import covid_ct_split
    from ..slice_resnet.train import patient_ids

    items = covid_ct_split(data_root / "covid-ct", "train") + covid_ct_split(data_root / "covid-ct", "val")
    ids = patient_ids(data_root / "covid-ct")
    groups = np.array([ids.get(p.name, "figure:" + p.name) for p, _ in items])
    return items, groups


def prepared(data_root: Path, cache_dir: Path, say: Callable[[str], None] = print, cohort: Path | None = None,
             trunk_name: str = "efficientnet-lite0", synthetic: Path | None = None, network: str = "diseased"):
    """(lobe cache, cached frozen-trunk features, the ImageNet trunk state, groups) of COVID-CT train+val, a cohort
    (its cache named by its files and labels: an edited CSV is prepared anew) or the train split of a folder of
    semi-synthetic volumes; for the ``vgg`` trunk (trained end to end) the second and third are None."""
    from .model import imagenet_lite_trunk

    import torch

    from ...io.writers import atomic_path

    if synthetic is not None:
        items, groups = synthetic_items(synthetic), None
        path = cache_dir / f"synthetic-{Path(synthetic).resolve().parent.name}-{Path(synthetic).name}.npz"
        cache = build_cache(items, path, synthetic_sample, say=say)
    elif cohort is not None:
        from ...models.training import cohort_tag

        items, groups = cohort_items(cohort, network), None
        path = cache_dir / f"cohort-{Path(cohort).stem}-{cohort_tag(items)}.npz"
        cache = build_cache(items, path, volume_sample, say=say)
    else:
        items, groups = covid_ct_items(data_root)
        path = cache_dir / "covid-ct-lobes.npz"
        cache = build_cache(items, path, say=say)
    if trunk_name == "vgg":
        return cache, None, None, groups
    trunk = imagenet_lite_trunk().eval()
    frozen = path.with_suffix(".frozen.pt")
    if frozen.is_file():
        feats = torch.load(frozen, weights_only=True)
    else:
        say("computing the frozen trunk's features")
        feats = frozen_features(trunk, cache["image"])
        with atomic_path(frozen) as tmp:
            torch.save(feats, tmp)
    return cache, feats, trunk.state_dict(), groups


#: What each network learns from a cohort (labels 0 healthy, 1 COVID-19, 2 other disease): both sides needed.
CLASSES = {"diseased": (("healthy (0)", (0,)), ("diseased (1 or 2)", (1, 2))),
           "covid-vs-other": (("COVID-19 (1)", (1,)), ("other-disease (2)", (2,)))}
COHORT_LABELS = {"0": 0, "1": 1, "2": 2}


def cohort_items(csv_path: Path, network: str = "diseased") -> list[tuple[Path, int]]:
    """(path, label) rows of a cohort CSV (columns path,label; label 0 healthy, 1 COVID-19, 2 other disease;
    relative paths from the CSV's folder), checked before any work (``models.training``): the classes ``network``
    learns present, every file a CT volume."""
    from ...models.training import check_case_files, check_classes, read_cohort_csv

    rows = read_cohort_csv(csv_path, label=lambda t: COHORT_LABELS.get(t.strip()),
                           label_help="0 (healthy), 1 (COVID-19) or 2 (other disease)", what="CT")
    check_classes(csv_path, [r.label for r in rows], CLASSES[network])
    check_case_files(rows, csv_path, 3)
    return [(r.path, r.label) for r in rows]


def cross_validate(data_root: Path, cache_dir: Path, cfg: TrainConfig, k: int = 5,
                   say: Callable[[str], None] = print, only=None) -> dict:
    """Patient-disjoint k-fold CV on COVID-CT train + val (``slice_resnet.train.out_of_fold``): each fold trained
    for the fixed number of epochs and scored once."""
    import torch

    from ..slice_resnet.train import out_of_fold

    torch.set_num_threads(cfg.threads)
    cache, feats, trunk_state, groups = prepared(data_root, cache_dir, say, trunk_name=cfg.trunk)
    y = cache["y"]

    def fit_predict(i, train_idx, test):
        net = fit(cache, feats, train_idx, cfg, seed=100 + i, say=say, trunk_state=trunk_state)
        return sample_probabilities(net, cache, feats, test)

    cv = out_of_fold(y, groups, k, fit_predict, say, only)
    cv["names"] = cache["names"].tolist()
    cv["config"] = dict(vars(cfg))
    cv["lobes_found"] = {"figures": int(len(y)), "lobes": int(len(cache["lobe_sample"])),
                         "whole-slice stand-ins": int((cache["side"] == 0).sum())}
    return cv


def train(data_root: Path, cache_dir: Path, cfg: TrainConfig, say: Callable[[str], None] = print,
          cohort: Path | None = None, seed: int = 0, synthetic: Path | None = None):
    """The shipped recipe on every sample (COVID-CT train + val, a cohort, or the train split of ``synthetic``
    volumes): stage 1, then the fine labeller (the ``diseased`` network only). Returns (float16 state dict,
    summary). With ``synthetic`` the network is the volume network, a fine-tuning of ``cfg.init``'s network, and
    the state dict holds both: ``cfg.init``'s unchanged, this one under ``model.VOLUMES_PREFIX``
    (``models.weights.merged_states``; the fixed trunk stages are stored once)."""
    import time

    import torch

    from ...models.weights import half_state, load_state, merged_states
    from .model import VOLUMES_PREFIX

    if synthetic is not None and not cfg.init:
        raise ValueError("the volume network fine-tunes a figure network: cfg.init must name its weights")
    t0 = time.time()
    log: list[str] = []

    def keep(line: str) -> None:
        log.append(line)
        say(line)

    torch.set_num_threads(cfg.threads)
    cache, feats, trunk_state, _ = prepared(data_root, cache_dir, say, cohort, cfg.trunk, synthetic, cfg.network)
    everything = np.arange(len(cache["y"]))
    net = fit(cache, feats, everything, cfg, seed=seed, say=keep, trunk_state=trunk_state)
    if net.infection:
        net = fit_fine(net, cache, everything, cfg, seed=seed, say=keep)
    data = (f"semi-synthetic volumes, train split of {Path(synthetic).name} ({len(everything)})" if synthetic else
            str(cohort) if cohort else "COVID-CT train+val")
    summary = {"config": vars(cfg), "samples": int(len(everything)), "lobes": int(len(cache["lobe_sample"])),
               "data": data, "log": log, "wall_s": round(time.time() - t0, 1)}
    state = half_state(net)
    if synthetic is not None:
        state = merged_states(load_state("", weights=Path(cfg.init)), state, VOLUMES_PREFIX)
    return state, summary
