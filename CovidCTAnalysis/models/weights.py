"""Weights files of the project's networks: float16 state dicts on disk, float32 networks in memory.

Every trained network is stored as a float16 state dict (half the bytes; weights files stay in the repository's
history forever) and cast back to float32 when loaded. Registered weights are read through the registry, which
verifies their sha256; an explicit file (training, fine-tuning, evaluation of a candidate) is read as given.

``registered_network`` is the path from a model name to a network in eval mode (lungs-unet, lesions-unet, most
classifiers). A file may hold two networks that share parts (``merged_states``: da-cmil's patch and slice-bag
networks, lobe-patch's figure and volume networks); those models read it with ``load_state`` and ``split_states``
and build each network with ``network_from_state``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable

from ..errors import InputError


def half_state(net) -> dict:
    """``net``'s state dict as stored: on the CPU, contiguous, floating tensors in float16."""
    return {k: (v.detach().cpu().contiguous().half() if v.is_floating_point() else v.detach().cpu().contiguous())
            for k, v in net.state_dict().items()}


def save_half(net, path: Path) -> None:
    """Write ``net``'s state dict with floating tensors in float16 (``half_state``)."""
    import torch

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(half_state(net), path)


def load_state(model_name: str, registry=None, weights: Path | None = None) -> dict:
    """State dict (CPU, as stored) of the registered ``model_name``, or of the file ``weights`` when given.

    ``registry``: a loaded Registry, a registry.json path, or None for the default registry.
    """
    import torch

    if weights is not None:
        return torch.load(weights, map_location="cpu", weights_only=True)
    from .registry import Registry, load_registry

    reg = registry if isinstance(registry, Registry) else load_registry(registry)
    return reg.get(model_name).load_state_dict("cpu")


def merged_states(first: dict, second: dict, prefix: str) -> dict:
    """One weights file of two networks that share parts (e.g. a frozen encoder): ``first``'s keys as they are
    (any of its own keys under ``prefix`` dropped, so a merged file can start a new merge), then those of ``second``
    that differ from ``first``'s under ``prefix``; the shared tensors are stored once. ``split_states`` undoes it."""
    import torch

    base = {k: v for k, v in first.items() if not k.startswith(prefix)}
    return {**base, **{prefix + k: v for k, v in second.items() if k not in base or not torch.equal(v, base[k])}}


def split_states(state: dict, prefix: str) -> tuple[dict, dict]:
    """(first, second) state dicts of a ``merged_states`` file; the second is empty for a file of one network."""
    n = len(prefix)
    first = {k: v for k, v in state.items() if not k.startswith(prefix)}
    own = {k[n:]: v for k, v in state.items() if k.startswith(prefix)}
    return first, ({**first, **own} if own else {})


def float_state(state: dict) -> dict:
    """A stored (float16) state dict with its floating tensors cast to float32, ready to load into a network."""
    return {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}


def network_from_state(build: Callable[[], object], state: dict, device="cpu", source: Path | None = None):
    """``build()`` with ``state`` loaded (``float_state``), in eval mode on ``device``. ``source``: the file the state
    came from; when given, a state that does not fit the network (a user's file of another architecture) is refused
    as bad input naming it instead of failing inside torch."""
    try:
        net = build()
    except (KeyError, ValueError, IndexError, AttributeError) as exc:  # a builder that reads the architecture
        if source is None:
            raise
        raise InputError(source, f"these weights do not fit any network of this model ({exc})") from None
    try:
        net.load_state_dict(float_state(state))
    except (RuntimeError, AttributeError, TypeError):  # AttributeError: a value that is not a tensor
        if source is None:
            raise
        raise InputError(source, f"these weights do not fit the network: {_misfit(net.state_dict(), state)}") from None
    return net.to(device).eval()


def _misfit(expected: dict, state: dict) -> str:
    """How ``state`` differs from the network's own state dict ``expected``, in a few words."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [k for k in expected if k in state and tuple(expected[k].shape) != tuple(state[k].shape)]
    parts = [f"{len(v)} {what} (first {v[0]})" for what, v in
             (("tensors missing", missing), ("unknown tensors", unexpected), ("tensors of another shape", shapes))
             if v]
    return "; ".join(parts) or "tensors of another kind"


def registered_source(model_name: str, registry=None) -> Path | None:
    """The weights file of the registered ``model_name`` (for ``network_from_state``'s ``source``)."""
    from .registry import Registry, load_registry

    reg = registry if isinstance(registry, Registry) else load_registry(registry)
    return reg.get(model_name).weights


def registered_network(model_name: str, build: Callable[[dict], Any], device="cpu", registry=None,
                       weights: Path | None = None):
    """Network of the registered ``model_name`` (or of the file ``weights``), float32, eval mode, on ``device``.

    ``build(state)`` returns the untrained architecture; it sees the state dict, so a model whose architecture
    follows from its weights (a backbone choice) builds the matching one. ``registry`` as in ``load_state``.
    """
    state = load_state(model_name, registry, weights)
    source = weights if weights is not None else registered_source(model_name, registry)
    return network_from_state(lambda: build(state), state, device, source)


def cached_loader(load: Callable[[str, str | None], Any]) -> Callable[..., Any]:
    """``load_model(device="cpu", registry=None)`` for a classifier whose ``load(device, registry)`` builds its loaded
    model: ``device`` any torch device spelling, ``registry`` a registry.json path or a loaded Registry (None: the
    default); each (device, registry) is loaded once and kept (at most 4)."""
    @functools.lru_cache(maxsize=4)
    def cached(device: str, registry: str | None, overrides: str):  # a user's weights are another model
        return load(device, registry)

    @functools.wraps(load)
    def load_model(device: Any = "cpu", registry: Any = None):
        import torch

        from .user_weights import cache_key

        registry = getattr(registry, "path", registry)
        return cached(str(torch.device(device)), str(registry) if registry else None, cache_key())

    return load_model
