"""Space-filling branching trees for the pulmonary arteries, veins and the bronchi that run with the arteries.

The construction follows the idea of Kitaoka et al. (J Appl Physiol 1999, "A three-dimensional model of the human
airway tree"): a branch grows from its parent's end toward the centroid of the lung region it supplies; that region
is then split in two by a plane through its centroid, normal to its longest axis, and each half gets a child. Here
the region is a cloud of points sampled uniformly inside the lung, split at a random fraction (asymmetric, as real
bifurcations are), and radii follow Murray's law (r^3 proportional to the number of points supplied).
The bronchi are the arterial tree shifted sideways by the sum of the radii (bronchovascular bundles).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .tubes import Tubes


@dataclass
class Tree:
    """Segments of one tree plus, per segment, its end node's incoming direction (for the bronchial offset)."""

    tubes: Tubes
    direction: np.ndarray  # (n, 3) unit direction of each segment
    parent: np.ndarray     # (n,) index of the parent segment, -1 for the root


def grow(root, points: np.ndarray, rng: np.random.Generator, leaf_radius: float = 0.55,
         reach: float = 0.5, bundle: int = 3) -> Tree:
    """Grow a tree from `root` (mm) that supplies every point of `points` (n, 3) with one terminal branch.

    reach: how far (fraction) each branch goes from its start toward the centroid of the points it supplies.
    bundle: a branch supplying at most this many points ends there and sends one terminal twig to each.
    """
    a, b, r, d, par = [], [], [], [], []
    stack = [(np.asarray(root, dtype=float), np.asarray(points, dtype=float), -1)]
    while stack:
        start, pts, parent = stack.pop()
        n = len(pts)
        radius = leaf_radius * n ** (1.0 / 3.0)
        centroid = pts.mean(0)
        end = pts[0] if n == 1 else start + reach * (centroid - start)
        step = end - start
        length = float(np.linalg.norm(step))
        if length < 1e-6:
            end = start + 0.5 * (centroid - start + 1e-3)
            step = end - start
            length = float(np.linalg.norm(step))
        idx = len(a)
        a.append(start)
        b.append(end)
        r.append(radius)
        d.append(step / max(length, 1e-9))
        par.append(parent)
        if n == 1:
            continue
        if n <= bundle:
            stack.extend((end, pts[i:i + 1], idx) for i in range(n))
            continue
        centred = pts - centroid
        _, vecs = np.linalg.eigh(centred.T @ centred)
        order = np.argsort(centred @ vecs[:, -1])
        k = int(np.clip(round(n * rng.uniform(0.35, 0.65)), 1, n - 1))
        stack.append((end, pts[order[:k]], idx))
        stack.append((end, pts[order[k:]], idx))
    a, b, r = np.array(a), np.array(b), np.array(r)
    # taper: each segment ends at the radius of its thickest child (the parent's own radius for leaves)
    rb = r * 0.9
    par = np.array(par)
    has_parent = par >= 0
    np.maximum.at(rb, par[has_parent], r[has_parent])
    rb = np.minimum(rb, r)
    return Tree(Tubes(a, b, r, rb), np.array(d), par)


def companion(tree: Tree, side_hint, min_radius: float, ratio: float = 0.75, gap: float = 0.8) -> Tubes:
    """Bronchial lumens accompanying the arterial segments whose radius is at least `min_radius`.

    Each node is shifted perpendicular to its incoming segment, toward `side_hint` (a unit vector), by the
    artery radius plus the bronchus outer radius plus `gap`, so the two tubes run side by side.
    """
    t = tree.tubes
    keep = np.nonzero(t.ra >= min_radius)[0]
    if not len(keep):
        return Tubes.empty()
    hint = np.asarray(side_hint, dtype=float)

    def offset(direction, r_art):
        perp = hint - (direction @ hint)[..., None] * direction
        norm = np.linalg.norm(perp, axis=-1, keepdims=True)
        fallback = np.cross(direction, [1.0, 0.0, 0.0])
        perp = np.where(norm > 0.2, perp / np.maximum(norm, 1e-9), fallback / np.maximum(
            np.linalg.norm(fallback, axis=-1, keepdims=True), 1e-9))
        return perp * (r_art * (1.0 + ratio * 1.3) + gap)[..., None]

    d_end = tree.direction[keep]
    d_start = np.where((tree.parent[keep] >= 0)[:, None], tree.direction[np.maximum(tree.parent[keep], 0)], d_end)
    r_start = np.where(tree.parent[keep] >= 0, t.ra[np.maximum(tree.parent[keep], 0)], t.ra[keep])
    a = t.a[keep] + offset(d_start, r_start)
    b = t.b[keep] + offset(d_end, t.ra[keep])
    return Tubes(a, b, t.ra[keep] * ratio, t.rb[keep] * ratio)
