"""Device choice (docs/DESIGN.md, Models): CUDA when available and allowed, else CPU; `cpu` forces CPU."""

from __future__ import annotations

from ..errors import InputError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def select_device(preference: str = "auto"):
    """torch.device for 'auto' | 'cpu' | 'cuda'; asking for CUDA where there is none is a usage error (exit 2).

    On CPU, deterministic algorithms are requested so the same input gives the same output.
    """
    import torch

    if preference not in DEVICE_CHOICES:
        raise InputError(None, f"--device must be one of {', '.join(DEVICE_CHOICES)}, not {preference!r}")
    if preference == "cuda" and not torch.cuda.is_available():
        raise InputError(None, "--device cuda was asked for, but no CUDA device is available (use auto or cpu)")
    if preference == "cpu" or not torch.cuda.is_available():
        torch.use_deterministic_algorithms(True, warn_only=True)
        return torch.device("cpu")
    return torch.device("cuda")


def as_device(device):
    """A torch.device from a torch.device or a preference string ('auto' | 'cpu' | 'cuda', see ``select_device``)."""
    import torch

    return device if isinstance(device, torch.device) else select_device(device)


def bf16_supported(device) -> bool:
    """Whether bfloat16 autocast pays off: on CUDA, and on CPUs with native bf16 (AVX512-BF16 / AMX)."""
    if device.type == "cuda":
        return True
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            flags = f.read()
    except OSError:  # not Linux: stay in float32
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags
