"""Train one style bank (nets/conditional.py) on many paintings at once.

Every step trains one painting, in turn: the trunk sees every painting's steps, each
painting's modulation only its own. Everything else (crops, the canvas grain, noise and
motion stabilisation, resumable state) is the single-style Trainer's.

A run continues from its state in the run directory (`--resume`) or, on a machine that
has only the committed bank file, from that file (`--init-from BANK`): the trunk and
every painting's modulation carry over by name (a new painting starts from the first
one's), and so does the step count, so the learning-rate schedule goes on where it was.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from streamnst.core.devices import autocast
from streamnst.core.errors import CheckpointError, InputError
from streamnst.engine.canvas import add_canvas
from streamnst.media.imageio import contact_sheet, read_image, resize_max_side, resize_painting
from streamnst.media.tensors import image_to_tensor, tensor_to_image
from streamnst.nets import run_padded
from streamnst.nets.checkpoint_io import BANK_FORMAT, read_checkpoint_file, save_bank
from streamnst.nets.conditional import StyleBank
from streamnst.nets.migrate import migrate
from streamnst.training.config import TrainConfig
from streamnst.training.trainer import Trainer


@dataclass(frozen=True)
class BankStyle:
    """One painting of a bank run: its style name, image and (optional) own style weight."""

    name: str
    image: str
    style_weight: float | None = None


def read_style_list(path: str | Path) -> list[BankStyle]:
    """Lines `NAME PAINTING [STYLE_WEIGHT]` ('#' comments); paintings relative to the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: style list not found")
    styles = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) not in (2, 3):
            raise InputError(f"{path}:{number}: expected NAME PAINTING [STYLE_WEIGHT]")
        image = (path.parent / words[1]).resolve()
        if not image.is_file():
            raise InputError(f"{path}:{number}: painting {words[1]} not found")
        try:
            weight = float(words[2]) if len(words) == 3 else None
        except ValueError:
            raise InputError(f"{path}:{number}: style weight {words[2]!r} is no number") from None
        styles.append(BankStyle(words[0], str(image), weight))
    names = [s.name for s in styles]
    if len(styles) < 2 or len(set(names)) != len(names):
        raise InputError(f"{path}: a bank needs at least two paintings with distinct names")
    return styles


class BankTrainer(Trainer):
    """The Trainer with a StyleBank for its network and one painting per step."""

    def __init__(self, config: TrainConfig, styles: list[BankStyle], vgg=None) -> None:
        first = config.replace(style_image=styles[0].image, name=styles[0].name)
        super().__init__(first, vgg)
        self.styles = styles
        self.paintings = [resize_painting(read_image(s.image), first.style_size)
                          for s in styles]
        self.grams = [self._style_grams(rgb) for rgb in self.paintings]
        bank = StyleBank.from_unet(self.net.cpu(), len(styles))
        start = read_checkpoint_file(Path(config.init_from)) if config.init_from else None
        if isinstance(start, dict) and start.get("format") == BANK_FORMAT:
            self.step = _continue_from_bank(bank, start, config.init_from, styles)
        self.net = bank.to(self.device, memory_format=self.memory_format)
        self.model = DistributedDataParallel(self.net) if self.dist.enabled else self.net
        self.opt = torch.optim.Adam(self.net.parameters(), lr=config.lr)

    def _state_extra(self) -> dict:
        return {"styles": [asdict(s) for s in self.styles]}

    def _check_state_extra(self, state: dict, path: Path) -> None:
        saved = [s.get("name") for s in state.get("styles", [])]
        if saved != [s.name for s in self.styles]:
            raise CheckpointError(f"{path}: was trained on the styles {saved}; resume with the "
                                  "same style list or start a new --run-dir")

    def train_step(self) -> dict[str, float]:
        i = self.step % len(self.styles)
        self.net.select(i)
        self.style_grams = self.grams[i]
        own = self.styles[i].style_weight
        self.style_weight = self.config.style_weight if own is None else own
        return super().train_step()

    def save_checkpoint(self) -> Path:
        c = self.config
        metas = [{"name": s.name, "image": Path(s.image).name, "shading": c.shading,
                  "canvas": c.canvas, "style_weight": self.style_weight_of(s),
                  "thumbnail": torch.from_numpy(np.ascontiguousarray(resize_max_side(rgb, 128)))}
                 for s, rgb in zip(self.styles, self.paintings, strict=True)]
        training = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(c).items()
                    if k not in ("out", "run_dir", "device", "data", "vgg", "init_from",
                                 "style_image", "name")}
        training.update(step=self.step, crops=self.step * self.global_batch,
                        vgg=f"{self.vgg.arch}-{self.vgg.convention}",
                        processes=self.dist.world, **self.data_info)
        return save_bank(c.out, self.net, metas, training)

    def style_weight_of(self, style: BankStyle) -> float:
        return self.config.style_weight if style.style_weight is None else style.style_weight

    @torch.no_grad()
    def sample_sheet(self) -> np.ndarray | None:
        """One row per painting: the painting, then each held-out photo stylised with it."""
        if not self.sample_images:
            return None
        self.net.eval()
        rows = []
        for i, painting in enumerate(self.paintings):
            self.net.select(i)
            row = [painting]
            for img in self.sample_images:
                x = image_to_tensor(add_canvas(img, self.config.canvas), self.device)
                with autocast(self.device, self.dtype):
                    y = run_padded(self.net, x.contiguous(memory_format=self.memory_format))
                row.append(tensor_to_image(y))
            rows.append(row)
        return contact_sheet(rows, cell=256)


def _continue_from_bank(bank: StyleBank, data: dict, path: str,
                        styles: list[BankStyle]) -> int:
    """Load a bank file's trunk and modulations into `bank` (by style name); its step.
    A file of an earlier version is read as this one (nets/migrate.py)."""
    data = migrate(data)
    if data.get("arch_args") != bank.unet_args():
        raise InputError(f"--init-from {path}: its network unet{data.get('arch_args')} is not "
                         f"this run's unet{bank.unet_args()}")
    bank.net.load_state_dict(data["trunk"], strict=False)
    saved = {s["name"]: s["modulation"] for s in data["styles"]}
    first = data["styles"][0]["modulation"]
    for i, style in enumerate(styles):
        bank.set_modulation(i, saved.get(style.name, first))
    return int((data.get("training") or {}).get("step", 0))
