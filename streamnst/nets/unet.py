"""Our style network: a slim U-Net that is fast on CPUs and steady on video.

Three downsampling stages, residual 3x3 convs at 1/8 resolution, three upsampling
stages (upsample then conv, which avoids checkerboard artefacts) that take skip
connections from the encoder, and a sigmoid output in [0, 1]. The output head is
`plain` (sigmoid(conv)) or `identity` (sigmoid(conv + logit(input)), the first
releases' head). The identity head starts training at the photo and keeps flat walls
flat: a conv net cannot invent texture where the input has none, and this head never
has to (a style trained with it left walls bare). The plain head must rebuild the
picture from its features, and paints walls with strokes.

Sampling (`down`, `up`): by default each downsampling averages 2x2 before a stride-1
conv and upsampling is bilinear. The first release's stride-2 convs and nearest
upsampling (`down="stride", up="nearest"`, 1.17x faster) aliased: trained styles grew
a grid of blobs locked to the 8-pixel stride. Old files load with their own settings.
Inputs must be multiples of `STRIDE`; `streamnst.nets.padding` pads.

Ends (`ends`): with `shuffle` (the default since the VGG19 gallery) the network never
works at full resolution. The frame enters as a space-to-depth copy (2x2 pixels -> 12
channels at half size, lossless) and leaves through a sub-pixel conv (12 channels ->
2x2 pixels, pixel shuffle). On a 2-core CPU, full-resolution upsampling, concatenation and
their copies cost more than every conv together; without them a w16 network runs in half
the time. `full` is the first releases' layout (pooling the frame, a full-resolution last
stage); old files load with it.

Convs at 1/4 and 1/8 resolution reflect-pad: zero padding there lets the wide
receptive field learn where the frame border is, which shows as bands along the
edges. The costly full- and half-resolution convs zero-pad inside a reflected
margin that is cropped away. That margin is too thin for the encoder's: with a strong
style, marks line up along the frame's edges. `pad="encoder"` reflect-pads those two
convs too, for 5% of the network's time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

NORMS = ("batch", "none", "instance")
UPSAMPLING = ("bilinear", "nearest")
HEADS = ("identity", "plain")
ENDS = ("full", "shuffle")
DOWNSAMPLING = ("pool", "stride")
PADDINGS = ("mixed", "encoder")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


def _icnr_(conv: nn.Conv2d, scale: int = 2) -> None:
    """Sub-pixel conv init (Aitken et al. 2017): the scale**2 outputs that a pixel shuffle
    spreads over one block start equal, so an untrained network draws no 2x2 checkerboard."""
    groups = conv.out_channels // scale**2
    with torch.no_grad():
        conv.weight.copy_(conv.weight[:groups].repeat_interleave(scale**2, dim=0))
        conv.bias.copy_(conv.bias[:groups].repeat_interleave(scale**2))


class ConvBlock(nn.Module):
    """conv3x3 -> norm -> ReLU (the norm folds away at inference when it is batch norm)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, norm: str = "batch",
                 act: bool = True, pad: str = "zeros", pool: bool = False) -> None:
        super().__init__()
        # pool: average 2x2 before a stride-1 conv instead of a stride-2 conv; the low-pass
        # keeps the network from aliasing into patterns locked to the stride grid
        self.pool = nn.AvgPool2d(2) if pool else nn.Identity()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, padding_mode=pad)
        self.norm = _norm(norm, cout)
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(self.pool(x))))

    def fuse(self) -> None:
        """Fold an eval-mode batch norm into the conv (no cost at inference)."""
        if isinstance(self.norm, nn.BatchNorm2d):
            self.conv = fuse_conv_bn_eval(self.conv, self.norm)
            self.norm = nn.Identity()


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, norm: str, pad: str = "reflect") -> None:
        super().__init__()
        self.a = ConvBlock(channels, channels, norm=norm, pad=pad)
        self.b = ConvBlock(channels, channels, norm=norm, act=False, pad=pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(self.a(x))


def _one_hot_unshuffle() -> torch.Tensor:
    """A 2x2 stride-2 conv's weight that is `pixel_unshuffle(x, 2)` of a 3-channel x:
    output channel 4c + 2dy + dx takes pixel (dy, dx) of channel c (ones and zeros: exact)."""
    weight = torch.zeros(12, 3, 2, 2)
    for c in range(3):
        for dy in range(2):
            for dx in range(2):
                weight[4 * c + 2 * dy + dx, c, dy, dx] = 1.0
    return weight


# made once, at import: outside inference mode (training may follow a live frame) and
# outside any ONNX trace (which would record the loops above into the graph)
_UNSHUFFLE = _one_hot_unshuffle()


def space_to_depth(x: torch.Tensor) -> torch.Tensor:
    """`F.pixel_unshuffle(x, 2)` of Nx3xHxW x, as a conv: torch's own took 1.1 ms of a
    640x360 frame on one CPU thread, in bf16 channels_last, where the conv takes 0.3 ms;
    exported, it was a Reshape-Transpose-Reshape that took ONNX Runtime's int8 graph 2.4."""
    if x.shape[1] != 3:
        return F.pixel_unshuffle(x, 2)
    weight = _UNSHUFFLE if x.dtype == _UNSHUFFLE.dtype and x.device.type == "cpu" \
        else _UNSHUFFLE.to(x.device, x.dtype)
    return F.conv2d(x, weight, stride=2)


class UNet(nn.Module):
    """Noise-stabilised U-Net style network (see module docstring).

    width: channels at 1/2 resolution; 1/4 and 1/8 use 2x and 4x that.
    res_convs: number of 3x3 convs at 1/8 resolution (pairs form residual blocks).
    fine_blocks: residual blocks after each of the 1/4 and 1/2 resolution upsampling
    stages. Without them the decoder has one conv per stage, so detail finer than the 1/8
    resolution trunk comes from a single conv.
    """

    STRIDE = 8
    MARGIN = 8  # reflect-padded border the network may spoil, cropped afterwards

    def __init__(self, width: int = 16, res_convs: int = 10, norm: str = "batch",
                 up: str = "bilinear", down: str = "pool", fine_blocks: int = 0,
                 head: str = "plain", ends: str = "shuffle", pad: str = "mixed") -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if res_convs < 2 or res_convs % 2:
            raise ValueError(f"res_convs must be an even number >= 2, got {res_convs}")
        if up not in UPSAMPLING:
            raise ValueError(f"up must be one of {UPSAMPLING}, got {up!r}")
        if down not in DOWNSAMPLING:
            raise ValueError(f"down must be one of {DOWNSAMPLING}, got {down!r}")
        if ends not in ENDS:
            raise ValueError(f"ends must be one of {ENDS}, got {ends!r}")
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        if pad not in PADDINGS:
            raise ValueError(f"pad must be one of {PADDINGS}, got {pad!r}")
        if fine_blocks < 0:
            raise ValueError(f"fine_blocks must be >= 0, got {fine_blocks}")
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        c1, c2, c3 = width, 2 * width, 4 * width
        # every setting, so a file says what it holds (files from before: nets/migrate.py)
        self.config = {"width": width, "res_convs": res_convs, "norm": norm, "up": up,
                       "down": down, "fine_blocks": fine_blocks, "head": head, "ends": ends,
                       "pad": pad}
        # the encoder's full- and half-resolution convs: "mixed" zero-pads them (today's
        # files), "encoder" reflect-pads them, so the trunk gets no zero border to learn
        # where the frame ends from (with zeros, trained styles lined marks up along the
        # edges), for +0.8 ms at 640x360; the decoder's zero borders stay in the margin
        enc = "zeros" if pad == "mixed" else "reflect"
        self.head, self.ends = head, ends
        self.up_mode = up
        pool = down == "pool"
        stride = 1 if pool else 2
        shuffle = ends == "shuffle"
        self.down1 = (ConvBlock(12, c1, norm=norm, pad=enc) if shuffle
                      else ConvBlock(3, c1, stride=stride, norm=norm, pool=pool, pad=enc))
        self.down2 = ConvBlock(c1, c2, stride=stride, norm=norm, pool=pool, pad=enc)
        self.down3 = ConvBlock(c2, c3, stride=stride, norm=norm, pad="reflect", pool=pool)
        self.res = nn.Sequential(*[ResidualBlock(c3, norm) for _ in range(res_convs // 2)])
        self.up1 = ConvBlock(c3 + c2, c2, norm=norm, pad="reflect")
        self.fine1 = nn.Sequential(*[ResidualBlock(c2, norm) for _ in range(fine_blocks)])
        self.up2 = ConvBlock(c2 + c1, c1, norm=norm)
        self.fine2 = nn.Sequential(*[ResidualBlock(c1, norm, pad="zeros")
                                     for _ in range(fine_blocks)])
        self.up3 = ConvBlock(c1 + (12 if shuffle else 3), c1, norm="none")
        self.out = nn.Conv2d(c1, 12 if shuffle else 3, 3, padding=1)
        if shuffle:
            _icnr_(self.out)

    def _up(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode=self.up_mode)
        return torch.cat([x, skip], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: Nx3xHxW in [0, 1], H and W multiples of 8. Returns the same shape in [0, 1]."""
        shuffle = self.ends == "shuffle"
        xs = space_to_depth(x) if shuffle else x
        e1 = self.down1(xs)
        e2 = self.down2(e1)
        y = self.res(self.down3(e2))
        y = self.fine1(self.up1(self._up(y, e2)))
        y = self.fine2(self.up2(self._up(y, e1)))
        y = self.up3(torch.cat([y, xs], dim=1) if shuffle else self._up(y, x))
        y = F.pixel_shuffle(self.out(y), 2) if shuffle else self.out(y)
        if self.head == "plain":
            return torch.sigmoid(y)
        # residual in logit space: an untrained network is close to the identity, so
        # training starts from the photo's contrast and colours and adds the style to it
        return torch.sigmoid(y + torch.logit(x, eps=0.01))

    def fuse(self) -> UNet:
        """Fold batch norms into convs in place (call in eval mode, for inference only)."""
        if self.training:
            raise RuntimeError("fuse() changes the network: call it on an eval-mode copy")
        for module in self.modules():
            if isinstance(module, ConvBlock):
                module.fuse()
        return self
