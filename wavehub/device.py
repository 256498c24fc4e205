"""Device and precision choice: CUDA when present, and bf16 on CPU only where the CPU is fast at it."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import torch

from .constants import DTYPE_NAMES
from .errors import ArgumentError, DeviceError, SpecError

__all__ = [
    "resolve_device",
    "parse_dtype",
    "autocast_dtype",
    "cpu_has_fast_bf16",
    "matmul_dtype",
    "MODEL_DTYPES",
    "STORAGE_DTYPES",
    "available_memory",
    "check_memory",
]

_DTYPE_NAMES = {k: getattr(torch, v) for k, v in DTYPE_NAMES.items()}
MODEL_DTYPES = (
    torch.float32,
    torch.float16,
    torch.bfloat16,
    torch.float64,
)  # what a materialized model may be
STORAGE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)  # what a learngene's tensors are stored in


def parse_dtype(
    dtype: str | torch.dtype | None, *, allowed: tuple[torch.dtype, ...] = MODEL_DTYPES, what: str = "dtype"
) -> torch.dtype | None:
    """``"bf16"``, ``"float32"``, ``"torch.float16"`` or a ``torch.dtype`` -> that dtype (None stays None).

    The one table of dtype names. Anything else (an unknown name, a number, an integer dtype) is an
    ArgumentError (``argument`` = ``what``) naming the accepted values, instead of a KeyError here or a
    NotImplementedError from inside torch later."""
    if dtype is None:
        return None
    dt = None
    if isinstance(dtype, torch.dtype):
        dt = dtype
    elif isinstance(dtype, str):
        dt = _DTYPE_NAMES.get(dtype.strip().lower().removeprefix("torch."))
    if dt is None or dt not in allowed:
        names = ", ".join(
            k for k, v in _DTYPE_NAMES.items() if v in allowed and k.startswith(("float", "bf"))
        )
        raise ArgumentError(
            f"{what}={dtype!r} is not a supported floating-point dtype", f"Use one of {names}.", argument=what
        )
    return dt


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/``"auto"`` -> CUDA if available else CPU; an unavailable or malformed device -> DeviceError."""
    if device is None or (isinstance(device, str) and device.lower() == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise DeviceError(
            f"device={device!r} is not a device", "Use 'cpu', 'cuda', 'cuda:1' or 'auto'.", argument="device"
        ) from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device={str(device)!r} was asked for but CUDA is not available on this machine",
                argument="device",
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(
                f"{dev} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)",
                argument="device",
            )
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise DeviceError("device='mps' was asked for but MPS is not available", argument="device")
    elif dev.type != "cpu":
        raise DeviceError(
            f"device type {dev.type!r} is not supported", "Use 'cpu' or 'cuda'.", argument="device"
        )
    return dev


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """Whether bf16 matmul beats fp32 on this CPU, decided from torch's dispatch level and the CPU flags.

    AMX and AVX512-BF16 run bf16 GEMMs faster than fp32, while AVX2-only CPUs run them far slower (see
    benchmarks/README.md). No timing: a timed probe misjudges a loaded machine and would make precision (and results) vary by load."""
    cap = torch.backends.cpu.get_cpu_capability().upper()
    if "AMX" in cap:
        return True
    if "AVX512" not in cap:
        return False
    try:
        flags = open("/proc/cpuinfo").read().split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def autocast_dtype(device: torch.device | str, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for training on ``device`` (None = plain fp32)."""
    precision = (precision or "auto").lower()
    if precision in ("fp32", "float32", "bf16", "bfloat16", "fp16", "float16"):
        dt = _DTYPE_NAMES[precision]
        return None if dt is torch.float32 else dt
    if precision != "auto":
        raise ArgumentError(
            f"precision={precision!r} is not a supported precision",
            "Use auto, fp32, bf16 or fp16.",
            argument="precision",
        )
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if dev.type == "cpu" and cpu_has_fast_bf16() else None


def matmul_dtype(dtype: torch.dtype, device: torch.device | str | None) -> torch.dtype:
    """The dtype to run composition GEMMs in when the result is wanted in ``dtype`` on ``device``.

    On a CPU: fp32 for every low-precision result, then one rounding on the final copy. CPUs have no fast fp16
    GEMM, and a bf16 GEMM, fast only with AMX / AVX512-BF16, would round the inputs too, so the same request
    would give different weights on different CPUs."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type != "cpu" or dtype in (torch.float32, torch.float64):
        return dtype
    return torch.float32


def available_memory(device: torch.device | str) -> int | None:
    """Bytes that can be allocated on ``device`` now: CUDA's free memory, Linux's MemAvailable; None if unknown."""
    dev = torch.device(device)
    if dev.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(dev)[0])
        except Exception:  # noqa: BLE001 - no driver answer: do not guess
            return None
    if dev.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_memory(
    spec: Any,
    dtype: torch.dtype | None,
    device: torch.device | str,
    *,
    training: bool = False,
    available: int | None = None,
) -> None:
    """Refuse, before anything is allocated, a model whose weights (and, when ``training``, their fp32 gradients
    and a working copy) do not fit in the memory ``device`` has available; the error names sizes that fit."""
    per_param = 12 if training else (dtype or torch.float32).itemsize
    n = spec.param_count()
    need = n * per_param
    avail = available_memory(device) if available is None else available
    if avail is None or need <= avail:
        return
    budget = avail // per_param
    one, two = (dataclasses.replace(spec, depth=d).param_count() for d in (1, 2))
    max_depth = (budget - (one - (two - one))) // (two - one)
    lo, hi = (
        0,
        max(1, spec.width // 64),
    )  # widths in steps of 64 (every template size wavehub ships divides it)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        ok = dataclasses.replace(spec, width=64 * mid, num_heads=1).param_count() <= budget
        lo, hi = (mid, hi) if ok else (lo, mid - 1)
    fits = []
    if max_depth >= 1:
        fits.append(f"depth={max_depth} at width={spec.width}")
    if lo >= 1:
        fits.append(f"width={64 * lo} at depth={spec.depth}")
    what = "weights, gradients and a working copy" if training else f"{(dtype or torch.float32)} weights"
    raise SpecError(
        f"depth={spec.depth}, width={spec.width} has {n:.3g} parameters: {need / 1e9:.1f} GB of {what}, but "
        f"{torch.device(device)} has {avail / 1e9:.1f} GB available",
        f"Ask for at most {budget:.3g} parameters"
        + (f", e.g. {' or '.join(fits)}" if fits else "")
        + (", or a smaller dtype" if not training and per_param > 2 else "")
        + ".",
    )
