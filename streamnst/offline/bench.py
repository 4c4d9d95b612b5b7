"""Speed benchmarks: networks x backends x resolutions, measured side by side in one run.

Random weights (speed does not depend on them). Every configuration is warmed up,
then timed in interleaved rounds so that machine noise hits all of them alike.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from streamnst.core.devices import cpu_has_native_bf16, pick_device
from streamnst.nets import TransformerNet, UNet, run_padded

RESOLUTIONS = {"360p": (360, 640), "720p": (720, 1280), "1080p": (1080, 1920)}


@dataclass
class BenchRow:
    network: str
    backend: str
    resolution: str
    median_ms: float
    p95_ms: float
    fps: float
    speedup_vs_transformer_net: float | None = None


def networks(widths: tuple[int, ...] = (16,)) -> dict[str, nn.Module]:
    nets: dict[str, nn.Module] = {}
    for w in widths:  # today's layout, and the first releases' (see UNet's `ends`)
        nets[f"unet-w{w}"] = UNet(width=w, head="plain", ends="shuffle")
        nets[f"unet-w{w}-full"] = UNet(width=w, head="identity", ends="full")
    nets["transformer_net"] = TransformerNet()
    return nets


def backends(device: torch.device) -> list[str]:
    if device.type == "cuda":
        return ["eager-fp32", "fp16"]
    names = ["eager-fp32", "channels_last"]
    if cpu_has_native_bf16():
        names += ["bf16", "bf16+channels_last"]
    # int8: the path for CPUs without native bf16, against fp32 channels_last
    return names + ["onnx-fp32", "onnx-int8"]


def make_runner(net: nn.Module, backend: str, device: torch.device
                ) -> Callable[[torch.Tensor], torch.Tensor]:
    """A callable running `net` the way `backend` names (fused, eval, inference mode)."""
    if backend.startswith("onnx-"):
        return _onnx_runner(net, device, int8=backend == "onnx-int8")
    net = copy.deepcopy(net).eval()
    net.fuse()
    cl = "channels_last" in backend
    fmt = torch.channels_last if cl else torch.contiguous_format
    net = net.to(device, memory_format=fmt)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(backend.split("+")[0])
    native = dtype is not None and isinstance(net, UNet)  # as the Stylizer runs U-Nets
    if native:
        net = net.to(dtype)

    @torch.inference_mode()
    def run(x: torch.Tensor) -> torch.Tensor:
        x = (x.to(dtype) if native else x).contiguous(memory_format=fmt)
        with torch.autocast(device.type, dtype=dtype or torch.float32,
                            enabled=dtype is not None and not native):
            y = run_padded(net, x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return y

    return run


def _onnx_runner(net: nn.Module, device: torch.device, int8: bool = False
                 ) -> Callable[[torch.Tensor], torch.Tensor]:
    """ONNX Runtime on the fp32 export, or on its int8 graph (calibrated on demo frames,
    as the stylizer's: nets/quantize.py)."""
    from streamnst.engine.runner import Int8Runner, ModelSettings, OnnxRunner
    from streamnst.nets.checkpoint_io import StyleCheckpoint

    ckpt = StyleCheckpoint(name="bench", path=None, arch="bench", arch_args={},
                           model=net.eval())
    runner = (Int8Runner if int8 else OnnxRunner)(
        ckpt, ModelSettings(device=str(device), threads=torch.get_num_threads()))
    return torch.inference_mode()(runner.run_padded)


def time_runners(runners: dict, x: torch.Tensor, repeat: int, warmup: int
                 ) -> dict[str, list[float]]:
    """Interleaved timing: round r runs every configuration, so machine noise hits all
    alike. Each timed run follows an untimed one of the same configuration: a live filter
    runs one network frame after frame, and the one before (a big TransformerNet) would
    otherwise evict the oneDNN kernels and caches this one works from."""
    for run in runners.values():
        for _ in range(warmup):
            run(x)
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(repeat):
        for key, run in runners.items():
            run(x)
            t0 = time.perf_counter()
            run(x)
            times[key].append((time.perf_counter() - t0) * 1000.0)
    return times


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def run_bench(resolutions: list[str], widths: tuple[int, ...] = (16,), repeat: int = 10,
              warmup: int = 2, device: str = "auto", backend_names: list[str] | None = None,
              network_names: list[str] | None = None,
              sizes: dict[str, tuple[int, int]] | None = None) -> list[BenchRow]:
    dev = pick_device(device)
    nets = networks(widths)
    if network_names:
        nets = {k: v for k, v in nets.items() if k in network_names}
    names = backend_names or backends(dev)
    table = dict(RESOLUTIONS, **(sizes or {}))
    rows: list[BenchRow] = []
    for res in resolutions:
        h, w = table[res]
        x = torch.rand(1, 3, h, w, device=dev)
        runners = {(n, b): make_runner(net, b, dev) for n, net in nets.items() for b in names}
        times = time_runners(runners, x, repeat, warmup)
        res_rows = [BenchRow(n, b, res, statistics.median(t), _p95(t),
                             1000.0 / statistics.median(t)) for (n, b), t in times.items()]
        best_tn = min((r.median_ms for r in res_rows if r.network == "transformer_net"),
                      default=None)
        for r in res_rows:
            if best_tn:
                r.speedup_vs_transformer_net = best_tn / r.median_ms
        rows += res_rows
    return rows


def rows_as_dicts(rows: list[BenchRow]) -> list[dict]:
    return [asdict(r) for r in rows]
