"""A new painting in minutes: fit its modulation on the shared bank's trunk.

The bank (nets/conditional.py) holds one trunk trained on every gallery painting; a style
is its batch norms' scale and shift (~1,600 numbers). A new painting starts from the bank
style nearest to it (by Gram distance in the loss network) and trains those numbers and
the output conv, with the bank's own recipe (canvas grain, noise and motion stabilisation
from the first step, since the trunk is already steady; the stabilisation weighted
STEADIER times heavier), for a time budget rather than a step count. At CHECKS it runs
itself as the live filter would over a stretch of the demo clip and moves its
stabilisation to keep the warping-error ratio in WARP_BAND. The style stores a SHADING,
a PALETTE and a KEEP_FACE amount: `live` and `stylize` give each frame the painting's
colours (engine/palette.py) and let faces show through in them (engine/faces.py). Without
`--data` it trains on the frames that ship with the package (people, faces and rooms:
media/assets/frames).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from streamnst.core.errors import InputError
from streamnst.media.imageio import read_image, resize_painting
from streamnst.nets.checkpoint_io import BANK_SUFFIX, bundled_dir, read_bank
from streamnst.nets.losses import gram
from streamnst.training.config import TrainConfig
from streamnst.training.trainer import Trainer

#: the bank a quick style grows from, and the frames it trains on without --data
DEFAULT_BANK = "gallery" + BANK_SUFFIX
#: modules trained besides the modulation: the output conv (at a fifth of the rate), which
#: brings the painting's texture; its flicker is what the steering below holds (docs/gallery.md)
EXTRA: tuple[str, ...] = ("out",)
#: how far a quick style moves each frame's colours toward its painting's (stored with it,
#: engine/palette.py): its modulation brings the strokes in minutes, but the network maps
#: colours by content, so a room unlike its training frames kept most of its own
PALETTE = 0.75
#: a quick run weights the noise and motion stabilisation this many times the bank's:
#: with only its modulation free, the bank's weights left a Mondrian's fine strokes
#: flickering (3.9x the input's warping error; 2.6x at twice the weights, while 3x took a
#: Turner's strokes away: docs/gallery.md)
STEADIER = 2.0
#: when a quick run looks at its own live warping-error ratio (fractions of its budget;
#: training/live_warp.py, 1.7 s a look), the band it keeps that ratio in, and how far it may
#: move its stabilisation from STEADIER to do so: one painting's strokes flicker at twice
#: the bank's stabilisation where another's are steady and would rather keep their texture
CHECKS = (0.3, 0.55, 0.75)
WARP_BAND = (1.8, 2.8)
STEER_RANGE = (0.5, 2.0)
#: how much one look moves the stabilisation: (ratio / band edge) ** STEER_POWER (about
#: what it takes: doubling the stabilisation took a Mondrian's ratio from 3.9 to 2.6)
STEER_POWER = 1.5
#: how much of each frame's own light and shade a quick style gives back live (stored,
#: engine/shading.py; the bank's styles store 0.5): with only its modulation learnt, a
#: quick style's strokes stay flatter than a full style's, and more of the frame's shading
#: keeps faces and edges legible and the strokes steadier, at no cost in colour or texture
SHADING = 0.75
#: how much of a person's own face a quick style lets show through live (stored,
#: engine/faces.py), in the painting's palette: a quick style's strokes leave yellow or
#: bleached patches on skin, and the face toned by the palette reads clean in any painting
KEEP_FACE = 0.6
#: the painting is compared with the bank's thumbnails at their size
NEAREST_SIZE = 128
#: the recipe's settings a quick run takes from the bank's own training
_FROM_BANK = ("size", "batch", "style_size", "content_weight", "style_weight", "tv_weight",
              "noise_weight", "noise_fraction", "noise_amount", "motion_weight", "motion_shift",
              "content_layer", "style_layers", "style_layer_weights", "width", "res_convs",
              "fine_blocks", "norm", "up", "down", "head", "ends", "pad", "shading", "canvas")


def bundled_frames() -> Path:
    return Path(__file__).resolve().parents[1] / "media" / "assets" / "frames"


def default_bank() -> Path:
    return bundled_dir() / DEFAULT_BANK


@dataclass(frozen=True)
class QuickPlan:
    """What a quick run starts from: the bank, its style nearest the painting, the recipe."""

    bank: Path
    nearest: str
    distances: dict[str, float]  # Gram distance to every bank style
    config: TrainConfig
    vgg: object  # the loss network, loaded once: hand it to QuickTrainer


def plan(painting: str | Path, out: str | Path, data: str | Path | None = None,
         bank: str | Path | None = None, lr: float = 0.01, seed: int = 0,
         vgg=None, device: str = "auto", dtype: str = "auto") -> QuickPlan:
    """The quick run for `painting`: the nearest bank style and the bank's recipe."""
    bank_path = Path(bank) if bank else default_bank()
    if not bank_path.is_file():
        raise InputError(f"{bank_path}: no style bank there; --quick grows a style from one "
                         "(give --bank BANK.bank.pth)")
    data_dir = Path(data) if data else bundled_frames()
    recipe = read_bank(bank_path).get("training") or {}
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in recipe.items()
                if k in _FROM_BANK}
    for term in ("noise_weight", "motion_weight"):
        settings[term] = STEADIER * settings.get(term, getattr(TrainConfig, term))
    base = TrainConfig(style_image=str(painting), data=str(data_dir), out=str(out),
                       lr=lr, seed=seed, stab_start=0, stab_ramp=0, num_samples=0,
                       palette=PALETTE, device=device, dtype=dtype,
                       keep_face=KEEP_FACE, **{**settings, "shading": SHADING})
    if vgg is None:  # the trainer's layers, so the one load serves both
        from streamnst.nets.vgg import load_vgg

        vgg = load_vgg(base.vgg, tuple(dict.fromkeys((base.content_layer,
                                                      *base.style_layers))))
    distances = gram_distances(read_image(painting), bank_path, base, vgg)
    nearest = min(distances, key=distances.get)
    config = base.replace(init_from=f"{bank_path}:{nearest}")
    return QuickPlan(bank_path, nearest, distances, config, vgg)


