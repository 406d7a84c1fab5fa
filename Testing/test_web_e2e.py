"""The browser app end to end, as a user drives it: `covidct serve` on 127.0.0.1 and Chromium (Playwright).

One server and one browser for the module; the tests run in order, like one reading session: bad inputs are refused on
the page while the server keeps serving -> the demo CT -> Analyze (a second reader's request queued behind it, Cancel
of the first) -> measurements, downloads and overlay colours in the rendered views -> heatmap toggles -> the annotator
paints a stroke on the lesion mask and saves it into the images/ + masks/ dataset, which is checked on disk.

Needs the web extra (trame-slicer, slicer-core), Playwright and a Chromium executable (Debian's `chromium`, or
$COVIDCT_CHROMIUM); each missing piece skips the module with the reason. Screenshots go to $COVIDCT_TEST_ARTIFACTS
(default: a pytest temporary folder). Every wait is bounded.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("trame_slicer", reason="the web extra is not installed (pip install -e '.[web]')")
pytest.importorskip("slicer", reason="the web extra is not installed (pip install -e '.[web]')")
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (the test extra has it)")
CHROMIUM = os.environ.get("COVIDCT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
if not CHROMIUM:
    pytest.skip("no Chromium executable (Debian: apt-get install chromium; or set COVIDCT_CHROMIUM)",
                allow_module_level=True)

import SimpleITK as sitk  # noqa: E402
from PIL import Image  # noqa: E402

from CovidCTAnalysis.demo import make_demo_ct  # noqa: E402

pytestmark = pytest.mark.web

DEMO_SIZE = "96,96,48"
START_S, ANALYSIS_S, STEP_S = 120, 300, 60  # bounds of every wait (a 2-core machine with other work beside)
AXIAL, THREE_D = 3, 2  # the four-up layout's views in page order: coronal, sagittal, 3-D, axial


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    folder = os.environ.get("COVIDCT_TEST_ARTIFACTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("web-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`covidct serve` in its own process group: (url, data folder, outputs folder)."""
    root = tmp_path_factory.mktemp("web")
    data, outputs = root / "data", root / "outputs"
    (data / "cases").mkdir(parents=True)
    sitk.WriteImage(make_demo_ct(size=(48, 48, 16), seed=1).image, str(data / "cases" / "small.nii.gz"))
    (root / "secret.nrrd").write_bytes(b"outside the data folder")
    ready = root / "ready"
    port = _free_port()
    log = open(root / "server.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "CovidCTAnalysis", "serve", "--port", str(port), "--data", str(data),
         "--outputs", str(outputs), "--demo-size", DEMO_SIZE, "--models", "all", "--device", "cpu",
         "--ready-file", str(ready)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + START_S
    while not ready.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    try:
        assert ready.is_file(), f"the server did not start in {START_S} s:\n{(root / 'server.log').read_text()[-3000:]}"
        yield f"http://127.0.0.1:{port}/", data, outputs
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)
        log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], timeout=STEP_S * 1000)
        try:
            yield chromium
        finally:
            chromium.close()


def _open(browser, url):
    page = browser.new_page(viewport={"width": 1440, "height": 960})
    page.set_default_timeout(STEP_S * 1000)
    page.elsewhere = []  # requests to anything but this server: the page must need none (no CDN fonts or scripts)
    page.on("request", lambda request: None if request.url.startswith((url, "blob:", "data:"))
            else page.elsewhere.append(request.url))
    page.goto(url)
    page.wait_for_selector("#covidct-demo")
    return page


@pytest.fixture(scope="module")
def page(browser, server):
    page = _open(browser, server[0])
    yield page
    page.close()


def _message(page, contains: str, timeout_s: float = STEP_S) -> str:
    page.wait_for_function("(t) => (document.querySelector('#covidct-message') || {}).innerText?.includes(t)",
                           arg=contains, timeout=timeout_s * 1000)
    return page.inner_text("#covidct-message")


def _view(page, index: int) -> np.ndarray:
    """The view's rendered image as the browser shows it, RGB uint8."""
    png = page.locator(".layout-grid-item").nth(index).screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def _coloured(rgb: np.ndarray, chroma: int = 60) -> int:
    """Pixels whose colour is far from grey (the CT is grey; segments and heatmaps are not)."""
    return int(((rgb.max(axis=2) - rgb.min(axis=2)) > chroma).sum())


