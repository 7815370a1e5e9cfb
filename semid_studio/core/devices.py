"""Devices and numeric precision: one reading of ``--device`` and ``--precision`` for every
step that runs torch (embedding, RQ-VAE, the generative model, SASRec, the joint model).

``--device`` is ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (the default: CUDA when torch sees
a GPU, else the CPU). ``--precision`` is ``fp32`` (the default), ``bf16`` or ``fp16``: mixed
precision by :func:`torch.autocast` for the training steps (fp16 with a gradient scaler).
"""

from __future__ import annotations

from contextlib import nullcontext

from .errors import SemidError

#: the one help text every ``--device`` option shows
DEVICE_HELP = "cpu, cuda, cuda:N or auto (default: auto = cuda when available)"
PRECISIONS = ("fp32", "bf16", "fp16")
PRECISION_HELP = "fp32 (default), bf16 or fp16: mixed precision for training steps (fp16 needs a CUDA GPU)"


def resolve_device(device: str | None):
    """``None``/"auto" -> CUDA when present, else CPU; a CUDA device torch cannot see is a
    user error (one line)."""
    import torch

    text = (device or "auto").strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        index = text[5:]
        if index and not index.isdigit():
            raise SemidError(f"unknown device '{device}'; use {DEVICE_HELP}")
        if not torch.cuda.is_available():
            raise SemidError(f"device '{device}' was asked for, but torch sees no CUDA GPU on this machine "
                             "(use cpu or auto)")
        if index and int(index) >= torch.cuda.device_count():
            raise SemidError(f"device '{device}': torch sees {torch.cuda.device_count()} CUDA GPU(s) "
                             f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
        return torch.device(text)
    raise SemidError(f"unknown device '{device}'; use {DEVICE_HELP}")


def check_precision(precision: str, device) -> None:
    """One clear line for a precision the device cannot run."""
    if precision not in PRECISIONS:
        raise SemidError(f"unknown precision '{precision}'; use {', '.join(PRECISIONS)}")
    if precision == "fp16" and getattr(device, "type", str(device)) != "cuda":
        raise SemidError("precision fp16 needs a CUDA GPU (its gradient scaling is a GPU feature); "
                         "use bf16 or fp32 on the CPU")


def autocast(device, precision: str):
    """The autocast context of ``precision`` on ``device`` (no context for fp32)."""
    import torch

    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)
