"""COVID-CT train + val framed once for iCovid (seed 000): each figure's unit frame, binarised lesion mask and label,
cached outside the repository (``covid_ct_frames``).

A figure's lungs come from the finder inference uses on a figure (``slice_resnet.infer.image_lungs``), its lesions
from ``lesions-unet`` on the whole figure as the pipeline segments a picture (``lesions.segment_lesions`` with
``display_windowed``). A figure in which no lung is found is still framed (its uniform borders trimmed) so that
cross-validation scores every figure; inference refuses such a slice.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import inputs


@dataclass
class FrameSet:
    """``units`` uint8 (N, SIZE, SIZE), ``lesions`` float16 (N, SIDE, SIDE) lesion fractions, ``labels`` (N,),
    ``names`` (N,) file names, ``lungs_found`` (N,) bool."""

    units: np.ndarray
    lesions: np.ndarray
    labels: np.ndarray
    names: np.ndarray
    lungs_found: np.ndarray

    def subset(self, index: np.ndarray) -> "FrameSet":
        return FrameSet(self.units[index], self.lesions[index], self.labels[index], self.names[index],
                        self.lungs_found[index])


def figure_frame(path: Path, lesion_net, device: str = "cpu") -> tuple[np.ndarray, np.ndarray, bool]:
    """(unit frame, lesion fractions, lungs found) of one 2-D image file."""
    import SimpleITK as sitk

    from ...io import load_ct
    from ...lesions import segment_lesions
    from ..slice_resnet.infer import image_lungs

    ct = load_ct(path)
    hu = sitk.GetArrayFromImage(ct.image)[0]
    lesions = sitk.GetArrayFromImage(segment_lesions(ct.image, display_windowed=True, net=lesion_net,
                                                     device=device, **inputs.PICTURE_LESIONS))[0]
    box, found = inputs.figure_box(hu, image_lungs(ct, None, device))
    unit, side = inputs.frames(hu[None], lesions[None], box)
    return unit[0], side[0], found


def frame_set(items: list[tuple[Path, int]], say: Callable[[str], None] = print) -> FrameSet:
    """Frames of (image path, label) items."""
    from ...lesions.network import load_network

    net = load_network("cpu")
    units, sides, found = [], [], []
    for i, (path, _) in enumerate(items):
        unit, side, ok = figure_frame(path, net)
        units.append(np.rint(unit * 255).astype(np.uint8))
        sides.append(side.astype(np.float16))
        found.append(ok)
        if (i + 1) % 100 == 0:
            say(f"frames: {i + 1}/{len(items)}")
    return FrameSet(np.stack(units), np.stack(sides), np.array([y for _, y in items], np.float32),
                    np.array([Path(p).name for p, _ in items]), np.array(found))


def preprocessing_tag() -> str:
    """Short hash of the framing code and of the lesion inference that draws the side information, then the first
    characters of the registered lesions-unet weights' sha256, in cache names: a cache built by other code or from
    another lesion model's masks is never reused."""
    from ...lesions import inference as lesion_inference
    from ...lesions.network import MODEL_NAME as LESION_MODEL
    from ...models.registry import load_registry
    from ...models.training import code_tag
    from ..slice_resnet import inputs as framing

    lesion_weights = load_registry().get(LESION_MODEL).sha256 or "none"
    return f"{code_tag(sys.modules[__name__], inputs, framing, lesion_inference)}-{lesion_weights[:8]}"


def covid_ct_frames(data_root: Path, cache_dir: Path, say: Callable[[str], None] = print) -> FrameSet:
    """Frames of COVID-CT train + val, cached in ``cache_dir``."""
    from ...evaluation.datasets import covid_ct_split

    cache = Path(cache_dir) / f"covid-ct-frames-{preprocessing_tag()}.npz"
    if cache.is_file():
        d = np.load(cache)
        return FrameSet(d["units"], d["lesions"], d["labels"], d["names"], d["lungs_found"])
    root = Path(data_root) / "covid-ct"
    data = frame_set(covid_ct_split(root, "train") + covid_ct_split(root, "val"), say)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, units=data.units, lesions=data.lesions, labels=data.labels, names=data.names,
             lungs_found=data.lungs_found)
    return data
