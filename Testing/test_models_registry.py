"""The model registry: checksums verified, missing or altered weights refused, contract names honoured."""

from __future__ import annotations

import json

import pytest

from CovidCTAnalysis.errors import InputError, ModelUnavailableError
from CovidCTAnalysis.models.registry import ModelIntegrityError, load_registry, sha256_file


def _registry(folder, weights_bytes=b"weights", sha=None):
    (folder / "w.pt").write_bytes(weights_bytes)
    entry = {"name": "slice-resnet", "version": "0.0.1", "task": "classification", "weights": "w.pt",
             "sha256": sha or sha256_file(folder / "w.pt"), "input": {"size": [224, 224]}, "card": "card.md"}
    path = folder / "registry.json"
    path.write_text(json.dumps({"schema": 1, "models": [entry]}))
    return path


def test_shipped_registry_lists_lungs_classic():
    registry = load_registry()
    entry = registry.get("lungs-classic")
    assert entry.task == "lung-segmentation" and entry.weights is None
    assert entry.card is not None and entry.card.is_file(), "every registered model has a model card"


def test_verified_weights_ok(tmp_path):
    entry = load_registry(_registry(tmp_path)).get("slice-resnet")
    assert entry.check() == "ok"
    assert entry.verified_weights() == tmp_path / "w.pt"


def test_altered_weights_are_refused(tmp_path):
    path = _registry(tmp_path)
    (tmp_path / "w.pt").write_bytes(b"weightz")
    entry = load_registry(path).get("slice-resnet")
    assert entry.check() == "checksum mismatch"
    with pytest.raises(ModelIntegrityError, match="do not match the registry's sha256"):
        entry.verified_weights()


def test_missing_weights_are_refused(tmp_path):
    path = _registry(tmp_path)
    (tmp_path / "w.pt").unlink()
    entry = load_registry(path).get("slice-resnet")
    with pytest.raises(ModelIntegrityError, match="missing"):
        entry.load_state_dict()


def test_state_dict_round_trip(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.arange(3.0)}, tmp_path / "w.pt")
    path = _registry(tmp_path, weights_bytes=(tmp_path / "w.pt").read_bytes())
    state = load_registry(path).get("slice-resnet").load_state_dict()
    assert state["w"].tolist() == [0.0, 1.0, 2.0]


def test_contract_name_not_shipped_says_so(tmp_path):
    registry = load_registry(_registry(tmp_path))
    with pytest.raises(ModelUnavailableError, match="model decovnet is not available in this version"):
        registry.get("decovnet")
    with pytest.raises(InputError, match="unknown model"):
        registry.get("alexnet")


@pytest.mark.parametrize("text", ["{", '{"models": [{"name": "x"}]}',
                                  '{"models": [{"name": "x", "version": 1, "task": "t", "weights": "w.pt"}]}'])
def test_malformed_registry(tmp_path, text):
    path = tmp_path / "registry.json"
    path.write_text(text)
    with pytest.raises(InputError, match="malformed"):
        load_registry(path)


def test_device_choice():
    torch = pytest.importorskip("torch")
    from CovidCTAnalysis.models import select_device

    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA device"):
            select_device("cuda")


def test_models_command_fails_on_altered_weights(tmp_path):
    """`covidct models` lists the mismatch and exits 1 with one line naming the model (issue 24: it exited 0)."""
    import os
    import subprocess
    import sys

    _registry(tmp_path)
    env = dict(os.environ, COVIDCT_MODELS=str(tmp_path))
    run = subprocess.run([sys.executable, "-m", "CovidCTAnalysis", "models"], capture_output=True, text=True, env=env,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    (tmp_path / "w.pt").write_bytes(b"weightz")
    run = subprocess.run([sys.executable, "-m", "CovidCTAnalysis", "models"], capture_output=True, text=True, env=env,
                         timeout=120)
    assert run.returncode == 1
    assert "checksum mismatch" in run.stdout
    assert run.stderr.strip().splitlines() == [
        "covidct: error: weights that cannot be used: slice-resnet (checksum mismatch); reinstall or retrain them"]
