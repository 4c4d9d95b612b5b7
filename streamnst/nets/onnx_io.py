"""ONNX export of a style network and an ONNX Runtime runner for the stylizer.

The exported graph takes a 1x3xHxW float32 tensor in [0, 1] whose H and W are
multiples of the network's stride (dynamic), and returns the same shape. Padding
and cropping stay in `run_padded`, shared with the torch backend.
"""

from __future__ import annotations

import copy
import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from streamnst.core.atomic import atomic_path
from streamnst.core.errors import DeviceError, OutputError
from streamnst.nets.checkpoint_io import StyleCheckpoint


def _fused(ckpt: StyleCheckpoint) -> nn.Module:
    model = copy.deepcopy(ckpt.model).eval().float()
    if hasattr(model, "fuse"):
        model.fuse()
    return model


def export_bytes(ckpt: StyleCheckpoint, opset: int = 17) -> bytes:
    """The style network as an ONNX model (bytes), with dynamic height and width."""
    import onnx

    model = _fused(ckpt)
    stride = getattr(model, "STRIDE", 1)
    example = torch.rand(1, 3, 4 * stride, 6 * stride)
    buf = io.BytesIO()
    # the exporter's notes on constant folding and instance-norm mode are not for users
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), buf, input_names=["image"],
                          output_names=["stylized"], opset_version=opset, dynamo=False,
                          dynamic_axes={"image": {2: "height", 3: "width"},
                                        "stylized": {2: "height", 3: "width"}})
    proto = onnx.load_from_string(buf.getvalue())
    meta = {"style": ckpt.name, "arch": ckpt.arch, "arch_args": json.dumps(ckpt.arch_args),
            "stride": str(stride), "margin": str(getattr(model, "MARGIN", 0)),
            "producer": "streamnst"}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


def check_export_path(path: str | os.PathLike, overwrite: bool = True) -> Path:
    """Refuse an export that would clobber a file or is not named .onnx, before any work."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputError(f"{path} exists; pass --overwrite to replace it")
    if path.suffix.lower() != ".onnx":
        raise OutputError(f"{path}: use an .onnx file name")
    return path


def export_onnx(ckpt: StyleCheckpoint, path: str | os.PathLike, opset: int = 17,
                overwrite: bool = True) -> Path:
    """Write the ONNX model atomically (checked first: see `check_export_path`)."""
    path = check_export_path(path, overwrite)
    data = export_bytes(ckpt, opset)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


class OnnxModel:
    """An exported style network in an ONNX Runtime session: tensor in, tensor out (the
    input already padded to `stride` and `margin`)."""

    def __init__(self, model: bytes | str | os.PathLike, device: torch.device,
                 threads: int | None = None) -> None:
        import onnxruntime as ort

        providers = ["CPUExecutionProvider"]
        if device.type == "cuda":
            available = ort.get_available_providers()
            wanted = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider")
                      if p in available]
            if not wanted:
                raise DeviceError("ONNX Runtime has no CUDA provider here; install "
                                  "onnxruntime-gpu or use --backend torch")
            providers = wanted + providers
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        # ORT's pool threads spin between runs by default: in the live loop, where the
        # network waits for each frame, that burnt a core the call app needs (CPU per frame
        # 104 against 70 ms in torch, docs/benchmarks.md)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        source = model if isinstance(model, bytes) else str(model)
        self.session = ort.InferenceSession(source, options, providers=providers)
        meta = self.session.get_modelmeta().custom_metadata_map
        # the exported network's padding needs (the caller pads: engine/runner.py)
        self.stride = int(meta.get("stride", 1))
        self.margin = int(meta.get("margin", 0))
        self.providers = self.session.get_providers()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        feed = {"image": np.ascontiguousarray(x.detach().float().cpu().numpy())}
        (y,) = self.session.run(["stylized"], feed)
        return torch.from_numpy(y).to(x.device)
