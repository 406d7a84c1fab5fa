"""Distributed training (models/distributed.py, issue 21): torchrun with two CPU processes (gloo) through
scripts/train_slice_resnet.py and the same ``fit``; each global batch shared out once; only rank 0 writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from CovidCTAnalysis.classifiers.slice_resnet.train import preprocessing_tag
from CovidCTAnalysis.models.distributed import Distributed, from_environment

REPO = Path(__file__).resolve().parents[1]


def test_a_global_batch_is_shared_out_once_over_the_processes():
    idx = np.array([3, 8, 11, 20, 21, 40, 41])
    shares = [Distributed(r, 3, r, None, "gloo").shard(idx) for r in range(3)]
    assert sorted(np.concatenate(shares).tolist()) == idx.tolist()
    assert [len(s) for s in shares] == [3, 2, 2]


def test_without_torchrun_training_stays_one_process(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    assert from_environment("cpu") is None
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert from_environment("cpu") is None  # torchrun with one process: nothing to distribute


def test_torchrun_two_cpu_processes_train_one_epoch_and_rank0_alone_writes(tmp_path):
    """A synthetic COVID-CT cache (10 squares) so that no data folder is needed; 1 epoch from scratch."""
    rng = np.random.default_rng(0)
    cache = tmp_path / "cache"
    cache.mkdir()
    squares = {f"{split}_x": rng.integers(0, 255, (n, 256, 256), dtype=np.uint8) for split, n in (("train", 6),
                                                                                                 ("val", 4))}
    np.savez(cache / f"covid-ct-{preprocessing_tag()}.npz", **squares,
             train_y=np.array([0, 1] * 3, np.float32), val_y=np.array([0, 1] * 2, np.float32),
             train_names=np.array([f"t{k}.png" for k in range(6)]), val_names=np.array([f"v{k}.png" for k in range(4)]))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(REPO / "scripts" / "train_slice_resnet.py"), "--data", str(tmp_path / "no-data"),
               "--cache", str(cache), "--out", str(out / "w.pt"), "--on", "train+val", "--pretrained", "none",
               "--epochs", "1", "--batch", "4", "--input-size", "224", "--crop", "96", "--threads", "1",
               "--device", "cpu"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["w.json", "w.pt"]  # no stray file of rank 1
    summary = json.loads((out / "w.json").read_text())
    assert summary["distributed"] == {"processes": 2, "backend": "gloo"}
    assert [e["epoch"] for e in summary["log"]] == [1] and summary["log"][0]["processes"] == 2
    assert np.isfinite(summary["log"][0]["loss"]) and summary["command"].startswith("torchrun --nproc_per_node 2")
    assert done.stdout.count('"epoch": 1') == 1, "only rank 0 prints"
    torch = pytest.importorskip("torch")
    from CovidCTAnalysis.classifiers.slice_resnet.model import build_for_state, input_size_of

    state = torch.load(out / "w.pt")
    net = build_for_state(state)
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    assert input_size_of(net) == 224