def _bluish(rgb: np.ndarray) -> int:
    """Pixels tinted blue (the left lung's colour; lesions are yellow and red, the 3-D background grey)."""
    return int((((rgb[..., 2] - rgb[..., 0]) > 25) & (rgb[..., 2] > rgb[..., 1])).sum())


def test_bad_inputs_are_refused_on_the_page_and_the_server_keeps_serving(page, server, tmp_path, artifacts):
    _, data, _ = server
    page.fill("#covidct-path", "../secret.nrrd")
    page.click("#covidct-open-path")
    assert "outside the server's data folder" in _message(page, "outside")
    page.fill("#covidct-path", "/etc/passwd")
    page.click("#covidct-open-path")
    _message(page, "/etc/passwd")

    not_an_image = tmp_path / "scan.nii.gz"
    not_an_image.write_bytes(b"this is not a CT" * 100)
    page.set_input_files("#covidct-upload", str(not_an_image))
    assert "is not an image" in _message(page, "not an image")

    huge = tmp_path / "huge.nrrd"
    with open(huge, "wb") as f:  # 2 GB, sparse: nothing is written to disk
        f.truncate(2 * 10**9 + 1)
    page.set_input_files("#covidct-upload", str(huge))
    assert "larger than the upload limit" in _message(page, "upload limit")

    page.fill("#covidct-path", "cases/small.nii.gz")  # still serving: a CT inside the data folder opens
    page.click("#covidct-open-path")
    _message(page, "small.nii.gz is open")
    page.click("#covidct-demo")
    _message(page, "demo CT is open")
    assert not page.elsewhere, f"the page fetched {page.elsewhere}"
    page.screenshot(path=str(artifacts / "0-demo-open.png"))


def test_analyze_with_a_second_request_queued_then_cancel_then_results(page, browser, server, artifacts):
    url, _, outputs = server
    before = _coloured(_view(page, AXIAL), chroma=30)
    page.click("#covidct-analyze")
    _message(page, "started")
    other = _open(browser, url)  # a second reader's request while the first runs: queued, not lost
    try:
        other.click("#covidct-analyze")
        assert "queued" in _message(other, "queued")
        page.wait_for_function("document.querySelector('#covidct-stage').innerText.includes('1 queued')")
    finally:
        other.close()
    page.click("#covidct-cancel")
    _message(page, "cancelled")
    page.wait_for_function("document.querySelector('#covidct-progress').innerText.trim() !== '0 %'")
    page.screenshot(path=str(artifacts / "1-analysis-running.png"))
    page.wait_for_function(
        "document.querySelector('#covidct-message').innerText.match(/finished|failed/)", timeout=ANALYSIS_S * 1000)
    assert "analysis 0002 of demo CT finished" in page.inner_text("#covidct-message")
    assert not (outputs / "runs" / "0001" / "report.json").exists()  # the cancelled run left no report

    table = page.inner_text("#covidct-measurements")
    for measurement in ("Right lung volume", "Lesion volume", "Involvement of both lungs", "Severity band",
                        "P(COVID-19), slice-resnet", "P(COVID-19), decovnet"):
        assert measurement in table
    # the page says what the run's report says: decovnet's lesion centre when it localized one (a positive call
    # whose CAM region meets the 3DCC region, seed 002 §II-E), else that no classifier localized a lesion
    decovnet = json.loads((outputs / "runs" / "0002" / "report.json").read_text())["classifiers"]["decovnet"]
    localization = page.inner_text("#covidct-localization")
    if decovnet.get("localization"):
        assert "decovnet: localized lesion centre at" in localization
    else:
        assert "no classifier localized a lesion" in localization
    links = page.locator("#covidct-downloads a")
    names = [links.nth(i).inner_text() for i in range(links.count())]
    assert {"report.html", "report.json", "lungs.seg.nrrd", "lesions.seg.nrrd"} <= set(names)
    report = page.request.get(url + links.nth(names.index("report.html")).get_attribute("href"))
    assert report.ok and b"COVID" in report.body()
    for escape in ("covidct-files/%2e%2e/%2e%2e/data/", "covidct-files/..%2f..%2fserver.log", "../server.log"):
        response = page.request.get(url + escape)  # nothing outside the output folders is served
        assert not (response.ok and b"serving" in response.body()), escape

    time.sleep(2)  # the views' last frames
    axial, three_d = _view(page, AXIAL), _view(page, THREE_D)
    # chroma 30 takes in the lung segments' grey-green fill (chroma about 45) as well as lesions and heatmaps; at 60
    # only lesions, heatmaps and the lesion points' labels counted, and only the 10 largest points carry a label
    assert _coloured(axial, chroma=30) > before + 2000, "no lung/lesion colours over the CT in the axial view"
    assert _coloured(three_d) > 2000, "no lesion surfaces in the 3-D view"
    assert _bluish(three_d) > 2000, "no see-through left lung around the lesions in the 3-D view"
    page.screenshot(path=str(artifacts / "2-analysis-done.png"))


