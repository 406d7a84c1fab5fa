"""A user's own trained weights in place of a shipped model's (models/user_weights.py): ``--weights NAME=FILE`` and
$COVIDCT_WEIGHTS, what the registry then says, and files that are refused with one line naming them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from CovidCTAnalysis.errors import InputError
from CovidCTAnalysis.models import load_registry, user_weights
from CovidCTAnalysis.models.registry import sha256_file


def needs(model: str) -> None:
    if model not in load_registry().entries:
        pytest.skip(f"{model} is not registered in this checkout")


def retrained(model: str, folder: Path, scale: float = 1.5) -> Path:
    """A copy of ``model``'s shipped weights with every floating tensor of its first layer scaled: a file of the same
    architecture that is not the shipped one (what the training scripts write, for the purpose of these tests)."""
    state = torch.load(load_registry().get(model).weights, weights_only=True)
    first = next(k for k, v in state.items() if v.is_floating_point() and v.dim() > 1)
    state[first] = state[first] * scale
    path = folder / f"my-{model}.pt"
    torch.save(state, path)
    return path


def test_arguments_and_variable_are_parsed_and_bad_forms_refused(tmp_path):
    got = user_weights.from_arguments(["da-cmil=my.pt"])
    assert got == {"da-cmil": (Path.cwd() / "my.pt").resolve()}
    for bad in (["da-cmil"], ["=my.pt"], ["da-cmil="], ["da-cmil=a.pt", "da-cmil=b.pt"]):
        with pytest.raises(InputError):
            user_weights.from_arguments(bad)
    sep = os.pathsep
    assert user_weights.parse(f"a=/x/1.pt{sep}b=/y/2.pt") == {"a": Path("/x/1.pt"), "b": Path("/y/2.pt")}
    assert user_weights.parse("") == {}
    with pytest.raises(InputError, match="COVIDCT_WEIGHTS"):
        user_weights.parse("just-a-path.pt")


def test_registry_entry_points_at_the_users_file(tmp_path, monkeypatch):
    needs("decovnet")
    mine = retrained("decovnet", tmp_path)
    shipped = load_registry().get("decovnet")
    monkeypatch.setenv(user_weights.ENV, f"decovnet={mine}")
    entry = load_registry().get("decovnet")
    assert entry.user_weights and entry.weights == mine.resolve()
    digest = sha256_file(mine)
    assert entry.sha256 == digest != shipped.sha256
    assert entry.version == f"{shipped.version}+user.{digest[:8]}"
    assert entry.calibration is None  # a curve fitted on the shipped network says nothing about this one
    assert entry.validation == user_weights.USER_VALIDATION != shipped.validation  # nor do the card's figures
    assert load_registry().get("slice-resnet").user_weights is False  # the others untouched


def test_users_file_is_hashed_once_until_it_changes(tmp_path, monkeypatch):
    needs("decovnet")
    mine = retrained("decovnet", tmp_path)
    monkeypatch.setenv(user_weights.ENV, f"decovnet={mine}")
    hashed = []
    monkeypatch.setattr("CovidCTAnalysis.models.registry.sha256_file", lambda p: hashed.append(p) or sha256_file(p))
    first = load_registry().get("decovnet").sha256
    assert load_registry().get("decovnet").sha256 == first
    assert len(hashed) == 1  # two registries, one read of the file
    retrained("decovnet", tmp_path, scale=2.0)  # retrained in place: same size, so the modification time must tell
    stat = mine.stat()
    os.utime(mine, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    again = load_registry().get("decovnet")
    assert again.sha256 == sha256_file(mine) != first
    assert again.check() == "ok"


@pytest.mark.parametrize("override, words", [
    ("no-such-model={file}", "unknown model"),
    ("lungs-classic={file}", "no weights to replace"),
    ("decovnet={missing}", "not found"),
])
def test_bad_overrides_are_refused_by_name(override, words, tmp_path, monkeypatch):
    needs("decovnet")
    file = retrained("decovnet", tmp_path)
    monkeypatch.setenv(user_weights.ENV, override.format(file=file, missing=tmp_path / "absent.pt"))
    with pytest.raises(InputError, match=words):
        load_registry()


def one_tensor_short(model: str, folder: Path) -> Path:
    """``model``'s shipped weights without their first tensor: a file that does not fit the network."""
    state = torch.load(load_registry().get(model).weights, weights_only=True)
    state.pop(next(iter(state)))
    path = folder / "short.pt"
    torch.save(state, path)
    return path


