"""Device and precision choice: CUDA when present, and bf16 on CPU only where the CPU is fast at it."""

from __future__ import annotations

import functools

import torch

from .errors import DeviceError

__all__ = ["resolve_device", "autocast_dtype", "cpu_has_fast_bf16", "matmul_dtype"]


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/``"auto"`` -> CUDA if available else CPU; an unavailable or malformed device -> DeviceError."""
    if device is None or (isinstance(device, str) and device.lower() == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceError(f"{device!r} is not a device", "Use 'cpu', 'cuda', 'cuda:1' or 'auto'.") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError("device='cuda' was asked for but CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"{dev} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise DeviceError("device='mps' was asked for but MPS is not available")
    elif dev.type != "cpu":
        raise DeviceError(f"device type {dev.type!r} is not supported", "Use 'cpu' or 'cuda'.")
    return dev


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """Whether bf16 matmul beats fp32 on this CPU, decided from torch's dispatch level and the CPU flags.

    The CPU model varies between machines: AMX and AVX512-BF16 run bf16 GEMMs about 2x faster than fp32
    (measured: 437 vs 186 GFLOPS on an AVX512-BF16 EPYC), while on AVX2-only CPUs bf16 ran 7-90x *slower*.
    No timing: a timed probe misjudges a loaded machine and would make precision (and results) vary by load."""
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
    forced = {"fp32": None, "float32": None, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
              "fp16": torch.float16, "float16": torch.float16}
    if precision in forced:
        return forced[precision]
    if precision != "auto":
        raise DeviceError(f"unknown precision {precision!r}", "Use auto, fp32, bf16 or fp16.")
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if dev.type == "cpu" and cpu_has_fast_bf16() else None


def matmul_dtype(dtype: torch.dtype, device: torch.device | str | None) -> torch.dtype:
    """The dtype to run composition GEMMs in when the result is wanted in ``dtype`` on ``device``.

    On a CPU: fp32 for every low-precision result, then one rounding on the final copy. CPUs have no fast fp16
    GEMM (measured here: 0.7 GFLOP/s vs 84 in fp32; a ViT-S took 10.9 s to compose in fp16), and a bf16 GEMM,
    fast only with AMX / AVX512-BF16, would round the inputs too (max error 0.25 on a ViT-S), so the same
    request would give different weights on different CPUs."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type != "cpu" or dtype in (torch.float32, torch.float64):
        return dtype
    return torch.float32
