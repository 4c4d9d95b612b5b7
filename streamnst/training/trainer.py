"""The resumable, noise- and motion-stabilised style trainer.

Every random choice (crops, flips, noise, synthetic flow) comes from one seeded
torch.Generator whose state is saved with the weights and optimizer, so `resume`
continues a run exactly. State is written with write-then-rename: a kill at any
moment leaves the previous good state in place.
"""

from __future__ import annotations

import csv
import logging
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..atomic import atomic_path, remove_partials
from ..checkpoints import read_checkpoint_file, save_style
from ..devices import autocast, parse_dtype, pick_device
from ..errors import CheckpointError, InputError
from ..imageio import contact_sheet, read_image, resize_max_side, write_image
from ..models import UNet, run_padded
from ..models.unet import DOWNSAMPLING, ENDS, HEADS, NORMS, UPSAMPLING
from ..stylizer import image_to_tensor, tensor_to_image
from ..vgg import CONTENT_LAYER, VGGFeatures, load_vgg
from . import distributed
from .data import CropSampler, fingerprint, list_images
from .losses import (
    content_loss,
    gram,
    motion_loss,
    motion_views,
    sparse_noise,
    stability_loss,
    style_loss,
    tv_loss,
)

log = logging.getLogger(__name__)
STATE_FORMAT = "streamnst-train-state"
CSV_KEYS = ["total", "content", "style", "tv", "noise", "motion"]
CSV_HEADER = ["step", *CSV_KEYS, "images_per_s"]
# settings that must not change when a run is resumed
_FIXED_ON_RESUME = ("width", "res_convs", "fine_blocks", "norm", "up", "down", "head", "ends",
                    "size",
                    "batch", "style_size", "seed", "content_layer", "style_layers", "init_from")
# what runs saved before a setting existed used (where that differs from today's default)
_LEGACY = {"head": "identity", "ends": "full", "init_from": "",
           "content_layer": "relu2_2",
           "style_layers": ("relu1_2", "relu2_2", "relu3_3", "relu4_3")}


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
    # steadiness (research/loss-network probe 4: from the start it keeps walls flat)
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
    init_from: str = ""  # a style checkpoint to start from (warm start)
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
                              ("down", DOWNSAMPLING), ("ends", ENDS)):
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

    @property
    def run_path(self) -> Path:
        out = Path(self.out)
        return Path(self.run_dir) if self.run_dir else out.parent / f"{out.stem}.run"

    @property
    def style_name(self) -> str:
        return self.name or Path(self.style_image).stem

    def new_network(self) -> UNet:
        return UNet(self.width, self.res_convs, self.norm, self.up, self.down,
                    self.fine_blocks, self.head, self.ends)

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


@dataclass
class StepStats:
    step: int
    losses: dict[str, float]
    images_per_s: float
    seconds: float


@dataclass
class TrainResult:
    step: int
    interrupted: bool
    checkpoint: Path
    samples: list[Path] = field(default_factory=list)


def _pick_samples(files: list[Path], count: int) -> list[Path]:
    """A deterministic, spread-out choice of held-out photos for the sample grid."""
    if count <= 0 or len(files) <= count:
        return []
    step = len(files) / count
    return [files[int(i * step + step / 2)] for i in range(count)]


