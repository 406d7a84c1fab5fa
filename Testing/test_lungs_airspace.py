"""Air inside the body: levels, outside air, and lung-like pockets versus gut gas and the trachea."""

from __future__ import annotations

import numpy as np
import pytest

from CovidCTAnalysis.lungs.airspace import Levels, find_air_pockets, intensity_levels

SPACING = (3.0, 3.0, 3.0)


def _chest(rng, stomach_gap: int | None = None, trachea: bool = False):
    """A body (40 HU) with one lung (-850 HU +- texture) and optionally a stomach bubble under it."""
    z, y, x = np.mgrid[0:50, 0:64, 0:64]
    body = ((x - 32) / 28.0) ** 2 + ((y - 32) / 24.0) ** 2 < 1.0
    v = np.full(x.shape, -1000.0)
    v[body] = 40.0
    lung = body & (((x - 32) / 18.0) ** 2 + ((y - 32) / 14.0) ** 2 + ((z - 26) / 12.0) ** 2 < 1.0)
    v[lung] = -850.0 + rng.normal(0.0, 40.0, lung.sum())
    parts = {"lung": lung, "body": body}
    if stomach_gap is not None:
        top = 14 - stomach_gap  # the lung's base is at z = 14
        stomach = body & (((x - 32) / 10.0) ** 2 + ((y - 32) / 8.0) ** 2 + ((z - (top - 6)) / 6.0) ** 2 < 1.0)
        v[stomach] = -1000.0 + rng.normal(0.0, 10.0, stomach.sum())
        parts["stomach"] = stomach
        # a thin diaphragm whose partial volume reads as air between the two
        bridge = body & (np.abs(x - 32) < 6) & (np.abs(y - 32) < 5) & (z >= top) & (z < 14)
        v[bridge & ~lung] = -700.0
    if trachea:  # above the apex (z = 38), down to a slice above it
        tube = (np.hypot(x - 32, y - 32) < 3) & (z >= 39)
        v[tube] = -1000.0 + rng.normal(0.0, 10.0, tube.sum())
        parts["trachea"] = tube
    return v.astype(np.float32), parts


def test_real_hu_levels_are_physical():
    levels = intensity_levels(np.zeros((4, 4, 4), np.float32), display_windowed=False)
    assert (levels.air, levels.tissue, levels.threshold) == (-1000.0, 0.0, -500.0)
    assert Levels(-1000.0, 0.0).at(0.05) == pytest.approx(-950.0)


def test_display_windowed_levels_are_measured():
    rng = np.random.default_rng(0)
    v, parts = _chest(rng)
    # an 8-bit rendering through a lung window of unknown level, mapped back with the assumed one
    u8 = np.clip(np.round((v + 1250.0) / 1400.0 * 255.0), 0, 255)
    approx = -1350.0 + u8 / 255.0 * 1500.0  # true -1000 reads about -1082, true +40 about +32
    levels = intensity_levels(approx.astype(np.float32), display_windowed=True)
    assert -1120.0 < levels.air < -1000.0
    assert -150.0 < levels.tissue < 60.0
    pockets = find_air_pockets(approx.astype(np.float32), SPACING, levels)
    assert (pockets.lungs == parts["lung"]).mean() > 0.99


def test_air_around_the_body_is_outside():
    rng = np.random.default_rng(1)
    v, parts = _chest(rng)
    pockets = find_air_pockets(v, SPACING, Levels(-1000.0, 0.0))
    assert pockets.outside[~parts["body"]].all()
    assert not pockets.outside[parts["lung"]].any()
    assert np.array_equal(pockets.lungs, parts["lung"])


@pytest.mark.parametrize("gap", [0, 2])
def test_stomach_bubble_under_the_lung_is_not_lung(gap):
    """Joined to the lung base by partial volume (gap 0) or not (gap 2): pure air walled by tissue is gut gas."""
    rng = np.random.default_rng(2)
    v, parts = _chest(rng, stomach_gap=gap)
    pockets = find_air_pockets(v, SPACING, Levels(-1000.0, 0.0))
    assert not pockets.lungs[parts["stomach"]].any()
    assert pockets.lungs[parts["lung"]].mean() > 0.97