def test_a_file_that_does_not_fit_is_refused_naming_it(tmp_path, monkeypatch):
    needs("decovnet")
    short = one_tensor_short("decovnet", tmp_path)
    monkeypatch.setenv(user_weights.ENV, f"decovnet={short}")
    with pytest.raises(InputError) as err:
        user_weights.check_loadable("decovnet")
    assert err.value.path == str(short.resolve()) and "1 tensors missing" in err.value.problem

    junk = tmp_path / "notes.pt"
    junk.write_text("not weights")
    monkeypatch.setenv(user_weights.ENV, f"decovnet={junk}")
    with pytest.raises(InputError) as err:
        user_weights.check_loadable("decovnet")
    assert err.value.path == str(junk.resolve()) and "not a weights file" in err.value.problem


@pytest.mark.parametrize("model", ["decovnet", "cvae-netvlad"])
def test_loaded_networks_follow_the_override(model, tmp_path, monkeypatch):
    """The loaders cache networks per registry and device; a user's file is another network, not the cached one."""
    needs(model)
    from CovidCTAnalysis.classifiers.table import load_classifier

    monkeypatch.delenv(user_weights.ENV, raising=False)
    shipped = load_classifier(model, "cpu").model
    monkeypatch.setenv(user_weights.ENV, f"{model}={retrained(model, tmp_path)}")
    mine = load_classifier(model, "cpu").model
    assert mine is not shipped and mine.version.startswith(load_registry().get(model).version.split("+")[0])
    assert "+user." in mine.version
    differs = [not torch.equal(a, b) for a, b in zip(shipped.net.state_dict().values(), mine.net.state_dict().values())]
    assert any(differs)
    monkeypatch.delenv(user_weights.ENV)
    assert load_classifier(model, "cpu").model is shipped  # back to the shipped one


