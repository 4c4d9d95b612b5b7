"""Style networks and the one place that builds them from a name and arguments."""

from __future__ import annotations

from torch import nn

from streamnst.nets.padding import run_padded
from streamnst.nets.transformer_net import TransformerNet
from streamnst.nets.unet import UNet

ARCHITECTURES: dict[str, type[nn.Module]] = {"unet": UNet, "transformer_net": TransformerNet}


def build_model(arch: str, **kwargs) -> nn.Module:
    """Build a network by architecture name; unknown names or arguments raise ValueError."""
    try:
        cls = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}") from None
    return cls(**kwargs)


__all__ = ["ARCHITECTURES", "TransformerNet", "UNet", "build_model", "run_padded"]
