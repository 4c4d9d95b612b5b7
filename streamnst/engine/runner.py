"""Running a style network: one runner per backend, built from a checkpoint and the model
settings (what a network is built with; changing any of them means a new runner). Every
runner takes the same input, a frame tensor already padded to the network's stride and
margin (`padding`), and gives float32 back, so the stylizer never asks which it has."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from streamnst.core.devices import (
    autocast,
    cpu_has_native_bf16,
    cpu_has_vnni,
    parse_dtype,
    pick_device,
)
from streamnst.core.errors import InputError
from streamnst.nets import UNet
from streamnst.nets.checkpoint_io import StyleCheckpoint
from streamnst.nets.padding import Pads, pads_for, run_with_pads

DTYPE_NAMES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


@dataclass(frozen=True)
class ModelSettings:
    """What the network is built with."""

    device: str = "auto"
    dtype: str = "auto"
    channels_last: str = "auto"  # auto | on | off
    threads: int | None = None
    backend: str = "torch"  # a key of BACKENDS

    def __post_init__(self) -> None:
        if self.channels_last not in ("auto", "on", "off"):
            raise InputError(f"channels_last must be auto, on or off, got {self.channels_last!r}")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"threads must be >= 1, got {self.threads}")
        if self.backend not in BACKENDS:
            raise InputError(f"backend must be one of {', '.join(BACKENDS)}, "
                             f"got {self.backend!r}")


class Runner:
    """The network of one checkpoint on one device, called on padded Nx3xHxW tensors."""

    backend = ""
    device: torch.device
    dtype: torch.dtype = torch.float32  # what the network computes in
    input_dtype: torch.dtype = torch.float32  # what it is fed
    channels_last = False
    stride, margin = 1, 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def dtype_name(self) -> str:
        return DTYPE_NAMES[self.dtype]

    def padding(self, h: int, w: int) -> tuple[Pads, str]:
        return pads_for(self.stride, self.margin, h, w)

    def run_padded(self, x: torch.Tensor) -> torch.Tensor:
        """The network on x of any size: padded here (in torch) and cropped back."""
        return run_with_pads(self, x, self.padding(*x.shape[-2:]))


class TorchRunner(Runner):
    """PyTorch, batch norms folded into the convs. A U-Net runs in bf16/fp16 weights
    outright ("native"): autocast's casts before and after every op were a sixth of its
    time; other networks run fp32 weights under autocast."""

    backend = "torch"

    def __init__(self, checkpoint: StyleCheckpoint, settings: ModelSettings) -> None:
        if settings.threads:
            torch.set_num_threads(settings.threads)
        self.device = pick_device(settings.device)
        self.dtype = parse_dtype(settings.dtype, self.device)
        model = copy.deepcopy(checkpoint.model).eval()
        if hasattr(model, "fuse"):
            model.fuse()
        # channels_last speeds U-Nets 1.5-2x on CPU but slows reflection-padded nets
        self.channels_last = {"on": True, "off": False}.get(settings.channels_last,
                                                             isinstance(model, UNet))
        self.native = isinstance(model, UNet) and self.dtype != torch.float32
        if self.native:
            model = model.to(self.dtype)
        self.input_dtype = self.dtype if self.native else torch.float32
        self.memory_format = torch.channels_last if self.channels_last \
            else torch.contiguous_format
        self.model = model.to(self.device, memory_format=self.memory_format)
        self.stride = getattr(model, "STRIDE", 1)
        self.margin = getattr(model, "MARGIN", 0)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.input_dtype).contiguous(memory_format=self.memory_format)
        with autocast(self.device, self.dtype, enabled=not self.native):
            y = self.model(x)
        if self.device.type == "cuda":
            torch.cuda.synchronize()  # else the GPU's time shows up in the next stage
        return y.float()


class OnnxRunner(Runner):
    """ONNX Runtime on the checkpoint exported to an fp32 graph (CUDA/TensorRT providers
    where installed); the graph records the network's stride and margin."""

    backend = "onnx"

    def __init__(self, checkpoint: StyleCheckpoint, settings: ModelSettings) -> None:
        from streamnst.nets.onnx_io import OnnxModel, export_bytes

        self.device = pick_device(settings.device)
        self.session = OnnxModel(export_bytes(checkpoint), self.device, settings.threads)
        self.stride, self.margin = self.session.stride, self.session.margin

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.session(x)


class Int8Runner(OnnxRunner):
    """ONNX Runtime on the checkpoint's int8 graph (nets/quantize.py), on the CPU: for
    CPUs without native bf16, where it takes 0.54-0.64x the time of fp32 (docs/benchmarks.md)."""

    backend = "onnx"

    def __init__(self, checkpoint: StyleCheckpoint, settings: ModelSettings) -> None:
        from streamnst.nets.onnx_io import OnnxModel
        from streamnst.nets.quantize import int8_graph

        self.device = pick_device(settings.device)
        if self.device.type != "cpu":
            raise InputError("int8 runs on the CPU; use --dtype auto on a GPU")
        self.session = OnnxModel(int8_graph(checkpoint), self.device, settings.threads)
        self.stride, self.margin = self.session.stride, self.session.margin

    @property
    def dtype_name(self) -> str:
        return "int8"


BACKENDS: dict[str, type[Runner]] = {"torch": TorchRunner, "onnx": OnnxRunner}


def wants_int8(settings: ModelSettings) -> bool:
    """`--dtype int8`, or `auto` on a CPU with int8 dot products (VNNI) but no native bf16,
    where the int8 graph is faster than fp32 and ONNX Runtime is installed."""
    if settings.dtype == "int8":
        return True
    if settings.dtype != "auto" or pick_device(settings.device).type != "cpu":
        return False
    return not cpu_has_native_bf16() and cpu_has_vnni() and _has_onnxruntime()


def _has_onnxruntime() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def make_runner(checkpoint: StyleCheckpoint, settings: ModelSettings) -> Runner:
    if wants_int8(settings):
        return Int8Runner(checkpoint, settings)
    return BACKENDS[settings.backend](checkpoint, settings)
