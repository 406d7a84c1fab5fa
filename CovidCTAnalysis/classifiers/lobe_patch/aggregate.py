"""From lobe probabilities and patch maps to a case (seed 001 §2.6 Eq. 2 and §2.8).

Eq. 2: a lobe's probability is softened by the same lobe in the adjacent slices,
SP_i = min(P_i, max(P_{i-1}, P_{i+1})) (the text: "the minimum between the probability assigned to the same lobe and
the maximum probability assigned to the two adjacent lobes"; the printed equation is garbled), and the case's
probability is the maximum over slices and both lobes. A slice at either end has one neighbour; a single slice
(a figure, one DICOM image) has none and keeps its own probabilities, since nothing adjacent can confirm or soften
them. A lobe not found in a slice counts as probability 0.

§2.8: each map's probability is spread over the pixels of its patches (``patches.pixel_max``), a pixel is infected
when both the coarse and the fine map exceed 0.5 there, and % infected = infected lobe pixels / lobe pixels.
"""

from __future__ import annotations

import numpy as np

from .patches import COARSE, FINE, pixel_max

THRESHOLD = 0.5


def softened(p: np.ndarray) -> np.ndarray:
    """Eq. 2 on (n_slices, 2) lobe probabilities (NaN: no such lobe)."""
    p = np.nan_to_num(np.asarray(p, np.float64), nan=0.0)
    if len(p) < 2:
        return p.copy()
    neighbour = np.full_like(p, -np.inf)
    neighbour[1:] = np.maximum(neighbour[1:], p[:-1])
    neighbour[:-1] = np.maximum(neighbour[:-1], p[1:])
    return np.minimum(p, neighbour)


def case_probability(p: np.ndarray) -> float:
    """P^D = max over slices of max(SP_L, SP_R) (Eq. 2)."""
    sp = softened(p)
    return float(sp.max()) if sp.size else 0.0


def infection_pixels(coarse: np.ndarray, fine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(probability map, infected 0/1 map) on the 256 x 256 canvas from the coarse (32 x 32) and fine (128 x 128)
    patch probabilities: the product of the two pixel maps, and both > 0.5 (§2.8)."""
    c, f = pixel_max(coarse, COARSE), pixel_max(fine, FINE)
    return c * f, (c > THRESHOLD) & (f > THRESHOLD)


def three_classes(p_diseased: float, p_covid_given_diseased: float) -> dict[str, float]:
    """The three classes of the two networks (§2.1: diseased vs healthy, then COVID-19 vs other disease), each
    case's pair of Eq. 2 probabilities composed: P(healthy) = 1 - P^D, P(COVID-19) = P^D P^C, P(other) the rest."""
    return {"healthy": 1.0 - p_diseased, "COVID-19": p_diseased * p_covid_given_diseased,
            "other disease": p_diseased * (1.0 - p_covid_given_diseased)}
