"""The extension's screenshot (CMakeLists.txt EXTENSION_SCREENSHOTURLS): the four views after Analyze on the demo CT.

    python scripts/extension_screenshot.py -o Resources/Screenshots/analyze.png

Starts `covidct serve --demo` (the README's web command, on a free local port), opens it in headless Chromium
(Playwright, the test extra), clicks Analyze, waits for the result and saves the four views: Slicer's MRML slice
and 3-D views, set up by the same scene logic as the Analyze module's (``mrml.views.show_analysis``: slice views
through the largest lesion, see-through lungs around the lesions in 3-D); the web app's side panel is left out.
Needs the web and test extras and a Chromium executable ($COVIDCT_CHROMIUM or on PATH).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WAIT_S = 600  # the analysis of the demo CT on a 2-core machine takes about a minute


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--out", type=Path, required=True, help="the PNG to write")
    p.add_argument("--demo-size", default="256,256,64")
    a = p.parse_args(argv)
    from PIL import Image
    from playwright import sync_api

    chromium = os.environ.get("COVIDCT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        p.error("no Chromium executable (set COVIDCT_CHROMIUM)")
    with tempfile.TemporaryDirectory() as tmp:
        root, port = Path(tmp), _free_port()
        (root / "data").mkdir()
        ready = root / "ready"
        server = subprocess.Popen(
            [sys.executable, "-m", "CovidCTAnalysis", "serve", "--demo", "--demo-size", a.demo_size, "--port",
             str(port), "--data", str(root / "data"), "--outputs", str(root / "outputs"), "--ready-file", str(ready)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + WAIT_S
            while not ready.is_file():
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the server stopped before it was ready" if server.poll() is not None
                                     else f"the server was not ready in {WAIT_S} s")
                time.sleep(0.2)
            with sync_api.sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1440, "height": 960})
                page.set_default_timeout(WAIT_S * 1000)
                page.goto(f"http://127.0.0.1:{port}/")
                page.wait_for_selector("#covidct-analyze")
                page.click("#covidct-analyze")
                page.wait_for_function("document.querySelector('#covidct-message').innerText.match(/finished|failed/)")
                if "finished" not in page.inner_text("#covidct-message"):
                    raise SystemExit(f"the analysis failed: {page.inner_text('#covidct-message')}")
                time.sleep(3)  # the views' last frames
                boxes = [page.locator(".layout-grid-item").nth(i).bounding_box() for i in range(4)]
                left, top = min(b["x"] for b in boxes), min(b["y"] for b in boxes)
                bottom = max(b["y"] + b["height"] for b in boxes)
                footer = page.locator("footer").first.bounding_box() if page.locator("footer").count() else None
                if footer:  # the page's footer lies over the views' lower edge
                    bottom = min(bottom, footer["y"])
                clip = {"x": left, "y": top, "width": max(b["x"] + b["width"] for b in boxes) - left,
                        "height": bottom - top}
                a.out.parent.mkdir(parents=True, exist_ok=True)
                partial = a.out.with_name(a.out.name + ".partial.png")
                page.screenshot(path=str(partial), clip=clip)
                browser.close()
            # a 256-colour palette keeps the committed file small; the views lose nothing a catalogue shows
            Image.open(partial).convert("RGB").quantize(256).save(partial, optimize=True)
            os.replace(partial, a.out)
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=30)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
