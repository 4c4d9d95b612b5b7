"""Device and dtype choice, shared by the stylizer, trainer and benchmarks."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch

from streamnst.core.errors import DeviceError

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def pick_device(name: str = "auto") -> torch.device:
    """'auto' picks cuda > mps > cpu; an explicit name must be usable here."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device cuda requested but no CUDA GPU is available; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError("device mps requested but MPS is not available; use --device cpu")
    return device


@functools.lru_cache(maxsize=1)
def _cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags")
            for flag in line.split(":", 1)[1].split()}


def cpu_has_native_bf16() -> bool:
    """True where the CPU computes bf16 in hardware (AVX512-BF16 or AMX); emulated bf16 is slow."""
    return bool(_cpu_flags() & {"avx512_bf16", "amx_bf16"})


def cpu_has_vnni() -> bool:
    """True where the CPU has int8 dot products (AVX512-VNNI or AVX-VNNI): the int8 path."""
    return bool(_cpu_flags() & {"avx512_vnni", "avx_vnni"})


def default_dtype(device: torch.device) -> torch.dtype:
    """fp16 on CUDA, bf16 on CPUs with native bf16, else fp32."""
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return torch.float32


def parse_dtype(name: str, device: torch.device) -> torch.dtype:
    if name in ("auto", "int8"):  # int8 is a graph of its own (engine/runner.py)
        return default_dtype(device)
    if name not in DTYPES:
        raise DeviceError(f"unknown dtype {name!r}; use auto, fp32, bf16, fp16 or int8")
    dtype = DTYPES[name]
    if device.type == "cpu" and dtype == torch.float16:
        raise DeviceError("fp16 is for GPUs; on the CPU use bf16 or fp32")
    return dtype


def autocast(device: torch.device, dtype: torch.dtype, enabled: bool = True):
    """An autocast context for reduced precision, a no-op for fp32 (or enabled=False)."""
    if device.type not in ("cpu", "cuda"):  # mps, and meta (a check's device)
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype,
                          enabled=enabled and dtype != torch.float32)


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas for a long-running process (the live filter).

    glibc gives threads their own arenas (up to 8 per core) and rarely returns them: with
    a thread per sink, style loads in background threads and aiortc's encoders, RSS crept
    up by tens of MB a minute in our soak and then stayed there. Two arenas keep it flat.
    Returns False where there is no glibc (macOS, Windows, musl).
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or "libc.so" not in name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(-8, arenas))  # M_ARENA_MAX
    except (OSError, AttributeError):
        return False
