"""Inference of the lobe-patch system (seed 001) on one 2-D slice or a CT volume.

A slice: its lobes (``inputs.slice_lobes``; a figure repeats itself as its own neighbours), each through the lobe
network; the slice's probability is the larger of its two lobes' (Eq. 2 has no neighbour to soften it with).

A volume: the slices holding lung in the pipeline's lung mask (the paper runs every slice; the mask keeps bowel gas
below the diaphragm from being taken for a lobe), one every ``SLICE_SPACING_MM`` = 5 mm (a common clinical slice
thickness; the paper gives none, and its consecutive slices are what its scanners made), lobes found by §2.3 in
each; the three-slice input takes the sampled neighbours; the case's probability is Eq. 2 over the sampled slices
(``aggregate``). Volumes go through the volume network when the weights file holds one (the figure network
fine-tuned on semi-synthetic CT volumes with exact lesion masks, ``train.train(synthetic=...)``); slices, and
volumes under a file without one, through the figure network trained on COVID-CT.

Outputs on the CT grid:
- ``heatmap-lobe-patch.nrrd``: the infection map, coarse x fine patch probabilities (§2.8), each lobe's canvas
  mapped back onto its slice; slices between sampled ones take the nearest sampled slice's map.
- the bounded attention (§2.9, the patches the lobe decision rests on) as ``heatmap-lobe-patch-attention.nrrd``,
  scaled to [0, 1] over the case;
- segments: the k-means lung regions (the paper's "lobes": right and left, not anatomical lobes) and the infected
  region (coarse and fine > 0.5);
- % infected lung (§2.8): infected lobe pixels / lobe pixels over the sampled slices, for the case and per lung.

The second network of §2.5 (COVID-19 vs other disease) is not shipped (no labels for it here: the model card), so
P(COVID-19) is the first network's P(diseased), trained on COVID-19 vs non-COVID figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk

from ...errors import InputError
from ...labels import LEFT_LUNG, RIGHT_LUNG
from ...models.weights import cached_loader
from ..interface import Progress
from . import lobes as lb
from .aggregate import THRESHOLD, case_probability, infection_pixels
from .inputs import Lobe, paper_values, slice_lobes
from .model import DEFAULT_TRUNK, VOLUMES_PREFIX, LobeNet

MODEL_NAME = "lobe-patch"
SLICE_SPACING_MM = 5.0
LABELS = ("non-COVID", "COVID-19")
INFECTION, ATTENTION = "infection", "attention"
BATCH = 16


@dataclass(frozen=True)
class LobePatchModel:
    """A loaded lobe network with what inference needs to know about it."""

    net: Any
    device: str
    version: str
    volume_net: Any = None  # the network for CT volumes when the weights file has one (else ``net``)

    def lobes(self, lobes: list[Lobe], volume: bool = False
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(P(diseased) (L,), coarse (L, 32, 32), fine (L, 128, 128), attention (L, 32, 32)) of lobe inputs, by the
        volume network when ``volume`` (and the file has one), else the figure network.

        The fine labeller runs only on lobes with a coarse patch above 0.5: elsewhere §2.8's product of the two
        thresholded maps is empty whatever the fine map says, and the fine map is 0 there."""
        import torch

        net = self.volume_net if volume and self.volume_net is not None else self.net
        ps, coarse, fine, attention = [], [], [], []
        with torch.no_grad():
            for i in range(0, len(lobes), BATCH):
                chunk = lobes[i:i + BATCH]
                x = torch.from_numpy(np.stack([lobe.image for lobe in chunk])).to(self.device)
                d = torch.from_numpy(np.stack([lobe.distance for lobe in chunk])).to(self.device)
                p1, p2, f = net.trunk(x.contiguous(memory_format=torch.channels_last))
                feats = net.features(f, d)
                c = torch.softmax(net.patch(feats), 1)[:, 1]
                hot = c.flatten(1).max(1).values > THRESHOLD
                fi = torch.zeros((len(chunk), 128, 128))
                if hot.any():
                    fi[hot.cpu()] = torch.softmax(net.fine(feats[hot], p1[hot], p2[hot]), 1)[:, 1].cpu()
                logit, weight = net.decide(feats)
                ps.append(torch.sigmoid(logit).cpu().numpy())
                coarse.append(c.cpu().numpy())
                fine.append(fi.numpy())
                attention.append(weight.cpu().numpy())
        return tuple(np.concatenate(a) for a in (ps, coarse, fine, attention))