def _heatmap_switch(page, model):
    return page.locator(f"#covidct-heatmap-{model} input[type=checkbox]")


def test_heatmaps_toggle_and_change_the_view(page, artifacts):
    shown = _heatmap_switch(page, "slice-resnet")
    assert shown.is_checked()  # the first heatmap is shown after an analysis
    page.locator("#covidct-heatmap-threshold .v-slider-thumb").first.focus()
    page.keyboard.press("Home")  # show heatmap values from 0.05 up
    shown.click()
    page.wait_for_function("!document.querySelector('#covidct-heatmap-slice-resnet input').checked")
    time.sleep(2)
    without = _view(page, AXIAL)
    _heatmap_switch(page, "decovnet").click()
    page.wait_for_function("document.querySelector('#covidct-heatmap-decovnet input').checked")
    time.sleep(2)
    with_map = _view(page, AXIAL)
    changed = (np.abs(with_map - without).sum(axis=2) > 60).sum()
    assert changed > 1000, f"the decovnet heatmap changed only {changed} pixels of the axial view"
    page.screenshot(path=str(artifacts / "3-heatmap-decovnet.png"))


def _stroke(page) -> None:
    """A horizontal paint stroke across the axial view's left lung."""
    box = page.locator(".layout-grid-item").nth(AXIAL).bounding_box()
    x0, y = box["x"] + box["width"] * 0.30, box["y"] + box["height"] * 0.45
    page.mouse.move(x0, y)
    page.mouse.down()
    for step in range(1, 21):
        page.mouse.move(x0 + step * box["width"] * 0.02, y)
        time.sleep(0.05)
    page.mouse.up()
    time.sleep(1)


def test_annotator_paints_a_stroke_and_saves_the_correction(page, server, artifacts):
    _, _, outputs = server
    page.click("#covidct-page-annotator")
    page.click("#covidct-use-analysis-mask")
    _message(page, "ready to correct")
    page.click("#covidct-tool-paint")
    page.wait_for_function("document.querySelector('#covidct-tool-paint').classList.contains('v-btn--active')")
    mask_file = outputs / "dataset" / "masks" / "e2e-case.nii.gz"
    image_file = outputs / "dataset" / "images" / "e2e-case.nii.gz"
    analysed = sitk.GetArrayFromImage(sitk.ReadImage(str(outputs / "runs" / "0002" / "lesions.seg.nrrd")))
    page.fill("#covidct-case-id", "e2e-case")
    # On a loaded machine the server can take the first stroke before its paint effect is active (the button shows
    # active on the client first): stroke and save up to three times; a stroke that never paints still fails.
    for attempt in range(1, 4):
        _stroke(page)
        mask_file.unlink(missing_ok=True)
        page.click("#covidct-save")
        _message(page, "correction saved")
        deadline = time.time() + STEP_S
        while not mask_file.is_file() and time.time() < deadline:
            time.sleep(0.2)
        mask = sitk.GetArrayFromImage(sitk.ReadImage(str(mask_file)))
        added = int(((mask == 1) & (analysed != 1)).sum())
        if added > 20:
            break
    page.screenshot(path=str(artifacts / "4-correction-saved.png"))

    page.click("#covidct-tool-threshold")  # the threshold effect applies too (not saved again)
    page.click("#covidct-apply-threshold")
    _message(page, "threshold applied")

    assert mask_file.is_file() and image_file.is_file()
    assert mask.shape == analysed.shape == (48, 96, 96)
    assert added > 20, f"after {attempt} strokes the painted mask added {added} ground-glass voxels"
