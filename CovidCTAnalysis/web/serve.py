"""``covidct serve``: start the browser app on this machine (127.0.0.1 unless told otherwise)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import InputError

WEB_EXTRA = "pip install -e '.[web]'"


def check_web_extra() -> None:
    """InputError (one line, exit 2) when the web extra is not installed."""
    missing = []
    for module in ("trame", "trame_slicer", "slicer"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module.replace("_", "-"))
    if missing:
        raise InputError(None, f"covidct serve needs the web extra ({', '.join(missing)} missing): {WEB_EXTRA}")


def serve(data_dir: Path, outputs: Path, *, host: str = "127.0.0.1", port: int = 8080, demo: bool = False,
          demo_size=(256, 256, 96),
          device: str = "auto", models: str = "all", max_upload_bytes: int | None = None,
          ready_file: Path | None = None) -> int:
    """Serve until interrupted. ``demo``: open the demo CT at start; ``ready_file``: written with the URL once the
    server listens (for scripts)."""
    if not Path(data_dir).is_dir():
        raise InputError(data_dir, "the data folder does not exist")
    check_web_extra()
    from .app import CovidCTWebApp
    from .uploads import MAX_UPLOAD_BYTES

    app = CovidCTWebApp(data_dir, outputs, demo_size=demo_size, device=device, models=models,
                        max_upload_bytes=max_upload_bytes or MAX_UPLOAD_BYTES)
    if demo:
        app.load_demo()
    url = f"http://{host}:{port}/"

    def announce(**_):
        print(f"covidct: serving {url} (data {Path(data_dir).resolve()}, outputs {Path(outputs).resolve()})",
              file=sys.stderr, flush=True)
        if ready_file is not None:
            Path(ready_file).write_text(url, encoding="utf-8")

    app.ctrl.on_server_ready.add(announce)
    argv, sys.argv = sys.argv, sys.argv[:1]  # trame reads its own options from sys.argv: give it none of ours
    try:
        app.server.start(host=host, port=port, open_browser=False, show_connection_info=False)
    finally:
        sys.argv = argv
        app.shutdown()  # no analysis outlives the server
    return 0
