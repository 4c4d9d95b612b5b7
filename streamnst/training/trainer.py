"""The resumable, noise- and motion-stabilised style trainer.

Every random choice (crops, flips, noise, synthetic flow) comes from one seeded
torch.Generator whose state is saved with the weights and optimizer, so `resume`
continues a run exactly. State is written with write-then-rename: a kill at any
moment leaves the previous good state in place.
"""

from __future__ import annotations

import errno
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

from streamnst.core.atomic import atomic_path, remove_partials
from streamnst.core.devices import autocast, parse_dtype, pick_device
from streamnst.core.errors import CheckpointError, InputError, OutputError
from streamnst.engine.canvas import add_canvas, canvas_grain
from streamnst.media.imageio import (
    contact_sheet,
    read_image,
    resize_max_side,
    resize_painting,
    write_image,
)
from streamnst.media.tensors import image_to_tensor, tensor_to_image
from streamnst.nets import run_padded
from streamnst.nets.checkpoint_io import StyleCheckpoint, read_checkpoint_file, save_style
from streamnst.nets.losses import content_loss, gram, style_loss, tv_loss
from streamnst.nets.vgg import VGGFeatures, load_vgg
from streamnst.training import distributed, runfiles
from streamnst.training.config import TrainConfig, check_resumable
from streamnst.training.data import CropSampler, fingerprint, list_images
from streamnst.training.stabilisation import (
    motion_loss,
    motion_views,
    sparse_noise,
    stability_loss,
)

