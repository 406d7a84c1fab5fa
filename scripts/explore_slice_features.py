#!/usr/bin/env python
"""Researcher's report: the gradient-weighted feature space of slice-resnet (Gozes et al. §3.3) and Grad-CAM figures.

For every image of the chosen COVID-CT splits: the gradient-weighted ``layer4`` feature vector (see
CovidCTAnalysis/classifiers/slice_resnet/explain.py), z-scored per feature; k-means for k = 1..K_MAX; k chosen by
the elbow of the inertia curve (the k farthest from the straight line joining the curve's ends); PCA to 2-D for the
plot; per cluster the 4 key slices nearest (L2) to its centre. Also paper Fig. 2 (two Grad-CAM scales and their
fusion) for a few validation images.

    python scripts/explore_slice_features.py -o Resources/Models/cards/slice-resnet [--splits train,val]

Writes OUT/feature-space.png, OUT/feature-elbow.png, OUT/key-slices.png, OUT/gradcam-val.png, OUT/features.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

K_MAX = 8
KEY_SLICES = 4


def elbow(inertia: list[float]) -> int:
    """k (1-based) of the point farthest from the chord between the first and last points of the inertia curve."""
    k = np.arange(1, len(inertia) + 1, dtype=float)
    y = np.asarray(inertia, dtype=float)
    kn, yn = (k - k[0]) / (k[-1] - k[0]), (y - y[-1]) / max(y[0] - y[-1], 1e-12)
    distance = np.abs(kn + yn - 1) / np.sqrt(2)  # chord from (0, 1) to (1, 0)
    return int(k[np.argmax(distance)])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--splits", default="train,val")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--registry", type=Path)
    ap.add_argument("--gradcam-examples", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import SimpleITK as sitk
    import torch
    from PIL import Image
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    from CovidCTAnalysis.classifiers.slice_resnet import inputs, load_model
    from CovidCTAnalysis.classifiers.slice_resnet.explain import gradcam_figure, gradient_weighted_features
    from CovidCTAnalysis.evaluation import covid_ct_split
    from CovidCTAnalysis.io import load_ct

    torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    model = load_model("cpu", a.registry)
    items = [(p, y, s) for s in a.splits.split(",") for p, y in covid_ct_split(a.data / "covid-ct", s)]
    squares = np.stack([inputs.square_from_hu(sitk.GetArrayFromImage(load_ct(p).image)[0], size=model.square_size)
                        for p, _, _ in items])
    labels = np.array([y for _, y, _ in items])
    feats, probs = gradient_weighted_features(model, squares)
    z = StandardScaler().fit_transform(feats)
    z = np.nan_to_num(z)  # features that are constant over the set

    inertia = [float(KMeans(k, n_init=10, random_state=a.seed).fit(z).inertia_) for k in range(1, K_MAX + 1)]
    k = elbow(inertia)
    km = KMeans(k, n_init=10, random_state=a.seed).fit(z)
    pca = PCA(2, random_state=a.seed).fit(z)
    xy, centres = pca.transform(z), pca.transform(km.cluster_centers_)

    fig, ax = plt.subplots(figsize=(4, 3.2), dpi=110)
    ax.plot(range(1, K_MAX + 1), inertia, "o-")
    ax.axvline(k, ls="--", c="tab:red", label=f"elbow k = {k}")
    ax.set(xlabel="k", ylabel="k-means inertia", title="elbow method")
    ax.legend()
    fig.tight_layout()
    fig.savefig(a.out / "feature-elbow.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=110)
    colours = plt.cm.tab10(np.arange(k))
    for c in range(k):
        for lab, marker in ((1, "o"), (0, "x")):
            sel = (km.labels_ == c) & (labels == lab)
            ax.scatter(xy[sel, 0], xy[sel, 1], s=12, marker=marker, color=colours[c], alpha=0.7,
                       label=f"cluster {c + 1}, {'COVID-19' if lab else 'non-COVID'}")
        ax.scatter(*centres[c], s=180, marker="*", color=colours[c], edgecolor="k")
    ax.set(xlabel=f"PC 1 ({pca.explained_variance_ratio_[0]:.0%})", ylabel=f"PC 2 ({pca.explained_variance_ratio_[1]:.0%})",
           title="gradient-weighted feature space (PCA of z-scored features)")
    ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    fig.savefig(a.out / "feature-space.png")
    plt.close(fig)

    clusters, rows = [], []
    for c in range(k):
        members = np.nonzero(km.labels_ == c)[0]
        d = np.linalg.norm(z[members] - km.cluster_centers_[c], axis=1)
        key = members[np.argsort(d)[:KEY_SLICES]]
        clusters.append({"cluster": c + 1, "size": int(members.size), "fraction_covid": float(labels[members].mean()),
                         "mean_probability": float(probs[members].mean()),
                         "key_slices": [{"image": items[i][0].name, "split": items[i][2], "label": int(labels[i]),
                                         "probability": round(float(probs[i]), 4)} for i in key]})
        tiles = [np.rint(squares[i] * 255).astype(np.uint8) for i in key]
        tiles += [np.zeros_like(tiles[0])] * (KEY_SLICES - len(tiles))
        rows.append(np.concatenate(tiles, axis=1))
    Image.fromarray(np.concatenate(rows, axis=0)).resize((KEY_SLICES * 160, k * 160)).save(a.out / "key-slices.png")

    val = [i for i, (_, _, s) in enumerate(items) if s == "val"] or list(range(len(items)))
    rng = np.random.default_rng(a.seed)
    pick = [*rng.choice([i for i in val if labels[i] == 1], a.gradcam_examples // 2, replace=False),
            *rng.choice([i for i in val if labels[i] == 0], a.gradcam_examples - a.gradcam_examples // 2,
                        replace=False)]
    gradcam_figure(model, squares[pick], [f"{'COVID' if labels[i] else 'non-COVID'}: {items[i][0].name[:22]}"
                                          for i in pick], a.out / "gradcam-val.png")

    report = {"splits": a.splits, "n": len(items), "feature_dim": int(feats.shape[1]), "inertia": inertia, "k": k,
              "pca_explained_variance": [float(v) for v in pca.explained_variance_ratio_], "clusters": clusters}
    (a.out / "features.json").write_text(json.dumps(report, indent=1))
    for c in clusters:
        print(f"cluster {c['cluster']}: {c['size']} slices, {c['fraction_covid']:.0%} COVID-19, "
              f"mean P {c['mean_probability']:.2f}; key: {', '.join(s['image'] for s in c['key_slices'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