class Trainer:
    def __init__(self, config: TrainConfig, vgg: VGGFeatures | None = None) -> None:
        self.config = config
        self.dist = distributed.from_env()
        self.device = distributed.setup(self.dist, pick_device(config.device))
        self.dtype = parse_dtype(config.dtype, self.device)
        if self.dtype == torch.float16:
            self.dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        files = list_images(config.data)
        self.data_info = fingerprint(config.data, files)
        sample_files = _pick_samples(files, config.num_samples)
        train_files = [f for f in files if f not in set(sample_files)]
        # decoded once: every checkpoint's sample grid shows the same held-out photos
        self.sample_images = [resize_max_side(read_image(p), 320) for p in sample_files]
        self.sampler = CropSampler(train_files, config.size)
        style = read_image(config.style_image)
        self.style_rgb = resize_max_side(style, config.style_size)
        layers = tuple(dict.fromkeys((config.content_layer, *config.style_layers)))
        self.vgg = (vgg or load_vgg(config.vgg, layers)).to(self.device)
        self.channels_last = self.device.type == "cpu"
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        self.memory_format = fmt
        self.vgg = self.vgg.to(memory_format=fmt)
        with torch.random.fork_rng(devices=[]):  # same seed, same start, every process
            torch.manual_seed(config.seed)
            net = config.new_network()
        if config.init_from:
            net.load_state_dict(_warm_start_weights(config))
        self.net = net.to(self.device, memory_format=fmt)
        # under torchrun the DDP wrapper averages gradients; its buffers (batch-norm
        # statistics) follow rank 0, which is the process that saves
        self.model: nn.Module = (DistributedDataParallel(self.net) if self.dist.enabled
                                 else self.net)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=config.lr)
        self.scaler = torch.amp.GradScaler(self.device.type,
                                           enabled=self.dtype == torch.float16)
        self.gen = torch.Generator().manual_seed(config.seed)
        self.step = 0
        self.style_grams = self._style_grams()
        self.layer_weights = dict(zip(config.style_layers, config.style_layer_weights,
                                      strict=True))
        self.board = _open_board(config) if config.tensorboard and self.dist.is_main else None

    # ----- state ---------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.config.run_path / "state.pth"

    def save_state(self) -> None:
        state = {"format": STATE_FORMAT, "version": 1, "config": asdict(self.config),
                 "step": self.step, "model": self.net.state_dict(),
                 "optimizer": self.opt.state_dict(), "generator": self.gen.get_state(),
                 "processes": self.dist.world}
        with atomic_path(self.state_path) as tmp:
            torch.save(state, tmp)

    def load_state(self) -> None:
        """Continue from the run directory's state; settings that shape the run must match."""
        path = self.state_path
        if not path.exists():
            raise CheckpointError(f"{path}: no training state to resume; run without --resume")
        state = read_checkpoint_file(path)
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise CheckpointError(f"{path}: not a streamnst training state")
        saved = state["config"]
        for key in _FIXED_ON_RESUME:
            mine = getattr(self.config, key)
            theirs = saved.get(key, _LEGACY.get(key, getattr(TrainConfig, key, None)))
            if isinstance(theirs, list):
                theirs = tuple(theirs)
            if mine != theirs:
                raise CheckpointError(f"{path}: was trained with {key}={theirs!r}, not {mine!r}; "
                                      "use the same setting or a new --run-dir")
        processes = int(state.get("processes", 1))
        if processes != self.dist.world:
            raise CheckpointError(f"{path}: was trained by {processes} process(es), not "
                                  f"{self.dist.world}; resume with the same torchrun "
                                  "--nproc-per-node")
        self.net.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.gen.set_state(state["generator"])
        self.step = int(state["step"])

    # ----- losses --------------------------------------------------------------------
    @torch.no_grad()
    def _style_grams(self) -> dict[str, torch.Tensor]:
        s = image_to_tensor(self.style_rgb, self.device).contiguous(
            memory_format=self.memory_format)
        feats = self.vgg(s)
        return {name: gram(feats[name]) for name in self.config.style_layers}

    def losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every loss term for a batch of content crops x (Nx3xSxS in [0,1])."""
        c = self.config
        n = x.shape[0]
        views = [x]
        # the extra views are drawn even while the ramp is at 0, so the random draws (and a
        # resumed run) do not depend on where the ramp stands
        ramp = c.stab_factor(self.step)
        if c.noise_weight > 0:
            views.append(sparse_noise(x, c.noise_fraction, c.noise_amount, self.gen))
        if c.motion_weight > 0:
            flow, moved, mask = motion_views(x, c.motion_shift, 0.01, self.gen)
            views.append(moved)
        inp = torch.cat(views).contiguous(memory_format=self.memory_format)
        with autocast(self.device, self.dtype):
            outs = run_padded(self.model, inp).split(n)
            y = outs[0]
            fy = self.vgg(y)
            with torch.no_grad():
                fx = self.vgg(x.contiguous(memory_format=self.memory_format),
                              upto=c.content_layer)
        terms = {
            "content": c.content_weight * content_loss(fy[c.content_layer], fx[c.content_layer]),
            "style": c.style_weight * style_loss(fy, self.style_grams, self.layer_weights),
            "tv": c.tv_weight * tv_loss(y.float()),
        }
        i = 1
        if c.noise_weight > 0:
            terms["noise"] = ramp * c.noise_weight * stability_loss(y, outs[i])
            i += 1
        if c.motion_weight > 0:
            terms["motion"] = ramp * c.motion_weight * motion_loss(y, outs[i], flow, mask)
        terms["total"] = sum(terms.values())
        return terms

    def lr_at(self, step: int) -> float:
        """Constant, then a linear decay to 10% over the last quarter (fine detail).
        A function of the step alone, so a resumed run follows the same schedule."""
        total = self.config.steps
        start = 0.75 * total
        if step < start:
            return self.config.lr
        return self.config.lr * (1.0 - 0.9 * (step - start) / max(1.0, total - start))

    def _local_batch(self) -> torch.Tensor:
        """This process's slice of the global batch. Every process draws the whole
        batch from the same generator, so all stay in step and one saved generator
        state resumes them all."""
        b, info = self.config.batch, self.dist
        full = self.sampler.batch(b * info.world, self.gen)
        return full[info.rank * b:(info.rank + 1) * b]

    @property
    def global_batch(self) -> int:
        return self.config.batch * self.dist.world

    def train_step(self) -> dict[str, float]:
        self.net.train()
        for group in self.opt.param_groups:
            group["lr"] = self.lr_at(self.step)
        x = self._local_batch().to(self.device)
        terms = self.losses(x)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(terms["total"]).backward()
        if self.config.clip > 0:
            self.scaler.unscale_(self.opt)
            nn.utils.clip_grad_norm_(self.net.parameters(), self.config.clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.step += 1
        return {k: float(v.detach()) for k, v in terms.items()}

    # ----- outputs -------------------------------------------------------------------
    def thumbnail(self) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(resize_max_side(self.style_rgb, 128)))

    def save_checkpoint(self) -> Path:
        """The style file `stylize` and `live` load, with the settings that made it."""
        c = self.config
        style = {"name": c.style_name, "image": Path(c.style_image).name,
                 "thumbnail": self.thumbnail()}
        training = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(c).items()
                    if k not in ("out", "run_dir", "device", "data", "vgg", "init_from")}
        # file and folder names only: a checkpoint travels, the trainer's paths do not
        training.update(step=self.step, vgg=f"{self.vgg.arch}-{self.vgg.convention}",
                        processes=self.dist.world, style_image=Path(c.style_image).name,
                        **self.data_info)
        if c.init_from:
            training["init_from"] = Path(c.init_from).name
        net = c.new_network()
        net.load_state_dict(self.net.state_dict())
        return save_style(c.out, net, "unet", style=style, training=training)

    @torch.no_grad()
    def sample_sheet(self) -> np.ndarray | None:
        """The painting, then each held-out photo beside its stylisation (RGB)."""
        if not self.sample_images:
            return None
        self.net.eval()
        row = [self.style_rgb]
        for img in self.sample_images:
            x = image_to_tensor(img, self.device)
            with autocast(self.device, self.dtype):
                y = run_padded(self.net, x.contiguous(memory_format=self.memory_format))
            row += [img, tensor_to_image(y)]
        return contact_sheet([row], cell=320)

    def _log_csv(self, stats: StepStats) -> None:
        path = self.config.run_path / "losses.csv"
        new = not path.exists()
        with path.open("a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(CSV_HEADER)
            w.writerow([stats.step, *(f"{stats.losses.get(k, 0.0):.6g}" for k in CSV_KEYS),
                        f"{stats.images_per_s:.3f}"])

    def _trim_csv(self) -> None:
        """After a resume, forget rows logged past the restored step."""
        path = self.config.run_path / "losses.csv"
        if not path.exists():
            return
        # rows are re-laid under today's header: a run from an older version lacks columns
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        kept = [[r.get(k) or "0" for k in CSV_HEADER] for r in rows
                if int(r["step"]) <= self.step]
        with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
            csv.writer(f).writerows([CSV_HEADER, *kept])

    def checkpoint(self) -> list[Path]:
        """Rank 0 writes state, style, snapshot and samples; the others wait for it."""
        paths = self._write_checkpoint() if self.dist.is_main else []
        distributed.barrier(self.dist)
        return paths

    def _write_checkpoint(self) -> list[Path]:
        self.save_state()
        paths = [self.save_checkpoint()]
        # keep every checkpoint's style (small) so the best-looking one can be picked
        snapshot = self.config.run_path / "styles" / f"step_{self.step:06d}.pth"
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(paths[0], snapshot)
        sheet = self.sample_sheet()
        if sheet is not None:
            out = self.config.run_path / "samples" / f"step_{self.step:06d}.png"
            paths.append(write_image(out, sheet))
            if self.board:
                self.board.add_image("samples", sheet, self.step, dataformats="HWC")
        if self.board:
            self.board.flush()
        return paths

    # ----- loop ----------------------------------------------------------------------
    def run(self, resume: bool = False,
            on_step: Callable[[StepStats], None] | None = None) -> TrainResult:
        """Train to config.steps; Ctrl+C (or SIGTERM) saves everything and returns
        interrupted=True."""
        main = self.dist.is_main
        if main:
            self.config.run_path.mkdir(parents=True, exist_ok=True)
            for target in (self.state_path, Path(self.config.out)):
                remove_partials(target)
        distributed.barrier(self.dist)
        if resume:
            self.load_state()
            if main:
                self._trim_csv()
            log.info("resumed %s at step %d", self.state_path, self.step)
        samples: list[Path] = []
        saved_at = -1
        try:
            with _sigterm_as_interrupt():
                while self.step < self.config.steps:
                    t0 = time.perf_counter()
                    losses = self.train_step()
                    dt = time.perf_counter() - t0
                    stats = StepStats(self.step, losses, self.global_batch / dt, dt)
                    if main:
                        self._log_csv(stats)
                        if self.board:
                            _board_step(self.board, stats)
                    if on_step:
                        on_step(stats)
                    if self.step % self.config.checkpoint_every == 0:
                        samples += self.checkpoint()[1:]
                        saved_at = self.step
                if saved_at != self.step:
                    samples += self.checkpoint()[1:]
        except KeyboardInterrupt:
            # under torchrun the other processes may be inside a collective: no barrier
            if main:
                self._write_checkpoint()
            return TrainResult(self.step, True, Path(self.config.out), samples)
        finally:
            if self.board:
                self.board.close()
            distributed.teardown(self.dist)
        return TrainResult(self.step, False, Path(self.config.out), samples)

def _warm_start_weights(config: TrainConfig) -> dict[str, torch.Tensor]:
    """The weights of the style checkpoint to start from; its network must be this run's."""
    from ..checkpoints import load_style

    ckpt = load_style(config.init_from)
    mine = config.new_network().config
    if ckpt.arch != "unet" or ckpt.arch_args != mine:
        raise InputError(f"--init-from {config.init_from}: its network is {ckpt.arch}"
                         f"{ckpt.arch_args}, this run trains unet{mine}; use the same "
                         "--width/--res-convs/--head")
    return ckpt.model.state_dict()


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (`kill`, a job scheduler's time limit) saves and stops like Ctrl+C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _open_board(config: TrainConfig):
    """A TensorBoard writer in RUN_DIR/tensorboard (`tensorboard --logdir RUN_DIR`)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise InputError("--tensorboard needs the tensorboard package: "
                         "pip install 'streamnst[tensorboard]'") from None
    return SummaryWriter(str(config.run_path / "tensorboard"))


def _board_step(board, stats: StepStats) -> None:
    for name, value in stats.losses.items():
        board.add_scalar(f"loss/{name}", value, stats.step)
    board.add_scalar("images_per_s", stats.images_per_s, stats.step)
