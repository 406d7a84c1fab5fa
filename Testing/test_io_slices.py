"""PNG/JPEG slices and slice stacks (CovidCTAnalysis/io/slices.py): grayscale, HU mapping, geometry, stack order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import sha256_tree
from PIL import Image

from CovidCTAnalysis.errors import InputError
from CovidCTAnalysis.io import load_ct, to_input_grid
from CovidCTAnalysis.io.sniff import natural_key

H, W = 30, 40


def _gray(seed=0) -> np.ndarray:
    g = np.random.default_rng(seed).integers(0, 256, (H, W)).astype(np.uint8)
    g[0, 0], g[0, 1] = 0, 255
    return g


def assert_refused(path: Path, *words: str, **kw) -> str:
    before = sha256_tree(path)
    with pytest.raises(InputError) as info:
        load_ct(path, **kw)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message, message
    for w in words:
        assert w.lower() in message.lower(), message
    assert sha256_tree(path) == before
    return message


def _hu(v, width=1500.0, level=-600.0):
    return level - width / 2 + np.asarray(v, np.float64) / 255.0 * width


def test_l_png_maps_through_the_lung_window(tmp_path):
    g = _gray()
    Image.fromarray(g).save(tmp_path / "s.png")
    ct = load_ct(tmp_path / "s.png")
    assert ct.kind == "slice-2d" and ct.is_2d and ct.display_windowed and ct.window == (1500.0, -600.0)
    assert ct.size == (W, H, 1)
    a = sitk.GetArrayViewFromImage(ct.image)[0]
    np.testing.assert_allclose(a, _hu(g), atol=1e-3)
    assert a[0, 0] == pytest.approx(-1350.0) and a[0, 1] == pytest.approx(150.0)
    # default spacing: 350 mm field of view across the width, 5 mm thick
    assert ct.spacing == pytest.approx((350 / W, 350 / W, 5.0))


def test_window_and_spacing_options(tmp_path):
    g = _gray()
    Image.fromarray(g).save(tmp_path / "s.png")
    ct = load_ct(tmp_path / "s.png", window=(400, 40), spacing=(0.5, 0.6, 2.0))
    np.testing.assert_allclose(sitk.GetArrayViewFromImage(ct.image)[0], _hu(g, 400, 40), atol=1e-3)
    assert ct.window == (400.0, 40.0) and ct.spacing == pytest.approx((0.5, 0.6, 2.0))


@pytest.mark.parametrize("window, words", [((0, 40), "must be positive"), ((float("nan"), 1), "two numbers"),
                                           ((1, 2, 3), "two numbers")])
def test_bad_window_option(tmp_path, window, words):
    Image.fromarray(_gray()).save(tmp_path / "s.png")
    assert_refused(tmp_path / "s.png", words, window=window)


@pytest.mark.parametrize("spacing, words", [((0, 1, 1), "positive"), ((1, 1), "three numbers"),
                                            ((float("inf"), 1, 1), "not a number")])
def test_bad_spacing_option(tmp_path, spacing, words):
    Image.fromarray(_gray()).save(tmp_path / "s.png")
    assert_refused(tmp_path / "s.png", words, spacing=spacing)


def test_rgb_uses_luminance_and_notes_colour(tmp_path):
    g = _gray()
    rgb = np.stack([g, g, g], axis=2)
    rgb[5:8, 5:8] = (255, 0, 0)  # a red arrow
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    ct = load_ct(tmp_path / "rgb.png")
    a = sitk.GetArrayViewFromImage(ct.image)[0]
    expected = g.copy()
    expected[5:8, 5:8] = 76  # ITU-R 601-2: 0.299 * 255
    np.testing.assert_allclose(a, _hu(expected), atol=1e-3)
    assert any("coloured pixels" in n for n in ct.notes)


def test_rgba_and_la_composite_over_black(tmp_path):
    g = _gray()
    alpha = np.full((H, W), 255, np.uint8)
    alpha[:, :10] = 0
    alpha[:, 10:20] = 128
    Image.fromarray(np.dstack([g, g, g, alpha]), mode="RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(np.dstack([g, alpha]), mode="LA").save(tmp_path / "la.png")
    expected = np.rint(g * (alpha / 255.0))
    for name in ("rgba.png", "la.png"):
        ct = load_ct(tmp_path / name)
        np.testing.assert_allclose(sitk.GetArrayViewFromImage(ct.image)[0], _hu(expected), atol=1e-3)
        assert any("composited over black" in n for n in ct.notes)


def test_opaque_rgba_is_plain_luminance(tmp_path):
    g = _gray()
    Image.fromarray(np.dstack([g, g, g, np.full((H, W), 255, np.uint8)]), mode="RGBA").save(tmp_path / "o.png")
    ct = load_ct(tmp_path / "o.png")
    np.testing.assert_allclose(sitk.GetArrayViewFromImage(ct.image)[0], _hu(g), atol=1e-3)
    assert not any("composited" in n for n in ct.notes)


def test_palette_image(tmp_path):
    g = (_gray() // 16) * 16  # 16 gray levels fit a palette exactly
    Image.fromarray(g).convert("P").save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    ct = load_ct(tmp_path / "p.png")
    np.testing.assert_allclose(sitk.GetArrayViewFromImage(ct.image)[0], _hu(g), atol=1e-3)


def test_jpeg_named_png_and_jpg(tmp_path):
    g = _gray()
    Image.fromarray(g).save(tmp_path / "j.png", format="JPEG", quality=100)  # as in COVID-CT
    Image.fromarray(g).save(tmp_path / "j.jpg", quality=100)
    for name in ("j.png", "j.jpg"):
        a = sitk.GetArrayFromImage(load_ct(tmp_path / name).image)[0]
        assert np.abs(a - _hu(g)).mean() < 40  # JPEG is lossy; ~6 gray levels of 1500/255 HU


def test_exif_orientation_is_applied(tmp_path):
    g = _gray()
    im = Image.fromarray(g)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    im.save(tmp_path / "r.jpg", exif=exif, quality=100)
    ct = load_ct(tmp_path / "r.jpg")
    assert ct.size == (H, W, 1)


def test_one_bit_and_sixteen_bit_are_refused(tmp_path):
    Image.fromarray(_gray() > 128).save(tmp_path / "mask.png")
    assert_refused(tmp_path / "mask.png", "1-bit")
    Image.fromarray(_gray().astype(np.uint16) * 200).save(tmp_path / "deep.png")
    assert_refused(tmp_path / "deep.png", "16/32-bit", "HU")


def test_gif_and_tiny_and_blank_images_are_refused(tmp_path):
    Image.fromarray(_gray()).save(tmp_path / "a.gif")
    assert_refused(tmp_path / "a.gif", "unsupported file type")
    Image.fromarray(_gray()).save(tmp_path / "g.png", format="GIF")
    assert_refused(tmp_path / "g.png", "GIF image", "only PNG and JPEG")
    Image.fromarray(np.zeros((1, 1), np.uint8) + 3).save(tmp_path / "px.png")
    assert_refused(tmp_path / "px.png", "1x1", "at least 16x16")
    Image.fromarray(np.zeros((H, W), np.uint8)).save(tmp_path / "black.png")
    assert_refused(tmp_path / "black.png", "blank")


def test_damaged_png(tmp_path):
    Image.fromarray(_gray()).save(tmp_path / "s.png")
    data = (tmp_path / "s.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    assert_refused(tmp_path / "cut.png", "damaged or truncated")
    (tmp_path / "text.png").write_text("not an image")
    assert_refused(tmp_path / "text.png", "not a readable PNG or JPEG")


def test_natural_key_orders_numbers():
    names = ["10.jpeg", "2.jpeg", "1.jpeg", "a10001.jpeg", "a9999.jpeg"]
    assert sorted(names, key=natural_key) == ["1.jpeg", "2.jpeg", "10.jpeg", "a9999.jpeg", "a10001.jpeg"]


def _stack(folder: Path, n=12, size=(W, H)) -> list[np.ndarray]:
    folder.mkdir()
    slices = []
    for k in range(1, n + 1):
        g = np.full((size[1], size[0]), 10 * k, np.uint8)
        g[0, 0] = 0
        Image.fromarray(g).save(folder / f"{k}.png")
        slices.append(g)
    (folder / "Untitled.txt").write_text("case text")
    return slices


def test_stack_order_and_geometry(tmp_path):
    slices = _stack(tmp_path / "st")
    ct = load_ct(tmp_path / "st")
    assert ct.kind == "slice-stack" and not ct.is_2d and ct.size == (W, H, 12)
    assert ct.input_orientation == "LPI" and ct.display_windowed
    a = sitk.GetArrayViewFromImage(ct.image)
    # file 1 is the most superior slice: the highest canonical z
    np.testing.assert_allclose(a[-1], _hu(slices[0]), atol=1e-3)
    np.testing.assert_allclose(a[0], _hu(slices[-1]), atol=1e-3)
    assert [p.name for p in ct.slice_files] == [f"{k}.png" for k in range(12, 0, -1)]
    assert any("Untitled.txt" in n for n in ct.notes)
    back = to_input_grid(ct.image, ct)  # input grid: z index k is file k+1
    np.testing.assert_allclose(sitk.GetArrayViewFromImage(back)[9], _hu(slices[9]), atol=1e-3)


def test_stack_with_an_odd_size_names_the_file(tmp_path):
    _stack(tmp_path / "st")
    Image.fromarray(np.full((H + 2, W), 7, np.uint8)).save(tmp_path / "st" / "5.png")
    msg = assert_refused(tmp_path / "st", "5.png", f"{W}x{H + 2}", f"{W}x{H}")
    assert msg.startswith(str(tmp_path / "st" / "5.png"))


def test_stack_with_duplicate_numbers(tmp_path):
    _stack(tmp_path / "st", n=3)
    Image.fromarray(_gray()).save(tmp_path / "st" / "01.png")
    assert_refused(tmp_path / "st", "same slice number", "1.png")


def test_stack_of_mixed_modes_is_fine(tmp_path):
    slices = _stack(tmp_path / "st", n=3)
    Image.fromarray(np.dstack([slices[1]] * 3)).save(tmp_path / "st" / "2.png")
    a = sitk.GetArrayFromImage(load_ct(tmp_path / "st").image)
    np.testing.assert_allclose(a[1], _hu(slices[1]), atol=1e-3)
