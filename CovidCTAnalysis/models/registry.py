"""The model registry: Resources/Models/registry.json.

Each entry names a model of docs/CONTRACTS.md, its version, task, weights file (relative to the registry's folder, or null
for an algorithmic model without weights), the weights' sha256, the input specification and the model card.
Classifiers add what a front end shows about them (optional for other models): ``title``, ``paper`` (the reference
their subpackage implements) and ``explanation`` (the kind of map they explain a result with). Loading
weights verifies the checksum first and refuses a missing or altered file with a one-line message; nothing is ever
downloaded. A user's own trained weights replace an entry's for one run through ``models/user_weights.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, ModelUnavailableError

#: Every model name docs/CONTRACTS.md reserves, whether or not this version ships it.
CONTRACT_MODELS = {
    "slice-resnet": "classification",
    "decovnet": "classification",
    "da-cmil": "classification",
    "lobe-patch": "classification",
    "cvae-netvlad": "classification",
    "lungs-classic": "lung-segmentation",
    "lungs-unet": "lung-segmentation",
    "lesions-unet": "lesion-segmentation",
}


def default_registry_path() -> Path:
    """Resources/Models/registry.json of this checkout, or $COVIDCT_MODELS/registry.json when set."""
    env = os.environ.get("COVIDCT_MODELS")
    folder = Path(env) if env else Path(__file__).resolve().parents[2] / "Resources" / "Models"
    return folder / "registry.json"


class ModelIntegrityError(InputError):
    """Weights missing or not matching the registry's sha256."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class ModelEntry:
    name: str
    version: str
    task: str
    weights: Path | None
    sha256: str | None
    input: dict[str, Any] = field(default_factory=dict)
    card: Path | None = None
    title: str | None = None
    paper: str | None = None
    explanation: str | None = None
    #: how far the shipped weights were validated, in one or two sentences (the model card has the numbers' sources)
    validation: str | None = None
    #: Platt or temperature scaling fitted on validation predictions (models/calibration.py); None: uncalibrated
    calibration: dict[str, Any] | None = None
    #: the weights are a user's own file given by ``--weights`` / $COVIDCT_WEIGHTS (models/user_weights.py)
    user_weights: bool = False

    def check(self) -> str:
        """'ok', 'no weights needed', 'missing' or 'checksum mismatch' (does not raise)."""
        if self.weights is None:
            return "no weights needed"
        if not self.weights.is_file():
            return "missing"
        return "ok" if sha256_file(self.weights) == self.sha256 else "checksum mismatch"

    def verified_weights(self) -> Path:
        """The weights file after its sha256 matched the registry; raises ModelIntegrityError otherwise."""
        if self.weights is None:
            raise ModelIntegrityError(None, f"model {self.name} has no weights file")
        state = self.check()
        if state == "missing":
            raise ModelIntegrityError(self.weights, f"weights of model {self.name} are missing; reinstall or retrain")
        if state != "ok":
            raise ModelIntegrityError(
                self.weights, f"weights of model {self.name} do not match the registry's sha256 (altered or corrupt)"
            )
        return self.weights

    def load_state_dict(self, device: Any = "cpu") -> dict:
        """Verified weights loaded with torch (weights_only: no code from the file is executed)."""
        import torch

        path = self.verified_weights()
        try:
            state = torch.load(path, map_location=device, weights_only=True)
        except Exception as exc:  # noqa: BLE001 -- torch raises many kinds on a file that is not one of its own
            if not self.user_weights:  # the shipped file matched its sha256: not bad input
                raise
            raise ModelIntegrityError(path, f"not a weights file of {self.name}: torch cannot read it as a state dict "
                                            f"({type(exc).__name__})") from None
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            what = type(state).__name__ if not isinstance(state, dict) else "dict with other values than tensors"
            raise ModelIntegrityError(path, f"not a weights file of {self.name}: it holds a {what} (a training "
                                            "checkpoint?), not a state dict")
        return state


#: The consensus's disagreement threshold when the registry states none (see Registry.consensus).
DEFAULT_DISAGREEMENT = 0.5


@dataclass(frozen=True)
class Registry:
    path: Path
    entries: dict[str, ModelEntry]
    #: {"disagreement_threshold": float, "chosen_on": str, "validation": {"models": [...], "text": str}}: the spread
    #: of the classifiers' calibrated probabilities above which the consensus flags a disagreement, the data it was
    #: chosen on, and how far the consensus of which classifiers was validated (Resources/Models/cards/consensus.md)
    consensus: dict[str, Any] = field(default_factory=dict)

    @property
    def disagreement_threshold(self) -> float:
        return float(self.consensus.get("disagreement_threshold", DEFAULT_DISAGREEMENT))

    def get(self, name: str) -> ModelEntry:
        """The registered model; ModelUnavailableError (exit 2) for a name this version does not ship."""
        try:
            return self.entries[name]
        except KeyError:
            if name in CONTRACT_MODELS:
                raise ModelUnavailableError(name) from None
            known = ", ".join(sorted(CONTRACT_MODELS))
            raise InputError(None, f"unknown model {name!r}; known models: {known}") from None

    def available(self, task: str) -> list[str]:
        return [e.name for e in self.entries.values() if e.task == task]


def load_registry(path: str | Path | None = None) -> Registry:
    """Read and validate the registry JSON."""
    path = Path(path) if path else default_registry_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = {}
        for raw in data["models"]:
            folder = path.parent
            weights = folder / raw["weights"] if raw.get("weights") else None
            if weights is not None and not raw.get("sha256"):
                raise ValueError(f"model {raw['name']} lists weights but no sha256")
            entries[raw["name"]] = ModelEntry(
                name=raw["name"],
                version=str(raw["version"]),
                task=raw["task"],
                weights=weights,
                sha256=raw.get("sha256"),
                input=raw.get("input", {}),
                card=folder / raw["card"] if raw.get("card") else None,
                title=raw.get("title"),
                paper=raw.get("paper"),
                explanation=raw.get("explanation"),
                validation=raw.get("validation"),
                calibration=raw.get("calibration"),
            )
        consensus = data.get("consensus", {})
    except FileNotFoundError:
        raise InputError(path, "model registry not found") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(path, f"model registry is malformed ({exc})") from None
    from . import user_weights

    return Registry(path=path, entries=user_weights.apply(entries, user_weights.current()), consensus=consensus)
