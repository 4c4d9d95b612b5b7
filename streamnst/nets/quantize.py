"""int8 for CPUs without native bf16: ONNX Runtime static quantisation of a style network.

Most laptop and older desktop CPUs compute bf16 only in emulation, so they ran fp32;
many of them have VNNI int8 dot products instead. The fp32 ONNX export is quantised
once per style (QOperator format: QLinearConv, and int8 concat, add, pooling and
sigmoid, so activations stay 8-bit between convs), with per-channel int8 weights and
uint8 activations whose ranges are calibrated on frames of the bundled demo clip. The
weights use 7 bits of the 8: a CPU without VNNI (AVX2 only) sums pairs of uint8 x int8
products in 16 bits, which saturate at full range (34 dB from fp32 on an AVX2 EPYC; 45 dB
at 7 bits, at no cost in speed). The result is cached by the fp32 graph's hash, so the
next start loads it at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from streamnst.core.atomic import atomic_path
from streamnst.nets.checkpoint_io import StyleCheckpoint
from streamnst.nets.onnx_io import export_bytes
from streamnst.nets.padding import pads_for

#: calibration frames: every STEP-th frame of the demo clip, at the live working size
CALIBRATION_FRAMES, STEP, SIZE = 8, 20, (640, 360)
#: bump when the recipe changes, so cached graphs of the old one are not reused
RECIPE = "qop-perchannel-u8s7-v2"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "streamnst" / "int8"


def calibration_frames() -> list[np.ndarray]:
    """HxWx3 uint8 RGB frames of the bundled demo clip (a person in a room)."""
    from streamnst.media.demo import demo_clip
    from streamnst.media.video import VideoReader

    frames = []
    with VideoReader(demo_clip()) as reader:
        for i, frame in enumerate(reader):
            if i % STEP == 0:
                frames.append(cv2.resize(frame, SIZE, interpolation=cv2.INTER_AREA))
            if len(frames) == CALIBRATION_FRAMES:
                break
    return frames


def network_input(frame: np.ndarray, stride: int, margin: int) -> np.ndarray:
    """A frame padded as the stylizer pads it, as the graph's 1x3xHxW float32 input."""
    (top, bottom, left, right), _ = pads_for(stride, margin, *frame.shape[:2])
    padded = cv2.copyMakeBorder(frame, top, bottom, left, right, cv2.BORDER_REFLECT_101)
    return np.ascontiguousarray(padded.transpose(2, 0, 1)[None], np.float32) / 255.0


def quantize_graph(fp32: bytes, frames: list[np.ndarray]) -> bytes:
    """The int8 graph of an fp32 style-network graph, calibrated on `frames`."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    proto = onnx.load_from_string(fp32)
    meta = {p.key: p.value for p in proto.metadata_props}
    stride, margin = int(meta.get("stride", 1)), int(meta.get("margin", 0))
    feeds = [{"image": network_input(f, stride, margin)} for f in frames]

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(feeds)

        def get_next(self) -> dict | None:
            return next(self._it, None)

    with tempfile.TemporaryDirectory() as tmp, _quiet_quantizer():
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(fp32)
        quantize_static(str(src), str(dst), Frames(), quant_format=QuantFormat.QOperator,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, reduce_range=True)
        out = onnx.load(str(dst))
    del out.metadata_props[:]
    for key, value in {**meta, "quantized": RECIPE}.items():
        entry = out.metadata_props.add()
        entry.key, entry.value = key, value
    return out.SerializeToString()


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """The quantizer logs advice for model authors ("consider pre-processing", shape
    inference notes on constant tensors) on the root logger: not for users."""
    def drop(record: logging.LogRecord) -> bool:
        return "onnxruntime" not in record.pathname

    root = logging.getLogger()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def int8_graph(checkpoint: StyleCheckpoint) -> bytes:
    """The checkpoint's int8 graph: from the cache, else quantised now (a few seconds)
    and cached (write, then rename). An unwritable cache only costs the next start."""
    import onnxruntime

    fp32 = export_bytes(checkpoint)
    key = hashlib.sha256(fp32 + f"{RECIPE} {onnxruntime.__version__}".encode()).hexdigest()
    path = cache_dir() / f"{key[:32]}.onnx"
    if path.is_file():
        return path.read_bytes()
    graph = quantize_graph(fp32, calibration_frames())
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(graph)
    except OSError:
        pass
    return graph