@torch.no_grad()
def gram_distances(painting: np.ndarray, bank: Path, config: TrainConfig,
                   vgg=None) -> dict[str, float]:
    """Style name -> how far its painting's Grams are from `painting`'s (thumbnails)."""
    from streamnst.media.tensors import image_to_tensor
    from streamnst.nets.vgg import load_vgg

    net = vgg or load_vgg(config.vgg, tuple(config.style_layers))

    def grams(rgb: np.ndarray) -> dict[str, torch.Tensor]:
        feats = net(image_to_tensor(resize_painting(rgb, NEAREST_SIZE), "cpu"))
        return {k: gram(feats[k]) for k in config.style_layers}

    mine = grams(painting)
    out = {}
    for entry in read_bank(bank)["styles"]:
        theirs = grams(entry["thumbnail"].numpy())
        out[entry["name"]] = float(sum(((mine[k] - theirs[k]) ** 2).sum() / mine[k].pow(2).sum()
                                       for k in mine))
    return out


class QuickTrainer(Trainer):
    """The Trainer on a bank style's network with only its batch norms' scale and shift
    (and the EXTRA modules) trainable, for a time budget; the learning rate decays over the
    last quarter of it. At CHECKS it measures its live warp and moves its stabilisation
    into WARP_BAND."""

    # the trunk's statistics stay the bank's: each step trains the very network that runs
    # live, not one normalised by a batch of four crops
    BATCH_STATISTICS = False

    def __init__(self, config: TrainConfig, vgg=None, extra: tuple[str, ...] = EXTRA,
                 steer: bool = True) -> None:
        """`extra`: modules (by name) trained besides the modulation; `steer`: keep the
        live warp in WARP_BAND (else the stabilisation stays as `config` has it)."""
        super().__init__(config, vgg)
        modulation = [p for m in self.net.modules() if isinstance(m, nn.BatchNorm2d)
                      for p in (m.weight, m.bias)]
        weights = [p for name in extra for p in self.net.get_submodule(name).parameters()]
        for p in self.net.parameters():
            p.requires_grad_(False)
        for p in modulation + weights:
            p.requires_grad_(True)
        self.trainable = sum(p.numel() for p in modulation + weights)
        # a conv's weights move at a fifth of the rate: the trunk's features stay its own
        groups = [{"params": modulation, "lr": config.lr, "scale": 1.0}]
        if weights:
            groups.append({"params": weights, "lr": config.lr / 5, "scale": 0.2})
        self.opt = torch.optim.Adam(groups, lr=config.lr)
        self.fraction = 0.0  # of the time budget spent
        self.steer = steer
        self.steadiness = 1.0  # the stabilisation, as a multiple of `config`'s
        self.looks: list[tuple[float, float, float]] = []  # (fraction, warp ratio, steadiness)
        self._given = (config.noise_weight, config.motion_weight)

    def lr_at(self, step: int) -> float:
        decay = max(0.0, (self.fraction - 0.75) / 0.25)
        return self.config.lr * (1.0 - 0.9 * min(1.0, decay))

    def look(self, check) -> float:
        """Measure the live warp now (`check`: a LiveWarpCheck) and move the stabilisation
        toward WARP_BAND for the steps to come; the ratio measured."""
        ratio = check.ratio(self.snapshot())
        low, high = WARP_BAND
        edge = high if ratio > high else low if ratio < low else ratio
        lo, hi = STEER_RANGE
        self.steadiness = min(hi, max(lo, self.steadiness * (ratio / edge) ** STEER_POWER))
        noise, motion = self._given
        self.config = self.config.replace(noise_weight=noise * self.steadiness,
                                          motion_weight=motion * self.steadiness)
        self.looks.append((self.fraction, ratio, self.steadiness))
        return ratio

    def run_for(self, seconds: float, on_step: Callable[[int, float, dict], None] | None = None,
                cancel: Callable[[], bool] | None = None, check=None) -> Path | None:
        """Train until `seconds` have passed (at least one step), then write the style.
        `on_step(step, fraction, losses)` after each step; `cancel()` true stops without
        writing anything (None is returned); `check`: the LiveWarpCheck its looks use (by
        default the demo clip's, made at the first look)."""
        start = time.monotonic()
        checks = list(CHECKS) if self.steer else []
        while True:
            losses = self.train_step()
            self.fraction = min(1.0, (time.monotonic() - start) / seconds)
            if checks and self.fraction >= checks[0]:
                while checks and self.fraction >= checks[0]:
                    checks.pop(0)
                if check is None:
                    from streamnst.training.live_warp import LiveWarpCheck

                    check = LiveWarpCheck()
                self.look(check)
            if on_step:
                on_step(self.step, self.fraction, losses)
            if cancel and cancel():
                return None
            if self.fraction >= 1.0:
                break
        self.net.eval()
        return self.save_checkpoint()