def covidct(*args, env=None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "CovidCTAnalysis", *map(str, args)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def small_ct(tmp_path_factory) -> Path:
    import SimpleITK as sitk

    from CovidCTAnalysis.demo import make_demo_ct

    path = tmp_path_factory.mktemp("user-weights") / "small-ct.nii.gz"
    sitk.WriteImage(sitk.Cast(make_demo_ct(size=(96, 96, 40), seed=3).image, sitk.sitkInt16), str(path))
    return path


def test_analyze_with_a_users_weights_says_so(small_ct, tmp_path):
    needs("decovnet")
    mine = retrained("decovnet", tmp_path)
    out = tmp_path / "out"
    proc = covidct("analyze", small_ct, "-o", out, "--models", "decovnet", "--weights", f"decovnet={mine}",
                   "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["models"]["decovnet"].endswith(f"+user.{sha256_file(mine)[:8]}")
    assert report["user_weights"] == {"decovnet": sha256_file(mine)}
    assert any(w.startswith("decovnet runs your weights my-decovnet.pt (version ") for w in report["warnings"])
    assert "probability_raw" not in report["classifiers"]["decovnet"] or \
        report["classifiers"]["decovnet"]["probability"] == report["classifiers"]["decovnet"]["probability_raw"]
    assert "my-decovnet.pt" in proc.stderr  # the warning on stderr too
    assert report["consensus"]["validation"] == f"includes {user_weights.USER_VALIDATION}"


def test_a_file_that_does_not_fit_stops_before_any_work(small_ct, tmp_path):
    needs("decovnet")
    short = one_tensor_short("decovnet", tmp_path)
    out = tmp_path / "out"
    proc = covidct("analyze", small_ct, "-o", out, "--models", "decovnet", "--weights", f"decovnet={short}")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(short) in lines[0] and "do not fit" in lines[0], proc.stderr
    assert not out.exists()  # nothing written


def test_a_file_for_a_model_the_command_does_not_run_only_warns(small_ct, tmp_path, capsys):
    """segment-lungs does not run decovnet: a decovnet file that does not fit is named in a warning, and the lungs
    are segmented all the same."""
    needs("decovnet")
    from CovidCTAnalysis.cli import main

    short, out = one_tensor_short("decovnet", tmp_path), tmp_path / "lungs.nii.gz"
    assert main(["segment-lungs", str(small_ct), "-o", str(out), "--weights", f"decovnet={short}"]) == 0
    assert "weights given for decovnet, which `covidct segment-lungs` does not run here" in capsys.readouterr().err
    assert out.exists()


def test_batch_on_a_cluster_refuses_weights_it_cannot_hand_to_the_workers(small_ct, tmp_path):
    needs("decovnet")
    out = tmp_path / "cohort"
    proc = covidct("batch", small_ct, "-o", out, "--scheduler", "tcp://127.0.0.1:9", "--weights",
                   f"decovnet={retrained('decovnet', tmp_path)}")
    assert proc.returncode == 2 and "COVIDCT_WEIGHTS" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_a_training_checkpoint_is_refused_as_no_state_dict(tmp_path, monkeypatch):
    """{"epoch": ..., "state_dict": {...}} loads with weights_only and is a dict, but holds no state dict itself."""
    needs("decovnet")
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save({"epoch": 3, "state_dict": torch.load(load_registry().get("decovnet").weights, weights_only=True)},
               checkpoint)
    monkeypatch.setenv(user_weights.ENV, f"decovnet={checkpoint}")
    with pytest.raises(InputError) as err:
        user_weights.check_loadable("decovnet")
    assert err.value.path == str(checkpoint.resolve()) and "training checkpoint" in err.value.problem


def test_the_variable_alone_is_checked_and_said_and_options_do_not_outlive_the_call(tmp_path, monkeypatch, capsys):
    """COVIDCT_WEIGHTS without --weights: checked before work and named on stderr; --weights of one in-process
    main() call is gone after it."""
    needs("decovnet")
    from CovidCTAnalysis.cli import main

    short, mine = one_tensor_short("decovnet", tmp_path), retrained("decovnet", tmp_path)  # from the shipped file
    monkeypatch.setenv(user_weights.ENV, f"decovnet={short}")
    assert main(["models"]) == 2 and "do not fit" in capsys.readouterr().err
    monkeypatch.setenv(user_weights.ENV, f"decovnet={mine}")
    assert main(["classify", "--model", "decovnet", str(tmp_path / "absent.nii.gz"), "-o",
                 str(tmp_path / "p.csv")]) == 2
    assert "decovnet runs your weights my-decovnet.pt" in capsys.readouterr().err
    monkeypatch.delenv(user_weights.ENV)
    assert main(["models", "--weights", f"decovnet={mine}"]) == 0
    assert "+user." in capsys.readouterr().out
    assert user_weights.ENV not in os.environ


def test_the_lung_model_a_command_runs_first_counts_as_run():
    """segment-lesions and a classifier that needs lungs run the default lung model first: weights given for it are
    used there, not reported as weights the command does not run."""
    from argparse import Namespace

    from CovidCTAnalysis.cli import _models_run_by
    from CovidCTAnalysis.lungs.select import DEFAULT_LUNG_MODEL
    from CovidCTAnalysis.pipeline.classifiers import needs_lungs

    assert _models_run_by(Namespace(command="segment-lesions", model=None)) == {"lesions-unet", DEFAULT_LUNG_MODEL}
    assert needs_lungs("slice-resnet")
    assert _models_run_by(Namespace(command="classify", model="slice-resnet")) == {"slice-resnet", DEFAULT_LUNG_MODEL}
    assert _models_run_by(Namespace(command="classify", model="no-such-model")) == {"no-such-model"}
    # da-cmil finds a picture's lungs itself, with lungs-unet: weights given for it may be used too
    assert _models_run_by(Namespace(command="classify", model="da-cmil")) == {"da-cmil", DEFAULT_LUNG_MODEL,
                                                                             "lungs-unet"}
    assert _models_run_by(Namespace(command="segment-lungs", model=None)) == {DEFAULT_LUNG_MODEL}
    assert _models_run_by(Namespace(command="analyze")) is None
