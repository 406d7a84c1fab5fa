"""`covidct serve` refuses bad usage with one line and exit status 2, before any server starts."""

from __future__ import annotations

import subprocess
import sys

from conftest import covidct


def test_a_missing_data_folder_is_refused(tmp_path):
    proc = covidct("serve", "--data", tmp_path / "missing", "--outputs", tmp_path / "out", "--port", "0")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().endswith("the data folder does not exist") and len(proc.stderr.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_bad_port_is_a_usage_error(tmp_path):
    proc = covidct("serve", "--port", "http", "--data", tmp_path)
    assert proc.returncode == 2 and "is not a port number" in proc.stderr and "Traceback" not in proc.stderr


def test_without_the_web_extra_serve_says_what_to_install(tmp_path):
    code = ("import sys; sys.modules['trame'] = sys.modules['trame_slicer'] = None; "
            "from CovidCTAnalysis.cli import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", code, "serve", "--data", str(tmp_path), "--outputs",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "needs the web extra" in proc.stderr and "pip install -e '.[web]'" in proc.stderr


def test_the_server_listens_on_this_machine_only_unless_told():
    from CovidCTAnalysis.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.demo) == ("127.0.0.1", 8080, False)
