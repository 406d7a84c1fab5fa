"""Labelled evaluation sets read from ../shared/data (never copied into the repository)."""

from __future__ import annotations

from pathlib import Path

#: COVID-CT (Zhao et al. 2020) split files: splits/{train,val}CT_{COVID,NonCOVID}.txt, images/{COVID,NonCOVID}/.
COVID_CT_SPLITS = ("train", "val")


def covid_ct_split(root: str | Path, split: str) -> list[tuple[Path, int]]:
    """(image path, label) of the official COVID-CT ``split`` ('train' or 'val'); label 1 = COVID-19, 0 = non-COVID.

    root: the covid-ct folder (``../shared/data/covid-ct``). Order: COVID images first, each list as in its file.
    """
    root = Path(root)
    if split not in COVID_CT_SPLITS:
        raise ValueError(f"split must be one of {COVID_CT_SPLITS}, not {split!r}")
    items: list[tuple[Path, int]] = []
    for label, cls in ((1, "COVID"), (0, "NonCOVID")):
        names = (root / "splits" / f"{split}CT_{cls}.txt").read_text(encoding="utf-8").split("\n")
        for name in (n.strip() for n in names):
            if name:
                items.append((root / "images" / cls / name, label))
    return items
