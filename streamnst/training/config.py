"""What a training run is: its settings, validated on construction, and the rules for
resuming it (which settings must not change, what older runs used)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

from streamnst.core.errors import CheckpointError, InputError
from streamnst.nets import UNet
from streamnst.nets.checkpoint_io import MAX_CANVAS
from streamnst.nets.migrate import UNET_V1
from streamnst.nets.unet import DOWNSAMPLING, ENDS, HEADS, NORMS, PADDINGS, UPSAMPLING
from streamnst.nets.vgg import CONTENT_LAYER

# settings that must not change when a run is resumed
_FIXED_ON_RESUME = ("width", "res_convs", "fine_blocks", "norm", "up", "down", "head", "ends",
                    "pad", "size", "batch", "style_size", "seed", "content_layer",
                    "style_layers", "init_from", "canvas")
# what runs saved before a setting existed used (where that differs from today's default)
_LEGACY = {"head": UNET_V1["head"], "ends": UNET_V1["ends"], "init_from": "",
           "content_layer": "relu2_2",
           "style_layers": ("relu1_2", "relu2_2", "relu3_3", "relu4_3")}


# fields given as a command's own arguments or options (paths, where it runs), not recipe
PLACE_FIELDS = frozenset({"style_image", "data", "out", "run_dir", "name", "vgg", "device",
                          "dtype"})
# fields that change what a run writes, not the network it trains
OUTPUT_FIELDS = frozenset({"tensorboard", "num_samples"})


@dataclass(frozen=True)
class TrainConfig:
    style_image: str
    data: str
    out: str
    run_dir: str = ""
    name: str = ""
    steps: int = 1000
    size: int = 192
    batch: int = 4
    style_size: int = 384
    lr: float = 2e-3
    content_weight: float = 1.0
    style_weight: float = 3.0
    tv_weight: float = 0.0
    noise_weight: float = 10.0
    noise_fraction: float = 0.05
    noise_amount: float = 30 / 255
    motion_weight: float = 10.0
    motion_shift: float = 8.0
    # stabilisation ramps in from stab_start over stab_ramp steps: strokes first, then
    # steadiness (stabilised from the first step, a network learns to keep walls flat)
    stab_start: int = 300
    stab_ramp: int = 300
    content_layer: str = CONTENT_LAYER
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
    style_layer_weights: tuple[float, ...] = (0.5, 1.0, 1.0, 1.0)  # relu1_1: colour edges
    width: int = 16
    res_convs: int = 10
    fine_blocks: int = 0
    norm: str = "batch"
    up: str = "bilinear"
    down: str = "pool"
    head: str = "plain"
    ends: str = "shuffle"
    pad: str = "mixed"
    init_from: str = ""  # a style checkpoint to start from (warm start)
    # stored with the style: how much of the input's broad light and shade `stylize` and
    # `live` give back by default (engine/shading.py); it changes no training step
    shading: float = 0.0
    # the grain (levels of 255) added to every crop the network sees, and stored with the
    # style for `stylize` and `live` (engine/canvas.py): strokes on flat walls
    canvas: float = 0.0
    # stored with the style: how far `stylize` and `live` move each frame's colours toward
    # the painting's (engine/palette.py); it changes no training step
    palette: float = 0.0
    # stored with the style: how much of a person's own face `stylize` and `live` let
    # show through by default (engine/faces.py); it changes no training step
    keep_face: float = 0.0
    clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 200
    tensorboard: bool = False
    num_samples: int = 3
    device: str = "auto"
    dtype: str = "auto"
    vgg: str | None = None

    def __post_init__(self) -> None:
        positive = ("steps", "size", "batch", "style_size", "checkpoint_every", "width")
        for name in positive:
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be >= 1")
        if self.size % UNet.STRIDE:
            raise InputError(f"--size must be a multiple of {UNet.STRIDE}, got {self.size}")
        for name, allowed in (("norm", NORMS), ("head", HEADS), ("up", UPSAMPLING),
                              ("down", DOWNSAMPLING), ("ends", ENDS), ("pad", PADDINGS)):
            if getattr(self, name) not in allowed:
                raise InputError(f"--{name} must be one of {', '.join(allowed)}, "
                                 f"got {getattr(self, name)!r}")
        if len(self.style_layer_weights) != len(self.style_layers):
            raise InputError("give one style layer weight per style layer")
        for name in ("fine_blocks", "lr", "content_weight", "style_weight", "tv_weight",
                     "noise_weight", "motion_weight", "noise_fraction", "noise_amount",
                     "motion_shift", "clip", "stab_start", "stab_ramp"):
            if getattr(self, name) < 0:
                raise InputError(f"--{name.replace('_', '-')} must be >= 0")
        if not 0.0 <= self.shading <= 1.0:
            raise InputError(f"--shading must be between 0 and 1, got {self.shading}")
        if not 0.0 <= self.palette <= 1.0:
            raise InputError(f"--palette must be between 0 and 1, got {self.palette}")
        if not 0.0 <= self.keep_face <= 1.0:
            raise InputError(f"--keep-face must be between 0 and 1, got {self.keep_face}")
        if not 0.0 <= self.canvas <= MAX_CANVAS:
            raise InputError(f"--canvas must be between 0 and {MAX_CANVAS:g}, got {self.canvas}")

    @property
    def run_path(self) -> Path:
        out = Path(self.out)
        return Path(self.run_dir) if self.run_dir else out.parent / f"{out.stem}.run"

    @property
    def style_name(self) -> str:
        return self.name or Path(self.style_image).stem

    def new_network(self) -> UNet:
        return UNet(self.width, self.res_convs, self.norm, self.up, self.down,
                    self.fine_blocks, self.head, self.ends, self.pad)

    def stab_factor(self, step: int) -> float:
        """How much of the noise and motion weights applies at `step` (0 to 1)."""
        if step < self.stab_start:
            return 0.0
        if self.stab_ramp == 0:
            return 1.0
        return min(1.0, (step - self.stab_start + 1) / self.stab_ramp)

    def replace(self, **changes) -> TrainConfig:
        data = asdict(self)
        data.update(changes)
        return TrainConfig(**data)


def check_resumable(saved: dict, config: TrainConfig, path: Path) -> None:
    """Raise unless `config` may continue the run whose saved settings are `saved`."""
    for key in _FIXED_ON_RESUME:
        mine = getattr(config, key)
        theirs = saved.get(key, _LEGACY.get(key, getattr(TrainConfig, key, None)))
        if isinstance(theirs, list):
            theirs = tuple(theirs)
        if mine != theirs:
            raise CheckpointError(f"{path}: was trained with {key}={theirs!r}, not {mine!r}; "
                                  "use the same setting or a new --run-dir")


def check_run_dir(config: TrainConfig, resume: bool) -> None:
    """--resume needs a saved state; a fresh run must not overwrite one."""
    state = config.run_path / "state.pth"
    if resume and not state.exists():
        raise InputError(f"{config.run_path}: no training state to resume; run without "
                         "--resume")
    if not resume and state.exists():
        raise InputError(f"{config.run_path} holds an earlier run; pass --resume to continue "
                         "it or choose another --run-dir")


def retrain_command(name: str, training: dict) -> str:
    """The `streamnst train` command that reproduces a checkpoint's recorded recipe."""
    recipe = {f.name for f in fields(TrainConfig)} - PLACE_FIELDS - OUTPUT_FIELDS
    image = Path(str(training.get("style_image") or "STYLE_IMAGE")).name
    parts = ["streamnst train", f"styles/{image}",
             "--data PHOTOS", f"--out {name}.pth", f"--name {name}"]
    for key in sorted(recipe & training.keys()):
        value = training[key]
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        parts.append(f"--{key.replace('_', '-')} {value}")
    return " ".join(parts)
