"""report.pdf (issue 22): listed in report.json, one summary page with the report's numbers, key images and
heatmaps on the following pages. Pages are rendered with poppler's pdftoppm and checked for content where the
figures are placed (report_pdf.IMAGE_SLOTS); text is read back with pdftotext."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from CovidCTAnalysis.pipeline.report_pdf import IMAGE_SLOTS

DPI = 40


def expected_pages(report: dict) -> int:
    volume = report["input"]["size"][2] > 1
    key = 2 if volume else 1  # axial, and coronal for a volume
    if volume and (report.get("lesions") or {}).get("total_ml"):
        key += 3  # the lesion maps: front, side, above
    heat = sum(len(r.get("heatmaps", {})) for r in report["classifiers"].values())
    return 1 + math.ceil(key / len(IMAGE_SLOTS)) + math.ceil(heat / len(IMAGE_SLOTS))


def poppler(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (Debian package poppler-utils: apt-get install poppler-utils)")
    return path


@pytest.fixture(scope="module")
def analysis(dicom_analysis):
    out, _ = dicom_analysis
    return out, json.loads((out / "report.json").read_text(encoding="utf-8"))


def test_pdf_written_and_listed(analysis):
    out, report = analysis
    assert "report.pdf" in report["files"]
    data = (out / "report.pdf").read_bytes()
    assert data.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type\s*/Page\b", data)) == expected_pages(report)


@pytest.fixture(scope="module")
def pages(analysis, tmp_path_factory) -> list[np.ndarray]:
    out, _ = analysis
    folder = tmp_path_factory.mktemp("pages")
    subprocess.run([poppler("pdftoppm"), "-r", str(DPI), "-png", str(out / "report.pdf"), str(folder / "page")],
                   check=True, timeout=120)
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("page-*.png"))]


def slot_pixels(page: np.ndarray, slot) -> np.ndarray:
    """The pixels of a figure slot (figure coordinates, origin bottom left) on a rendered page."""
    height, width = page.shape[:2]
    left, bottom, w, h = slot
    return page[int((1 - bottom - h) * height):int((1 - bottom) * height), int(left * width):int((left + w) * width)]


def test_pdf_pages_show_the_figures(analysis, pages):
    _, report = analysis
    assert len(pages) == expected_pages(report)
    summary, *pictures = pages
    assert (summary < 200).any(axis=2).mean() > 0.005, "the summary page has text"
    for number, page in enumerate(pictures, start=2):
        for slot in IMAGE_SLOTS:
            region = slot_pixels(page, slot)
            ink = (region < 230).any(axis=2).mean()
            colour = (region.max(axis=2).astype(int) - region.min(axis=2)) > 60
            assert ink > 0.15, f"page {number}: figure slot {slot} is blank ({ink:.1%} ink)"
            assert colour.mean() > 0.001, f"page {number}: no coloured overlay (segments / heatmap) in {slot}"
    margin = pictures[0][: pictures[0].shape[0] // 30]
    assert (margin > 245).all(axis=2).mean() > 0.9, "outside the slots the page stays white"


def test_pdf_text_has_the_report_numbers(analysis):
    out, report = analysis
    text = subprocess.run([poppler("pdftotext"), str(out / "report.pdf"), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout
    assert "Research use only" in text
    assert f"right {report['lungs']['right_ml']:,.1f} mL" in text
    pi = report["lesions"]["percent_involvement"]
    assert f"right {pi['right']:.1f} %, left {pi['left']:.1f} %" in text
    assert report["lesions"]["severity"]["band"] in text
    for name, result in report["classifiers"].items():
        assert f"{name}: {result['probability']:.3f}" in text
    for name, version in report["models"].items():
        assert f"{name} {version}" in text
    assert not re.search(r"doe|jane|mrn4711|19700402", text, re.IGNORECASE), "no patient identifier in the PDF"
