"""What the training tests share: a small random loss network and a tiny run's settings."""

from __future__ import annotations

import torch
from torchvision.models import vgg16

from streamnst.nets.vgg import VGGFeatures
from streamnst.training.config import TrainConfig

LAYERS = ("relu1_2", "relu2_2")


def random_vgg() -> VGGFeatures:
    """A seeded random VGG16 cut after relu2_2: cheap, and enough for losses to move."""
    torch.manual_seed(1)
    return VGGFeatures(vgg16(weights=None).features.state_dict(), "torchvision", LAYERS,
                       arch="vgg16")


def tiny_config(style_image: str, data: str, out: str, **kw) -> TrainConfig:
    """A few steps of a width-4 network on 32 px crops, on the CPU in fp32."""
    base = dict(style_image=style_image, data=data, out=out, size=32, batch=2, style_size=40,
                width=4, res_convs=2, steps=6, checkpoint_every=3, num_samples=2,
                device="cpu", dtype="fp32", content_layer="relu2_2", style_layers=LAYERS,
                style_layer_weights=(1.0, 1.0), lr=5e-3, stab_start=0, stab_ramp=0)
    base.update(kw)
    return TrainConfig(**base)
