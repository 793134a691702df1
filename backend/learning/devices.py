"""DEVICE and ENCODE_PRECISION as this machine runs them: "auto" decided here, in the ML core,
since deciding loads torch (0.35 GB and seconds), which reading the settings must not."""

from __future__ import annotations

from backend.learning import compat


def resolved_device(device: str) -> str:
    """The torch device to use: 'auto' picks CUDA when it is there."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolved_precision(precision: str, device: str) -> str:
    """The precision to encode in on `device`: 'auto' picks bf16 on a CPU that computes it natively."""
    if precision != "auto":
        return precision
    return "bf16" if resolved_device(device) == "cpu" and compat.native_bf16_cpu() else "fp32"