def test_trachea_is_not_lung():
    rng = np.random.default_rng(3)
    v, parts = _chest(rng, trachea=True)
    pockets = find_air_pockets(v, SPACING, Levels(-1000.0, 0.0))
    assert not pockets.lungs[parts["trachea"]].any()
    assert pockets.inner_air[parts["trachea"]].all()


def test_gas_only_gives_no_lung():
    rng = np.random.default_rng(4)
    v, parts = _chest(rng)
    v[parts["lung"]] = -1000.0 + rng.normal(0.0, 10.0, parts["lung"].sum())  # a gas-filled viscus, not lung
    pockets = find_air_pockets(v, SPACING, Levels(-1000.0, 0.0))
    assert not pockets.lungs.any()


def _foam_and_table(v, parts, rng):
    """A mattress (-880 HU +- texture, like lung) under the back, on a table plate (300 HU), as wide as the image."""
    v = v.copy()
    y = np.arange(v.shape[1])[None, :, None]
    foam = ~parts["body"] & (y >= 52) & (y < 62)
    v[foam] = -880.0 + rng.normal(0.0, 40.0, foam.sum())
    v[:, 62:64, :] = 300.0
    return v.astype(np.float32), foam


def test_lung_cut_by_the_image_edge_is_kept():
    """A crop through the lung (its left part cut off): the lung touches the edge and is still lung (issue 18)."""
    rng = np.random.default_rng(5)
    v, parts = _chest(rng)
    pockets = find_air_pockets(v[:, :, 20:], SPACING, Levels(-1000.0, 0.0))
    assert np.array_equal(pockets.lungs, parts["lung"][:, :, 20:])


@pytest.mark.parametrize("crop", [slice(0, 64), slice(12, 52)])
def test_table_foam_is_not_lung(crop):
    """Foam textured like lung under the back: running into the outside air (whole image) or, in a crop narrower
    than the patient, from side to side between the back and the table, it is not lung; the lung is unchanged."""
    rng = np.random.default_rng(6)
    v, parts = _chest(rng)
    v, foam = _foam_and_table(v, parts, rng)
    pockets = find_air_pockets(v[:, :, crop], SPACING, Levels(-1000.0, 0.0))
    assert not pockets.lungs[foam[:, :, crop]].any()
    assert np.array_equal(pockets.lungs, parts["lung"][:, :, crop])


def test_table_underside_walled_by_a_slanted_table_is_not_lung():
    """In a field of view narrower than the patient, the table's underside (textured like lung) between a slanted
    table shell and the image edges is walled in by the shell, the cut body and the edges like a cut lung, but lies
    outside the body's outline (a Radiopaedia stack had it as lung in every slice, issue 18); the lung is unchanged."""
    rng = np.random.default_rng(8)
    v, parts = _chest(rng)
    v, lung = v[:, :, 6:], parts["lung"][:, :, 6:]  # the body is cut by the left edge
    y, x = np.mgrid[0:64, 0:58]
    shell_y = 40.0 + 0.6 * x  # from the body at the left edge down to the bottom edge
    shell = np.abs(y - shell_y) < 1.2
    under = (y > shell_y) & ~shell
    v[:, shell] = 300.0
    v[:, under] = -880.0 + rng.normal(0.0, 40.0, (v.shape[0], int(under.sum())))
    pockets = find_air_pockets(v, SPACING, Levels(-1000.0, 0.0))
    assert not pockets.lungs[:, under].any()
    assert np.array_equal(pockets.lungs, lung)


def test_figure_cropped_to_the_lung_keeps_its_lung():
    """A display-windowed figure cropped to the lung's box holds no air but lung: its darker quarter must not count
    as pure air (gas), so the pure-air tests measure from the darkest air seen (`Levels.floor`)."""
    rng = np.random.default_rng(7)
    v, parts = _chest(rng)
    u8 = np.clip(np.round((v + 1250.0) / 1400.0 * 255.0), 0, 255)
    approx = (-1350.0 + u8 / 255.0 * 1500.0).astype(np.float32)[20:33, 16:49, 12:53]
    levels = intensity_levels(approx, display_windowed=True)
    assert levels.floor < levels.air
    pockets = find_air_pockets(approx, SPACING, levels)
    lung = parts["lung"][20:33, 16:49, 12:53]
    assert (pockets.lungs == lung).mean() > 0.98
