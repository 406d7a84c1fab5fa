"""``covidct serve``: start the browser app on this machine (127.0.0.1 unless told otherwise).

Every option is checked before anything is created and before the (slow) web app is built: a bad one is one line and
exit status 2 (``InputError``), with no output folder left behind.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from ..errors import InputError

WEB_EXTRA = "pip install -e '.[web]'"
#: the outputs folder when --outputs is not given: ./covidct-web, allowed inside --data (the app's own folder; any
#: --outputs given must lie outside --data)
DEFAULT_OUTPUTS = "covidct-web"


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


def check_data_dir(data_dir: str | Path) -> Path:
    """The folder the page may open CTs from: it must exist and be a folder."""
    data = Path(data_dir).expanduser()
    if not data.exists():
        raise InputError(data_dir, "the data folder does not exist")
    if not data.is_dir():
        raise InputError(data_dir, "is a file; --data must be a folder")
    return data


def check_outputs(outputs: str | Path | None, data: Path) -> Path:
    """The folder the app writes into (None: ``DEFAULT_OUTPUTS`` in the current folder): not a file, creatable and
    writable (probed for real; nothing is left behind), and, when given, not the data folder nor inside it (as
    analyze and batch refuse an output inside their input)."""
    from ..io import check_output_path

    out = Path(DEFAULT_OUTPUTS if outputs is None else outputs).expanduser()
    if out.exists() and not out.is_dir():
        raise InputError(out, "is a file; --outputs must be a folder")
    check_output_path(out, [] if outputs is None else [data], expect="dir")
    return out


def check_models(models: str) -> str:
    """``--models`` as analyze reads it (unknown names and non-classifiers are refused with its message)."""
    from ..models.registry import load_registry
    from ..pipeline.analyze import selected_classifiers

    names = selected_classifiers(models, load_registry())
    return "all" if models.strip() == "all" else ",".join(names)


def check_listen(host: str, port: int) -> None:
    """The host must resolve, and each of its addresses must accept a listening socket on the port (free, allowed,
    an address of this machine). The probe sockets are closed at once; the server binds the port again."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise InputError(host, f"--host cannot be resolved to an address ({getattr(exc, 'strerror', None) or exc})") \
            from None
    for family, kind, proto, _, address in dict.fromkeys(addresses):
        try:
            probe = socket.socket(family, kind, proto)
        except OSError:  # an address family this machine lacks: the server skips it too
            continue
        with probe:
            if os.name == "posix":  # as the server's socket: a port left in TIME_WAIT can be reused
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == getattr(socket, "AF_INET6", None) and hasattr(socket, "IPPROTO_IPV6"):
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                hint = "; choose another --port (0: any free port)" if port else ""
                raise InputError(None, f"cannot listen on {host} port {port} ({exc.strerror or exc}){hint}") \
                    from None


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(data_dir: Path, outputs: Path | None, *, host: str = "127.0.0.1", port: int = 8080, demo: bool = False,
          demo_size=(256, 256, 96),
          device: str = "auto", models: str = "all", max_upload_bytes: int | None = None,
          ready_file: Path | None = None) -> int:
    """Serve until interrupted. ``demo``: open the demo CT at start; ``ready_file``: written with the URL once the
    server listens (for scripts). ``port`` 0: any free port; the URL announced and written names the one bound."""
    data = check_data_dir(data_dir)
    check_web_extra()
    out = check_outputs(outputs, data)
    models = check_models(models)
    check_listen(host, port)
    if ready_file is not None:  # written once the server listens: a path that cannot be written fails now
        from ..io import check_output_path
        from ..io.sniff import compound_suffix

        check_output_path(ready_file, [], expect="file", extensions=(compound_suffix(Path(ready_file)),))
    from .app import CovidCTWebApp
    from .uploads import MAX_UPLOAD_BYTES

    app = CovidCTWebApp(data, out, demo_size=demo_size, device=device, models=models,
                        max_upload_bytes=max_upload_bytes or MAX_UPLOAD_BYTES)
    if demo:
        app.load_demo()

    def announce(**_):
        url = _url(host, getattr(app.server, "port", 0) or port)  # the port bound (port 0 picks a free one)
        print(f"covidct: serving {url} (data {data.resolve()}, outputs {out.resolve()})", file=sys.stderr,
              flush=True)
        if ready_file is not None:
            Path(ready_file).parent.mkdir(parents=True, exist_ok=True)
            Path(ready_file).write_text(url, encoding="utf-8")

    app.ctrl.on_server_ready.add(announce)
    argv, sys.argv = sys.argv, sys.argv[:1]  # trame reads its own options from sys.argv: give it none of ours
    try:
        app.server.start(host=host, port=port, open_browser=False, show_connection_info=False)
    finally:
        sys.argv = argv
        app.shutdown()  # no analysis outlives the server
    return 0