log = logging.getLogger(__name__)
STATE_FORMAT = "streamnst-train-state"
__all__ = ["STATE_FORMAT", "StepStats", "TrainConfig", "TrainResult", "Trainer"]
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
    #: batch norms normalise by each batch's statistics while training (and keep running
    #: ones for inference); False trains with the running ones, as inference runs
    BATCH_STATISTICS = True

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
        self.style_rgb = resize_painting(style, config.style_size)
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
        self.style_weight = config.style_weight
        self.style_grams = self._style_grams(self.style_rgb)
        self.layer_weights = dict(zip(config.style_layers, config.style_layer_weights,
                                      strict=True))
        self.board = (runfiles.open_board(config.run_path)
                      if config.tensorboard and self.dist.is_main else None)

    # ----- state ---------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.config.run_path / "state.pth"

    def save_state(self) -> None:
        state = {"format": STATE_FORMAT, "version": 1, "config": asdict(self.config),
                 "step": self.step, "model": self.net.state_dict(),
                 "optimizer": self.opt.state_dict(), "generator": self.gen.get_state(),
                 "processes": self.dist.world, **self._state_extra()}
        with atomic_path(self.state_path) as tmp:
            torch.save(state, tmp)

    def _state_extra(self) -> dict:
        """What a subclass saves in the state besides the shared fields."""
        return {}

    def load_state(self) -> None:
        """Continue from the run directory's state; settings that shape the run must match."""
        path = self.state_path
        if not path.exists():
            raise CheckpointError(f"{path}: no training state to resume; run without --resume")
        state = read_checkpoint_file(path)
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise CheckpointError(f"{path}: not a streamnst training state")
        check_resumable(state["config"], self.config, path)
        self._check_state_extra(state, path)
        processes = int(state.get("processes", 1))
        if processes != self.dist.world:
            raise CheckpointError(f"{path}: was trained by {processes} process(es), not "
                                  f"{self.dist.world}; resume with the same torchrun "
                                  "--nproc-per-node")
        self.net.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.gen.set_state(state["generator"])
        self.step = int(state["step"])

    def _check_state_extra(self, state: dict, path: Path) -> None:
        """A subclass refuses a state its own saved fields do not fit."""

    # ----- losses --------------------------------------------------------------------
    @torch.no_grad()
    def _style_grams(self, rgb: np.ndarray) -> dict[str, torch.Tensor]:
        s = image_to_tensor(rgb, self.device).contiguous(
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
        inp = torch.cat(views)
        if c.canvas > 0:
            # one grain per crop, the same in each of its views: live, the grain stays put
            # while the picture moves (engine/canvas.py); the content target stays clean
            grain = canvas_grain(n, x.shape[2], x.shape[3], self.gen).to(x.device)
            inp = inp + (c.canvas / 255.0) * grain.repeat(len(views), 1, 1, 1)
        inp = inp.contiguous(memory_format=self.memory_format)
        with autocast(self.device, self.dtype):
            outs = run_padded(self.model, inp).split(n)
            y = outs[0]
            fy = self.vgg(y)
            with torch.no_grad():
                fx = self.vgg(x.contiguous(memory_format=self.memory_format),
                              upto=c.content_layer)
        terms = {
            "content": c.content_weight * content_loss(fy[c.content_layer], fx[c.content_layer]),
            "style": self.style_weight * style_loss(fy, self.style_grams, self.layer_weights),
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
        self.net.train(self.BATCH_STATISTICS)
        for group in self.opt.param_groups:  # a group may run at a share of the rate
            group["lr"] = self.lr_at(self.step) * group.get("scale", 1.0)
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

    def style_metadata(self) -> dict:
        """The style's own entry of its file (name, painting, the amounts `live` uses)."""
        c = self.config
        return {"name": c.style_name, "image": Path(c.style_image).name,
                "thumbnail": self.thumbnail(), "shading": c.shading, "canvas": c.canvas,
                "palette": c.palette, "keep_face": c.keep_face}

    def _plain_network(self) -> nn.Module:
        """A copy of the network as it stands, on the CPU, outside any wrapper."""
        net = self.config.new_network()
        net.load_state_dict(self.net.state_dict())
        return net

    def snapshot(self) -> StyleCheckpoint:
        """The network as it stands, as the style it will be saved as (in memory, a copy:
        training goes on without touching it)."""
        net = self._plain_network()
        return StyleCheckpoint(name=self.config.style_name, path=Path(self.config.out),
                               arch="unet", arch_args=dict(net.config), model=net.eval(),
                               style=self.style_metadata())

    def save_checkpoint(self) -> Path:
        """The style file `stylize` and `live` load, with the settings that made it."""
        c = self.config
        style = self.style_metadata()
        training = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(c).items()
                    if k not in ("out", "run_dir", "device", "data", "vgg", "init_from")}
        # file and folder names only: a checkpoint travels, the trainer's paths do not
        training.update(step=self.step, vgg=f"{self.vgg.arch}-{self.vgg.convention}",
                        processes=self.dist.world, style_image=Path(c.style_image).name,
                        **self.data_info)
        if c.init_from:
            training["init_from"] = Path(c.init_from).name
        return save_style(c.out, self._plain_network(), "unet", style=style,
                          training=training)

    @torch.no_grad()
    def sample_sheet(self) -> np.ndarray | None:
        """The painting, then each held-out photo beside its stylisation (RGB)."""
        if not self.sample_images:
            return None
        self.net.eval()
        row = [self.style_rgb]
        for img in self.sample_images:
            x = image_to_tensor(add_canvas(img, self.config.canvas), self.device)
            with autocast(self.device, self.dtype):
                y = run_padded(self.net, x.contiguous(memory_format=self.memory_format))
            row += [img, tensor_to_image(y)]
        return contact_sheet([row], cell=320)

    def _log_csv(self, stats: StepStats) -> None:
        runfiles.log_losses(self.config.run_path, stats.step, stats.losses, stats.images_per_s)

    def _trim_csv(self) -> None:
        runfiles.trim_losses(self.config.run_path, self.step)

    def checkpoint(self) -> list[Path]:
        """Rank 0 writes state, style, snapshot and samples; the others wait for it."""
        paths = self._write_checkpoint() if self.dist.is_main else []
        distributed.barrier(self.dist)
        return paths

    def _write_checkpoint(self) -> list[Path]:
        """Every file of a checkpoint, each written then renamed: a failed write (a full
        disk) leaves the previous ones whole and becomes one OutputError line."""
        try:
            return self._write_checkpoint_files()
        except (OSError, RuntimeError) as exc:
            raise OutputError(f"{self.config.run_path}: could not write the checkpoint at step "
                              f"{self.step} ({_write_failure(exc)}); the previous one is "
                              "intact: free some space and rerun with --resume") from None

    def _write_checkpoint_files(self) -> list[Path]:
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
                            runfiles.board_step(self.board, stats.step, stats.losses,
                                                stats.images_per_s)
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

def _write_failure(exc: BaseException) -> str:
    """What a failed write says, in a user's words: torch.save reports a full disk as a
    RuntimeError from its zip writer ("unexpected pos", "file write failed")."""
    text = str(exc)
    if getattr(exc, "errno", None) == errno.ENOSPC or "unexpected pos" in text \
            or "write failed" in text:
        return "the disk is full"
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _warm_start_weights(config: TrainConfig) -> dict[str, torch.Tensor]:
    """The weights of the style checkpoint to start from; its network must be this run's
    (the padding may differ: it changes no weight)."""
    from streamnst.nets.checkpoint_io import load_style

    def shape(args: dict) -> dict:
        return {k: v for k, v in args.items() if k != "pad"}

    ckpt = load_style(config.init_from)
    mine = config.new_network().config
    if ckpt.arch != "unet" or shape(ckpt.arch_args) != shape(mine):
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
