"""Semi-synthetic CT slices for slice-resnet: an optional second stream of training data (not in Gozes et al.; an
experiment, ``TrainConfig.synthetic``).

Why. Trained on COVID-CT's 543 figures, whose two classes come from different sources, the network finds the class in
the figure's framing and body: its Grad-CAM and LRP peaks sit on the spine, the body wall and the table, it calls
normal thoraxes COVID-19, and only 14 % of its Grad-CAM mass on CT volumes lies in the lungs (model card). Neither
framing the figures on the lungs nor tying the class activation map to SemiSeg's pseudo-masks moved the maps enough.
The paper itself trains on slices of CT volumes framed on the lung ROI (§2.1), where a COVID-19 slice and a normal
one differ by the disease. The semi-synthetic volumes of ``decovnet.synthetic`` are such data: every positive volume
is a negative one with transplanted lesions, so the lesions are the only difference between the classes.

What. The training volumes of a ``decovnet.synthetic.build_dataset`` folder, each cut into the squares inference makes
of a CT (``infer.lung_frame``: the lung slices and the case's lung ROI; ``inputs.square_from_hu``: one place for
that preprocessing). A slice is positive when its lesion area is at least ``MIN_LESION_MM2`` (a lesion of ~6 mm),
negative when it has none and comes from a negative volume (a positive volume's lesion-free slices repeat its
matched negative); slices with a smaller lesion are left out (neither label is right at the network's scale).
Generate the folder with ``--lesions pseudo`` (lesions of COVID-SemiSeg's pseudo-labelled slices): the 50
radiologist-labelled slices are where the explanations are scored and must not lend their lesions to training.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from . import inputs

#: Smallest lesion area (mm^2, in the slice) that makes a slice positive.
MIN_LESION_MM2 = 30.0


def slice_squares(hu: np.ndarray, lungs: np.ndarray, lesions: np.ndarray, spacing, negative_volume: bool
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 squares (n, 256, 256), labels (n,) float32) of one volume's lung slices, framed as inference frames a
    CT (``infer.lung_frame``); ``spacing`` (x, y, z) mm."""
    from .infer import lung_frame

    zs, box = lung_frame(lungs)
    pixel_mm2 = float(spacing[0]) * float(spacing[1])
    squares, labels = [], []
    for z in zs:
        area = float((lesions[z] > 0).sum()) * pixel_mm2
        if area >= MIN_LESION_MM2:
            label = 1.0
        elif area == 0 and negative_volume:
            label = 0.0
        else:
            continue
        squares.append(inputs.to_cache(inputs.square_from_hu(hu[z], box)))
        labels.append(label)
    if not squares:
        return np.zeros((0, inputs.CACHE_SIZE, inputs.CACHE_SIZE), np.uint8), np.zeros(0, np.float32)
    return np.stack(squares), np.asarray(labels, np.float32)


def check_lesion_source(folder: Path) -> None:
    """ValueError unless every volume of the generated ``folder`` carries lesions of the pseudo-labelled slices: the
    labelled slices' lesions would train the network on the slices its maps are scored on."""
    from ..decovnet.synthetic import read_index

    sources = {row.get("lesion_source", "labelled") for row in read_index(Path(folder))}
    if sources != {"pseudo"}:
        raise ValueError(f"{folder}: its lesions come from {sorted(sources)}; slice-resnet trains only on volumes made "
                         "with scripts/make_decovnet_data.py --lesions pseudo")


def synthetic_cache(folder: Path, cache_dir: Path, split: str = "train") -> dict[str, np.ndarray]:
    """The squares and labels of the ``split`` volumes of a generated folder, cached (named by a hash of this code,
    the framing code and the folder's index)."""
    from ...io.writers import atomic_path
    from ...models.training import code_tag
    from ..decovnet.synthetic import load_case, read_index
    from . import infer

    folder = Path(folder)
    check_lesion_source(folder)
    index = (folder / "index.json").read_bytes()
    tag = code_tag(inputs, infer) + hashlib.sha256(index).hexdigest()[:8]
    cache = Path(cache_dir) / f"synthetic-{split}-{tag}.npz"
    if cache.is_file():
        return dict(np.load(cache))
    xs, ys, volume = [], [], []
    for k, row in enumerate(read_index(folder, split)):
        hu, lungs, lesions, meta = load_case(folder / row["file"])
        x, y = slice_squares(hu, lungs, lesions, meta["spacing"], negative_volume=row["label"] == 0)
        xs.append(x)
        ys.append(y)
        volume.append(np.full(len(y), k, np.int32))
    if not xs:
        raise ValueError(f"{folder}: no {split} volumes in index.json")
    out = {"x": np.concatenate(xs), "y": np.concatenate(ys), "volume": np.concatenate(volume)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cache) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **out)
    return out


def balanced_draw(labels: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` indices, half of them positive slices and half negative (sorted)."""
    pos, neg = np.nonzero(labels > 0.5)[0], np.nonzero(labels <= 0.5)[0]
    half = count // 2
    return np.sort(np.concatenate([rng.choice(pos, half), rng.choice(neg, count - half)]))