def _load(device: str, registry: str | None) -> LobePatchModel:
    """The figure network and, when the weights file holds one (``model.VOLUMES_PREFIX``), the volume network."""
    from ...models.registry import load_registry
    from ...models.weights import load_state, network_from_state, split_states

    reg = load_registry(registry)
    trunk = reg.get(MODEL_NAME).input.get("trunk", DEFAULT_TRUNK)

    def build(state):
        net = network_from_state(lambda: LobeNet(trunk), state, device, reg.get(MODEL_NAME).weights)
        net.trunk = net.trunk.fused_for_inference()
        return net

    figures, volumes = split_states(load_state(MODEL_NAME, reg), VOLUMES_PREFIX)
    return LobePatchModel(net=build(figures), device=device, version=reg.get(MODEL_NAME).version,
                          volume_net=build(volumes) if volumes else None)


#: The registered lobe-patch network on ``device`` (cached).
load_model = cached_loader(_load)


def _label(p: float) -> str:
    return LABELS[int(p >= THRESHOLD)]


@dataclass
class SliceMaps:
    """One analysed slice on its 512-px grid: lobe labels, infection probability, infected pixels, attention."""

    labels: np.ndarray
    infection: np.ndarray
    infected: np.ndarray
    attention: np.ndarray
    p: np.ndarray  # (2,) right, left lobe probabilities (NaN: not found)
    found: int = 0  # lobes §2.3 found (0: the whole slice stood in; no lung region, no % infected)


def _analyse(model: LobePatchModel, values: np.ndarray, zs, volume: bool = False) -> list[SliceMaps]:
    """Lobes of slices ``zs`` of paper-scale ``values`` through the network (the volume network for a ``volume``),
    mapped back onto the 512-px slices."""
    from .patches import COARSE, pixel_max

    found = [slice_lobes(values, z) for z in zs]
    flat = [lobe for lobes, _ in found for lobe in lobes]
    p, coarse, fine, attention = model.lobes(flat, volume)
    out, k = [], 0
    for lobes, labels in found:
        shape = labels.shape
        maps = SliceMaps(labels, np.zeros(shape, np.float32), np.zeros(shape, bool), np.zeros(shape, np.float32),
                         np.full(2, np.nan))
        for lobe in lobes:
            prob, infected = infection_pixels(coarse[k], fine[k])
            inside, box = lobe.mask, lobe.where.box
            np.maximum(maps.infection[box], lb.box_from_canvas(prob * inside, lobe.where), out=maps.infection[box])
            maps.infected[box] |= lb.box_from_canvas((infected & inside).astype(np.float32), lobe.where) > 0.5
            np.maximum(maps.attention[box], lb.box_from_canvas(pixel_max(attention[k], COARSE) * inside, lobe.where),
                       out=maps.attention[box])
            maps.found += int(lobe.found)
            maps.p[0 if lobe.side in (RIGHT_LUNG, 0) else 1] = p[k]
            k += 1
        maps.infected &= maps.labels > 0
        out.append(maps)
    return out


def _percent(slices: list[SliceMaps]) -> dict:
    """% infected lung (§2.8) for the case and per k-means lung region."""
    def pct(side=None):
        lung = sum(int(((s.labels == side) if side else (s.labels > 0)).sum()) for s in slices)
        hit = sum(int((s.infected & ((s.labels == side) if side else (s.labels > 0))).sum()) for s in slices)
        return round(100.0 * hit / lung, 3) if lung else None

    return {"percent_infected": pct(), "percent_infected_right": pct(RIGHT_LUNG),
            "percent_infected_left": pct(LEFT_LUNG)}


def _to_grid(planes: list[np.ndarray], shape: tuple[int, int], order: int) -> np.ndarray:
    """The 512-px planes back on the CT's in-plane grid (float32; no resampling when it is 512 px already)."""
    from skimage.transform import resize

    return np.stack([p.astype(np.float32) if p.shape == tuple(shape) else
                     resize(p.astype(np.float32), shape, order=order, preserve_range=True, anti_aliasing=False)
                     for p in planes])


def _images(stack: dict[str, np.ndarray], reference: sitk.Image) -> dict[str, sitk.Image]:
    out = {}
    for name, array in stack.items():
        image = sitk.GetImageFromArray(array)
        image.CopyInformation(reference)
        out[name] = image
    return out


