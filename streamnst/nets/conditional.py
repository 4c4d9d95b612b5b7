"""One U-Net for many paintings: a shared trunk, and per style only the batch norms' numbers.

Dumoulin et al. (2017, "A Learned Representation for Artistic Style") showed that a style
can live in the scale and shift of a network's normalisation layers. Here every batch norm
of the U-Net keeps one row per style of weight, bias, running mean and running variance
(a style's *modulation*, ~3,200 numbers for the w16 network); the convs are shared.

At inference a batch norm with fixed statistics is a per-channel affine map, so a style's
modulation folds into the convs before it (`UNet.fuse`): a conditioned network costs
exactly what a plain one does per frame. A style exported from the bank is a plain UNet
(`export`), so every tool that runs a style runs it unchanged.

Mixing two styles mixes their per-channel affine maps (`mix_modulations`), which is what
the folded network sees; switching or mixing rewrites only those numbers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from streamnst.nets.unet import UNet

#: a style's modulation: batch-norm module name -> 4xC (weight, bias, mean, var)
Modulation = dict[str, torch.Tensor]
_FIELDS = ("weight", "bias", "running_mean", "running_var")


class StyleBatchNorm2d(nn.Module):
    """A batch norm with one row of affine and statistics per style; `style` picks the row."""

    def __init__(self, channels: int, styles: int, eps: float = 1e-5,
                 momentum: float = 0.1) -> None:
        super().__init__()
        self.eps, self.momentum, self.style = eps, momentum, 0
        self.weight = nn.Parameter(torch.ones(styles, channels))
        self.bias = nn.Parameter(torch.zeros(styles, channels))
        self.register_buffer("running_mean", torch.zeros(styles, channels))
        self.register_buffer("running_var", torch.ones(styles, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.style
        # the row views are updated in place by F.batch_norm: each style keeps the
        # statistics of its own activations (earlier layers depend on the style too)
        return F.batch_norm(x, self.running_mean[s], self.running_var[s], self.weight[s],
                            self.bias[s], self.training, self.momentum, self.eps)

    @classmethod
    def from_batch_norm(cls, bn: nn.BatchNorm2d, styles: int) -> StyleBatchNorm2d:
        out = cls(bn.num_features, styles, bn.eps, bn.momentum or 0.1)
        with torch.no_grad():
            for name in _FIELDS:
                getattr(out, name).copy_(getattr(bn, name).detach().expand(styles, -1))
        return out


def _batch_norms(net: nn.Module, kind: type) -> dict[str, nn.Module]:
    return {name: m for name, m in net.named_modules() if isinstance(m, kind)}


def _set_child(root: nn.Module, name: str, child: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, child)


class StyleBank(nn.Module):
    """A UNet whose batch norms hold `styles` modulations; `select(i)` picks one."""

    def __init__(self, styles: int, **unet_args) -> None:
        super().__init__()
        if styles < 1:
            raise ValueError(f"a style bank needs at least one style, got {styles}")
        if unet_args.get("norm", "batch") != "batch":
            raise ValueError("a style bank conditions batch norms: norm must be 'batch'")
        self.net = UNet(**unet_args)
        self.config = {"styles": styles, **self.net.config}
        self.STRIDE, self.MARGIN = self.net.STRIDE, self.net.MARGIN
        for name, bn in _batch_norms(self.net, nn.BatchNorm2d).items():
            _set_child(self.net, name, StyleBatchNorm2d.from_batch_norm(bn, styles))
        self.styles = styles

    @property
    def norms(self) -> dict[str, StyleBatchNorm2d]:
        return _batch_norms(self.net, StyleBatchNorm2d)

    def select(self, style: int) -> StyleBank:
        if not 0 <= style < self.styles:
            raise IndexError(f"style {style} out of range 0..{self.styles - 1}")
        for bn in self.norms.values():
            bn.style = style
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def unet_args(self) -> dict:
        return dict(self.net.config)

    def modulation(self, style: int) -> Modulation:
        return {name: torch.stack([getattr(bn, f)[style].detach().float() for f in _FIELDS])
                for name, bn in self.norms.items()}

    def set_modulation(self, style: int, mod: Modulation) -> None:
        with torch.no_grad():
            for name, bn in self.norms.items():
                for i, f in enumerate(_FIELDS):
                    getattr(bn, f)[style].copy_(mod[name][i])

    def trunk_state(self) -> dict[str, torch.Tensor]:
        """The shared weights: everything but the batch norms' rows."""
        norms = set(self.norms)
        return {k: v for k, v in self.net.state_dict().items()
                if k.rpartition(".")[0] not in norms}

    def export(self, style: int) -> UNet:
        """A plain UNet (eval mode) that paints style `style`: the trunk plus its rows."""
        net = UNet(**self.unet_args())
        net.load_state_dict({**self.trunk_state(), **modulation_state(self.modulation(style))})
        return net.eval()

    @classmethod
    def from_unet(cls, unet: UNet, styles: int) -> StyleBank:
        """A bank whose every style starts as `unet` (a warm start from one trained style)."""
        bank = cls(styles, **unet.config)
        own = unet.state_dict()
        trunk = {k: v for k, v in own.items() if k in bank.trunk_state()}
        bank.net.load_state_dict(trunk, strict=False)
        mod = modulation_of(unet)
        for s in range(styles):
            bank.set_modulation(s, mod)
        return bank


def modulation_state(mod: Modulation) -> dict[str, torch.Tensor]:
    """A modulation as the state-dict entries of a plain UNet's batch norms."""
    out = {}
    for name, rows in mod.items():
        for i, f in enumerate(_FIELDS):
            out[f"{name}.{f}"] = rows[i].clone()
    return out


def modulation_of(unet: nn.Module) -> Modulation:
    """The modulation a plain UNet's batch norms hold (what a bank style exports to)."""
    return {name: torch.stack([getattr(bn, f).detach().float() for f in _FIELDS])
            for name, bn in _batch_norms(unet, nn.BatchNorm2d).items()}


def apply_modulation(unet: nn.Module, mod: Modulation) -> None:
    """Write a modulation into a plain (unfused) UNet's batch norms."""
    norms = _batch_norms(unet, nn.BatchNorm2d)
    if set(norms) != set(mod) or any(norms[k].num_features != mod[k].shape[1] for k in mod):
        raise ValueError("the modulation does not fit this network's batch norms")
    with torch.no_grad():
        for name, bn in norms.items():
            for i, f in enumerate(_FIELDS):
                getattr(bn, f).copy_(mod[name][i])


def mix_modulations(mods: list[Modulation], weights: list[float]) -> Modulation:
    """The weighted mix of styles, taken where it acts: on each channel's affine map
    (scale = w / sqrt(var + eps), shift = b - mean * scale). The result holds mean 0 and
    variance 1 - eps, so the batch norm applies exactly the mixed map."""
    if len(mods) != len(weights) or not mods:
        raise ValueError("give one weight per modulation")
    total = float(sum(weights))
    if total <= 0 or any(w < 0 for w in weights):
        raise ValueError("mix weights must be >= 0 and not all zero")
    eps = 1e-5
    out: Modulation = {}
    for name in mods[0]:
        scale = torch.zeros_like(mods[0][name][0])
        shift = torch.zeros_like(scale)
        for mod, w in zip(mods, weights, strict=True):
            weight, bias, mean, var = mod[name]
            s = weight / torch.sqrt(var + eps)
            scale += (w / total) * s
            shift += (w / total) * (bias - mean * s)
        out[name] = torch.stack([scale, shift, torch.zeros_like(scale),
                                 torch.full_like(scale, 1.0 - eps)])
    return out
