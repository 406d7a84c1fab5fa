"""A user's own trained weights in place of a shipped model's: ``--weights NAME=FILE`` or ``$COVIDCT_WEIGHTS``.

Researchers retrain the project's networks on their own cohorts with the training scripts (README, "Models"); this
module lets every front end run such a file instead of the registered one without editing the registry. The
override lives in one environment variable, so the worker processes of ``covidct batch`` and the analysis process the
Slicer modules start see it too::

    COVIDCT_WEIGHTS="da-cmil=/data/my-da-cmil.pt:lesions-unet=/data/my-lesions.pt"   (os.pathsep between pairs)

``load_registry`` applies it to the entries it reads (``apply``): the entry's weights become the user's file, its
sha256 the file's own (so later loads still detect a file changed under a running analysis), its version
``<shipped>+user.<first 8 hex of the sha256>`` (what report.json, report.html and the Slicer table print), and its
calibration is dropped: a Platt curve fitted on the shipped network's validation predictions says nothing about
another network. The input specification stays the registry's: a file trained with the script's default recipe fits
it; a file trained with other input options (``--lung-focus``, another frame size) does not, and nothing in a state
dict can tell.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError

ENV = "COVIDCT_WEIGHTS"
#: what report.html says of the validation of a user's weights (the shipped weights' figures are not theirs)
USER_VALIDATION = "your own weights: not validated by this project; the model card's figures are the shipped weights'"


def parse(text: str | None) -> dict[str, Path]:
    """{model name: weights file} of the variable's text (empty or unset: {})."""
    out: dict[str, Path] = {}
    for pair in (text or "").split(os.pathsep):
        if not pair.strip():
            continue
        name, sep, path = pair.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise InputError(None, f"{ENV}: {pair!r} is not NAME=FILE")
        out[name.strip()] = Path(path.strip()).expanduser()
    return out


def from_arguments(values: list[str] | None) -> dict[str, Path]:
    """{model name: absolute weights file} of repeated ``--weights NAME=FILE`` options; a name given twice is an
    error."""
    out: dict[str, Path] = {}
    for value in values or []:
        name, sep, path = value.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise InputError(None, f"--weights takes NAME=FILE (e.g. da-cmil=my-da-cmil.pt), not {value!r}")
        name = name.strip()
        if name in out:
            raise InputError(None, f"--weights names {name} twice")
        out[name] = Path(path.strip()).expanduser().resolve()
    return out


def current() -> dict[str, Path]:
    """The overrides in force in this process."""
    return parse(os.environ.get(ENV))


def cache_key() -> str:
    """What a cache of loaded networks must key on besides the registry path and the device: each override's file
    with its size and modification time (a file retrained in place is another network)."""
    parts = []
    for name, path in sorted(current().items()):
        try:
            stat = path.stat()
            parts.append(f"{name}={path}:{stat.st_size}:{stat.st_mtime_ns}")
        except OSError:
            parts.append(f"{name}={path}")
    return "|".join(parts)


#: sha256 of a user's weights file by (path, size, modification time): every ``load_registry`` applies the overrides,
#: and re-reading a 100 MB file for each would cost more than the work that asked for the registry
_DIGESTS: dict[tuple, str] = {}


def _digest(path: Path) -> str:
    """The file's sha256, hashed again only when the file's size or modification time changed."""
    from .registry import sha256_file

    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_file(path)
    return _DIGESTS[key]


def install(overrides: dict[str, Path]) -> None:
    """Put ``overrides`` (merged over any already in force) into this process's environment, which the processes
    it starts inherit."""
    merged = {**current(), **overrides}
    if merged:
        os.environ[ENV] = os.pathsep.join(f"{name}={path}" for name, path in merged.items())


def apply(entries: dict, overrides: dict[str, Path]) -> dict:
    """``entries`` (name -> ModelEntry) with each overridden model pointing at the user's file; an unknown name, a
    model without weights or a file that is not there is refused (InputError naming it)."""
    import dataclasses

    from .registry import CONTRACT_MODELS

    out = dict(entries)
    for name, path in overrides.items():
        entry = entries.get(name)
        if entry is None:
            if name in CONTRACT_MODELS:
                raise InputError(None, f"weights given for {name}, which this version does not ship")
            raise InputError(None, f"weights given for unknown model {name!r}; known models: "
                                   f"{', '.join(sorted(entries))}")
        if entry.weights is None:
            raise InputError(path, f"{name} has no weights to replace (an algorithmic model)")
        if not path.is_file():
            raise InputError(path, f"weights for {name} not found")
        try:
            digest = _digest(path)
        except OSError as exc:
            raise InputError(path, f"weights for {name} cannot be read ({exc.strerror or exc})") from None
        out[name] = dataclasses.replace(entry, weights=path.resolve(), sha256=digest,
                                        version=f"{entry.version}+user.{digest[:8]}", calibration=None,
                                        user_weights=True, validation=USER_VALIDATION)
    return out


def check_loadable(name: str, device: str = "cpu") -> None:
    """Build ``name``'s network from the weights in force now, as a run would, so that a file that does not fit
    is refused before any work (InputError naming the file)."""
    if name == "lesions-unet":
        from ..lesions.network import load_network

        load_network(device)
    elif name == "lungs-unet":
        from ..lungs.unet import load_network

        load_network(device)
    else:
        from ..classifiers.table import load_classifier

        load_classifier(name, device)


def warnings_for(registry, names) -> list[str]:
    """One warning per model of ``names`` that runs a user's weights in ``registry`` (a loaded Registry)."""
    return [f"{name} runs your weights {entry.weights.name} (version {entry.version}), not the shipped ones: its "
            "model card's figures do not describe them, and no calibration is applied"
            for name in names for entry in [registry.entries.get(name)] if entry is not None and entry.user_weights]