def classify_image(ct, lungs: sitk.Image | None = None, device: Any = "cpu", *,
                   model: LobePatchModel | None = None) -> tuple[dict, dict[str, sitk.Image], dict[str, sitk.Image]]:
    """(result, {method: map}, {"lobes": label map, "infected": 0/1}) of one 2-D slice, maps on its grid."""
    if not ct.is_2d:
        raise InputError(ct.source, "is a volume; lobe-patch classifies it with classify_volume")
    model = model or load_model(device)
    hu = sitk.GetArrayFromImage(ct.image)
    (maps,) = _analyse(model, paper_values(hu), [0])
    p = case_probability(maps.p[None])
    result = {"probability": p, "label": _label(p), "lobe_probabilities": _sides(maps.p),
              **_percent([maps]), "lobes_found": maps.found, "network": "figures", "model_version": model.version}
    shape = hu.shape[1:]
    heat = {INFECTION: _to_grid([maps.infection], shape, 1), ATTENTION: _to_grid([_unit(maps.attention)], shape, 1)}
    masks = {"lobes": _to_grid([maps.labels], shape, 0).astype(np.uint8),
             "infected": _to_grid([maps.infected], shape, 0).astype(np.uint8)}
    return result, _images(heat, ct.image), _images(masks, ct.image)


def _sides(p: np.ndarray) -> dict:
    return {side: (None if np.isnan(v) else round(float(v), 4)) for side, v in zip(("right", "left"), p)}


def _unit(a: np.ndarray) -> np.ndarray:
    peak = float(a.max(initial=0.0))
    return a / peak if peak > 0 else a


def classify_volume(ct_image: sitk.Image, lungs: sitk.Image, device: Any = "cpu", progress: Progress | None = None,
                    *, model: LobePatchModel | None = None
                    ) -> tuple[dict, dict[str, sitk.Image], dict[str, sitk.Image]]:
    """(result, {method: map}, {"lobes", "infected"}) of a canonical CT and its lung label map (same grid).

    result: probability, label, percent_infected (and ``_right``, ``_left``), lung_slices, classified_slices,
    lobes_found, most_probable_slices (the 5 canonical z whose lobes are most probably diseased), network ("volumes"
    when the volume network ran, "figures" for a weights file without one), model_version."""
    from ..slice_resnet.infer import lung_slices, sampled_slices

    report = progress or (lambda fraction, message: None)
    hu = sitk.GetArrayFromImage(ct_image)
    zs = lung_slices(sitk.GetArrayFromImage(lungs))
    if zs.size == 0:
        raise InputError(None, f"the lung mask is empty; {MODEL_NAME} needs lung slices to classify")
    model = model or load_model(device)
    picked, owner = sampled_slices(len(zs), float(ct_image.GetSpacing()[2]), SLICE_SPACING_MM)
    report(0.1, f"{len(zs)} lung slices, {len(picked)} sampled {SLICE_SPACING_MM:g} mm apart")
    values = paper_values(hu[zs[picked]])
    slices = _analyse(model, values, range(len(picked)), volume=True)
    report(0.8, "infection maps")
    grid = np.stack([s.p for s in slices])
    p = case_probability(grid)
    shape = hu.shape[1:]
    attention_peak = max(float(s.attention.max(initial=0.0)) for s in slices) or 1.0
    heat = {INFECTION: np.zeros(hu.shape, np.float32), ATTENTION: np.zeros(hu.shape, np.float32)}
    masks = {"lobes": np.zeros(hu.shape, np.uint8), "infected": np.zeros(hu.shape, np.uint8)}
    layers = ((INFECTION, [s.infection for s in slices], 1),
              (ATTENTION, [s.attention / attention_peak for s in slices], 1),
              ("lobes", [s.labels for s in slices], 0), ("infected", [s.infected for s in slices], 0))
    for name, planes, order in layers:
        volume = (heat if name in heat else masks)[name]
        sampled = _to_grid(planes, shape, order)
        for z, i in zip(zs, owner):  # plane by plane: no (lung slices, y, x) temporary
            volume[z] = sampled[i]
    top = np.argsort(-np.nan_to_num(grid, nan=0.0).max(axis=1))[:5]
    result = {"probability": p, "label": _label(p), **_percent(slices), "lung_slices": int(len(zs)),
              "classified_slices": int(len(picked)), "lobes_found": int(sum(s.found for s in slices)),
              "most_probable_slices": sorted(int(zs[picked[i]]) for i in top),
              "network": "volumes" if model.volume_net is not None else "figures", "model_version": model.version}
    infected = result["percent_infected"]
    report(1.0, f"P(COVID-19) {p:.3f}" + (f", {infected:.1f} % of the lung regions infected" if infected is not None
                                          else ", no lung region found"))
    return result, _images(heat, ct_image), _images(masks, ct_image)
