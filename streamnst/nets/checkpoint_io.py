"""Style checkpoints: one file per style, with the metadata to rebuild and retrain it.

A streamnst checkpoint is a plain dict saved with `torch.save` and loaded with
`weights_only=True` (no pickled code ever runs):

    format: "streamnst-style", version: int, arch: str, arch_args: dict,
    state_dict: {name: tensor},
    style: {name, image, thumbnail (uint8 HxWx3), shading, canvas, palette},
    training: {settings that produced it}

Raw pytorch/examples `fast_neural_style` state dicts load too, as TransformerNet.

A style bank (`*.bank.pth`, nets/conditional.py) holds many styles on one shared trunk:

    format: "streamnst-bank", version, arch_args (the UNet's), trunk: {name: tensor},
    styles: [{name, image, thumbnail, shading, canvas, modulation: {norm: 4xC}}], training

Each of its styles is listed and loaded by name like a style file of its own.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import struct
import zipfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from streamnst.core.atomic import atomic_path
from streamnst.core.errors import CheckpointError
from streamnst.nets import ARCHITECTURES, build_model
from streamnst.nets.conditional import apply_modulation, mix_modulations, modulation_state
from streamnst.nets.migrate import VERSION, migrate
from streamnst.nets.transformer_net import clean_state_dict, looks_like_transformer_net

log = logging.getLogger(__name__)

FORMAT = "streamnst-style"
BANK_FORMAT = "streamnst-bank"
SUFFIX = ".pth"
BANK_SUFFIX = ".bank.pth"
#: the strongest canvas grain a style may store (levels of 255): more is content, not weave
MAX_CANVAS = 32.0


@dataclass
class StyleCheckpoint:
    """A loaded style: its network (eval mode, on the CPU) and its metadata."""

    name: str
    path: Path
    arch: str
    arch_args: dict
    model: nn.Module
    style: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    #: for a style from a bank: the bank file (its styles share this network's trunk)
    bank: Path | None = None

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @property
    def shading(self) -> float:
        """How much of the input's broad light and shade this style gives back by default
        (engine/shading.py): chosen by eye per style and stored with it; 0 if none."""
        return self._stored_amount("shading", 1.0)

    @property
    def keep_face(self) -> float:
        """How much of a person's own face this style lets show through by default
        (engine/faces.py); 0 if none is stored."""
        return self._stored_amount("keep_face", 1.0)

    @property
    def palette(self) -> float:
        """How far (0-1) this style moves each frame's colours toward its painting's by
        default (engine/palette.py); 0 if none is stored."""
        return self._stored_amount("palette", 1.0)

    @property
    def canvas(self) -> float:
        """How strong (levels of 255) the grain this style paints flat regions from is
        (engine/canvas.py): the amount it was trained with; 0 if none."""
        return self._stored_amount("canvas", MAX_CANVAS)

    def _stored_amount(self, key: str, top: float) -> float:
        value = self.style.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not 0.0 <= value <= top:
            raise CheckpointError(f"{self.path}: stored {key} {value!r} is not a number "
                                  f"from 0 to {top:g}")
        return float(value)


def bundled_dir() -> Path:
    """The styles that ship: `checkpoints/` at the top of a checkout (an editable install
    reads them there), else the package's own `bundled/` folder, wherever the package was
    installed (a venv, --user, --target)."""
    top = Path(__file__).resolve().parents[2]
    if (top / "pyproject.toml").is_file() and (top / "checkpoints").is_dir():
        return top / "checkpoints"
    return Path(str(resources.files("streamnst") / "bundled"))


def user_dir() -> Path:
    """Where users keep their own styles: $STREAMNST_HOME/checkpoints or the XDG data dir."""
    home = os.environ.get("STREAMNST_HOME")
    if home:
        return Path(home) / "checkpoints"
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "streamnst" / "checkpoints"


def style_dirs() -> list[Path]:
    return [d for d in (user_dir(), bundled_dir()) if d.is_dir()]


def available_styles() -> dict[str, Path]:
    """Style name -> checkpoint path (a bank's path for its styles). Files win over bank
    styles, and a user's file over a bundled one of the same name; a bank never shadows
    a name taken before it (the bundled bank's first): its style stays reachable as
    BANK.bank.pth:NAME."""
    found: dict[str, Path] = {}
    for directory in reversed(style_dirs()):  # the bundled folder first
        for path in sorted(directory.glob(f"*{BANK_SUFFIX}")):
            for name in bank_names(path):
                if name in found:
                    log.info("%s: style %s is also in %s; it stays %s's", path, name,
                             found[name], found[name].name)
                found.setdefault(name, path)
    for directory in reversed(style_dirs()):
        for path in sorted(directory.glob(f"*{SUFFIX}")):
            if not path.name.endswith(BANK_SUFFIX):
                found[path.stem] = path
    return dict(sorted(found.items()))


def indexed_spec(name: str) -> str:
    """What load_style reads for an installed style's `name`: a file, or BANK:NAME for a
    bank's style; never the name read as a path (a bank style named '../../x' is a name).
    A name the index does not hold is returned as it is."""
    path = available_styles().get(name)
    if path is None:
        return name
    return f"{path}:{name}" if path.name.endswith(BANK_SUFFIX) else str(path)


_bank_cache: dict[Path, tuple[float, dict]] = {}


def read_bank(path: Path) -> dict:
    """A checked bank's dict, read once per file version: listing, switching and mixing its
    styles touch no disk after the first time."""
    path = Path(path)
    mtime = path.stat().st_mtime
    cached = _bank_cache.get(path)
    if cached is None or cached[0] != mtime:
        _bank_cache[path] = (mtime, _check_bank(path, read_checkpoint_file(path)))
    return _bank_cache[path][1]


def bank_names(path: Path) -> list[str]:
    """The style names a bank file holds; [] if unreadable."""
    try:
        return [s["name"] for s in read_bank(path)["styles"]]
    except (CheckpointError, OSError):
        return []


def bank_style(path: Path, name: str, mix: tuple[str, float] | None = None
               ) -> StyleCheckpoint | None:
    """Style `name` of the bank at `path`, optionally mixed with `amount` of another of its
    styles (mix = (other, amount), amount 0..1); None if the bank has no style `name`."""
    data = read_bank(path)
    names = [s["name"] for s in data["styles"]]
    if name not in names:
        return None
    style = style_from_bank(path, data, names.index(name))
    other, amount = mix or (name, 0.0)
    if not 0.0 <= amount <= 1.0:
        raise CheckpointError(f"a mix amount must be between 0 and 1, got {amount}")
    if other not in names:
        raise CheckpointError(f"cannot mix {name} with {other}: they are not in one bank "
                              f"({path.name} holds {', '.join(names)})")
    if amount > 0.0 and other != name:
        mods = [data["styles"][names.index(n)]["modulation"] for n in (name, other)]
        apply_modulation(style.model, mix_modulations(mods, [1.0 - amount, amount]))
        style.style["mix"] = [other, float(amount)]
    return style


DEFAULT_STYLE = "starry_night"
MAX_NAME = 64
STYLE_NAME = re.compile(rf"[^/\\:\x00-\x1f]{{1,{MAX_NAME}}}")  # a bank style's name


def resolve_style(name_or_path: str | os.PathLike) -> Path:
    """A path as given if it names a file, else the installed style of that name."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.is_file():
        return path
    styles = available_styles()
    if text in styles:
        return styles[text]
    if path.suffix or os.sep in text:
        raise CheckpointError(f"style checkpoint {text} not found")
    if not styles:
        raise CheckpointError(f"unknown style {text!r}: no styles are installed; pass a .pth "
                              "path, or train one with 'streamnst train'")
    raise CheckpointError(f"unknown style {text!r} (installed: {', '.join(styles)}); pass a "
                          ".pth path or run 'streamnst styles'")


def save_style(path: str | os.PathLike, model: nn.Module, arch: str, *, style: dict,
               training: dict | None = None) -> Path:
    """Write a style checkpoint atomically (a crash never leaves a half-written file)."""
    if arch not in ARCHITECTURES:
        raise CheckpointError(f"cannot save unknown architecture {arch!r}")
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "arch": arch,
        "arch_args": dict(getattr(model, "config", {})),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "style": dict(style),
        "training": dict(training or {}),
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def read_checkpoint_file(path: Path) -> object:
    """torch.load with weights_only=True, every failure turned into one clear line."""
    if not path.exists():
        raise CheckpointError(f"{path}: file not found")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc):
            raise CheckpointError(
                f"{path}: contains pickled Python objects, refused for safety (weights_only); "
                "re-save it as a plain state dict"
            ) from None
        raise CheckpointError(f"{path}: not a torch checkpoint (unreadable pickle data)") from None
    except (EOFError, RuntimeError, zipfile.BadZipFile, ValueError, OSError,
            struct.error) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: truncated or not a torch checkpoint ({msg})") from None


def _load_state(path: Path, model: nn.Module, state: dict, what: str) -> None:
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: state_dict is not a mapping of tensors")
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
    if wrong:
        k = wrong[0]
        problems.append(f"{len(wrong)} shape mismatches (e.g. {k}: file "
                        f"{tuple(state[k].shape)} vs network {tuple(own[k].shape)})")
    if problems:
        raise CheckpointError(f"{path}: does not match {what}: " + "; ".join(problems))
    model.load_state_dict(state)


def load_style(name_or_path: str | os.PathLike) -> StyleCheckpoint:
    """Load a style by name or path; any problem is a CheckpointError naming the file.
    A bank's path loads its first style, BANK.bank.pth:NAME its style NAME; a name loads
    that style from its bank."""
    in_bank = _bank_and_name(str(name_or_path))
    if in_bank:
        found = bank_style(*in_bank)
        if found is None:
            raise CheckpointError(f"{in_bank[0]} has no style {in_bank[1]!r} (it has "
                                  f"{', '.join(bank_names(in_bank[0]))})")
        return found
    path = resolve_style(name_or_path)
    data = read_checkpoint_file(path)
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: not a style checkpoint (a {type(data).__name__})")
    if data.get("format") == FORMAT:
        return _from_streamnst(path, data)
    if data.get("format") == BANK_FORMAT:
        bank = _check_bank(path, data)
        names = [s["name"] for s in bank["styles"]]
        want = str(name_or_path)
        return style_from_bank(path, bank, names.index(want) if want in names else 0)
    if looks_like_transformer_net(data):
        model = build_model("transformer_net")
        _load_state(path, model, clean_state_dict(data), "a pytorch/examples TransformerNet")
        model.eval()
        return StyleCheckpoint(name=path.stem, path=path, arch="transformer_net", arch_args={},
                               model=model, style={"name": path.stem})
    raise CheckpointError(
        f"{path}: not a streamnst style nor a pytorch/examples TransformerNet state dict"
    )


#: the range each numeric network argument may take in a file: a file asking for more
#: would allocate gigabytes before any check of its weights could fail
ARG_RANGES = {"width": (1, 256), "res_convs": (2, 64), "fine_blocks": (0, 16)}


def _bank_and_name(text: str) -> tuple[Path, str] | None:
    """BANK.bank.pth:NAME -> (that bank, NAME), where the bank file exists."""
    path, _, name = text.rpartition(":")
    if name and path.endswith(BANK_SUFFIX) and Path(path).expanduser().is_file():
        return Path(path).expanduser(), name
    return None


def _check_fields(path: Path, data: dict) -> dict:
    """The network arguments, once every metadata field has the type and range it needs."""
    for key in ("style", "training"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise CheckpointError(f"{path}: '{key}' must be a mapping, not a "
                                  f"{type(data[key]).__name__}")
    args = data.get("arch_args", {})
    if not isinstance(args, dict) or not all(isinstance(k, str) for k in args):
        raise CheckpointError(f"{path}: 'arch_args' must be a mapping of names")
    for key, value in args.items():
        if key in ARG_RANGES:
            low, high = ARG_RANGES[key]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise CheckpointError(f"{path}: {key}={value!r} is not a whole number from "
                                      f"{low} to {high}")
        elif not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise CheckpointError(f"{path}: argument {key}={value!r} is not a name or number")
    return args


def _from_streamnst(path: Path, data: dict) -> StyleCheckpoint:
    version = data.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(f"{path}: checkpoint version {version!r} is newer than this "
                              f"streamnst supports ({VERSION}); upgrade streamnst")
    _check_fields(path, data)
    data = migrate(data)
    arch, args = data.get("arch"), data["arch_args"]
    if arch not in ARCHITECTURES:
        raise CheckpointError(f"{path}: unknown architecture {arch!r}")
    try:
        model = build_model(arch, **args)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: bad arguments for {arch}: {exc}") from None
    _load_state(path, model, data.get("state_dict"), f"{arch}({_fmt_args(args)})")
    model.eval()
    style = dict(data.get("style") or {})
    return StyleCheckpoint(name=style.get("name") or path.stem, path=path, arch=arch,
                           arch_args=dict(args), model=model, style=style,
                           training=dict(data.get("training") or {}))


def _fmt_args(args: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(args.items()))


def save_bank(path: str | os.PathLike, bank: nn.Module, styles: list[dict],
              training: dict | None = None) -> Path:
    """Write a StyleBank with one metadata dict per style (name, image, thumbnail, shading,
    canvas), atomically."""
    if len(styles) != bank.styles:
        raise CheckpointError(f"the bank holds {bank.styles} styles, {len(styles)} described")
    payload = {
        "format": BANK_FORMAT, "version": VERSION, "arch": "unet",
        "arch_args": bank.unet_args(),
        "trunk": {k: v.detach().cpu().clone() for k, v in bank.trunk_state().items()},
        "styles": [{**meta, "modulation": bank.modulation(i)} for i, meta in enumerate(styles)],
        "training": dict(training or {}),
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def _check_bank(path: Path, data: object) -> dict:
    """The bank's dict if every field has the type and range a bank needs."""
    if not isinstance(data, dict) or data.get("format") != BANK_FORMAT:
        raise CheckpointError(f"{path}: not a style bank")
    version = data.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(f"{path}: bank version {version!r} is newer than this "
                              f"streamnst supports ({VERSION}); upgrade streamnst")
    styles = data.get("styles")
    if not isinstance(data.get("arch_args"), dict) or not isinstance(data.get("trunk"), dict) \
            or not isinstance(styles, list) or not styles:
        raise CheckpointError(f"{path}: a style bank needs arch_args, trunk and styles")
    _check_fields(path, data)
    data = migrate(data)
    seen: set[str] = set()
    for entry in styles:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) \
                or not isinstance(entry.get("modulation"), dict):
            raise CheckpointError(f"{path}: every bank style needs a name and a modulation")
        name = entry["name"]
        if not STYLE_NAME.fullmatch(name):
            raise CheckpointError(f"{path}: style name {name[:40]!r} is not a name (1 to "
                                  f"{MAX_NAME} characters, no / \\ or :)")
        if name in seen:
            raise CheckpointError(f"{path}: two styles are named {name!r}")
        seen.add(name)
        for norm, rows in entry["modulation"].items():
            if not isinstance(rows, torch.Tensor) or rows.dim() != 2 or rows.shape[0] != 4:
                raise CheckpointError(f"{path}: style {name}: modulation {norm} is not 4xC")
            if not torch.isfinite(rows).all():  # it painted black, and said nothing
                raise CheckpointError(f"{path}: style {name}: modulation {norm} holds NaN "
                                      "or infinity")
    for key, value in data["trunk"].items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and \
                not torch.isfinite(value).all():
            raise CheckpointError(f"{path}: trunk weight {key} holds NaN or infinity")
    return data


def style_from_bank(path: Path, data: dict, index: int) -> StyleCheckpoint:
    """Style `index` of a checked bank as a plain UNet style (its modulation in the norms)."""
    entry = data["styles"][index]
    args = data["arch_args"]
    state = {**data["trunk"], **modulation_state(entry["modulation"])}
    try:  # shapes first, on the meta device: wrong arguments allocated 2.9 GB to fail
        with torch.device("meta"):
            shapes = {k: v.shape for k, v in build_model("unet", **args).state_dict().items()}
        model_ok = all(k in state and tuple(state[k].shape) == tuple(v)
                       for k, v in shapes.items() if not k.endswith("num_batches_tracked"))
        if not model_ok:
            raise CheckpointError(f"{path}: its weights do not fit unet({_fmt_args(args)})")
        model = build_model("unet", **args)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: bad arguments for unet: {exc}") from None
    own = model.state_dict()
    for key in own:  # batch-norm step counters are not kept per style
        if key.endswith("num_batches_tracked"):
            state.setdefault(key, own[key])
    _load_state(path, model, state, f"unet({_fmt_args(args)})")
    model.eval()
    style = {k: v for k, v in entry.items() if k != "modulation"}
    return StyleCheckpoint(name=entry["name"], path=path, arch="unet", arch_args=dict(args),
                           model=model, style=style, training=dict(data.get("training") or {}),
                           bank=path)
