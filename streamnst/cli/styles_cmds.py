"""Style commands: list and inspect installed styles, train a new one."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from streamnst.cli.app import cli, console, dataclass_options, out, progress_bar
from streamnst.core.errors import StreamNSTError


def _show_style(ckpt) -> None:
    """One style's file, painting, training data and recipe, and how to retrain it."""
    t = ckpt.training
    for label, value in (("style", ckpt.name), ("file", ckpt.path),
                         ("painting", ckpt.style.get("image", "?"))):
        out.print(f"{label:<10} {value}", highlight=False, soft_wrap=True)
    if not t:
        out.print("no training settings recorded in this file", highlight=False)
        return
    if "data_images" in t:
        data = (f"{t['data_images']} photos in a folder named '{t['data']}' "
                f"(sha256 {t['data_sha256']})")
    else:  # files from before the fingerprint: the folder name only
        data = f"photos in a folder named '{t.get('data', '?')}' (count and hash not recorded)"
    out.print(f"{'trained on':<10} {data}", highlight=False, soft_wrap=True)
    out.print("recipe:", highlight=False)
    skip = {"data", "data_images", "data_sha256", "style_image", "name"}
    for key, value in sorted(t.items()):
        if key not in skip:
            out.print(f"  {key:<20} {value}", highlight=False)
    out.print("retrain with (PHOTOS: your folder of training photos):", highlight=False)
    from streamnst.training.config import retrain_command

    out.print("  " + retrain_command(ckpt.name, t), highlight=False, soft_wrap=True)
    out.print("The same photos (same count and hash), seed, torch version and machine give "
              "the same network again; other photos or hardware give a close one, not an "
              "identical one.", highlight=False)


@cli.command()
@click.argument("name", required=False)
def styles(name):
    """List installed styles, or show one style's training recipe (NAME).

    The bundled checkpoints/ and your own style directory are searched.
    """
    from streamnst.nets.checkpoint_io import available_styles, bundled_dir, load_style, user_dir

    if name:
        _show_style(load_style(name))
        return

    table = Table(title="streamnst styles")
    for col in ("name", "architecture", "params", "size", "where"):
        table.add_column(col)
    found = available_styles()
    for name, path in found.items():
        try:
            ckpt = load_style(path)
            arch = f"{ckpt.arch}({', '.join(f'{k}={v}' for k, v in ckpt.arch_args.items())})"
            params = f"{ckpt.num_params / 1e6:.2f} M"
        except StreamNSTError as exc:
            arch, params = Text(f"unreadable: {exc}", style="red"), "-"
        where = "bundled" if path.parent == bundled_dir() else str(path.parent)
        # names and paths are the user's: Text, never read as rich markup ("[/red]x")
        table.add_row(Text(name), Text(arch) if isinstance(arch, str) else arch, params,
                      f"{path.stat().st_size / 1e6:.1f} MB", Text(where))
    out.print(table)
    if not found:
        console.print(f"no styles installed; train one with 'streamnst train' into "
                      f"{escape(str(user_dir()))}")



def _train_options(f):
    """One flag per TrainConfig field, defaults taken from TrainConfig itself."""
    from streamnst.training.config import PLACE_FIELDS, TrainConfig

    # the tuple-valued layer settings have options of their own (comma-separated)
    skip = PLACE_FIELDS | {"style_layers", "style_layer_weights"}
    return dataclass_options(TrainConfig, frozenset(skip))(f)


def _run_options(f):
    """The options `train` and `train-bank` share: where, resume, layers, loss network."""
    for option in reversed((
        click.option("--data", default=None,
                     type=click.Path(file_okay=False, path_type=Path),
                     help="Folder of training photos (searched recursively); required but "
                          "with --quick, which trains on frames that ship with streamnst."),
        click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
                     help="Checkpoint to write (rewritten at every checkpoint)."),
        click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path),
                     default=None, help="Training state, losses.csv and sample grids "
                                        "(default: OUT's stem + .run)."),
        click.option("--resume", is_flag=True, help="Continue the run in --run-dir exactly."),
        click.option("--style-layers", default="relu1_1,relu2_1,relu3_1,relu4_1",
                     show_default=True),
        click.option("--style-layer-weights", default="0.5,1,1,1", show_default=True),
        click.option("--vgg", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="A torchvision VGG16/VGG19 state dict (default: the bundled "
                          "ImageNet VGG19)."),
        click.option("--device", default="auto", show_default=True),
        click.option("--dtype", default="auto", show_default=True,
                     type=click.Choice(["auto", "fp32", "bf16", "fp16"])),
    )):
        f = option(f)
    return _train_options(f)


def _finite(value: float, name: str) -> float:
    """click's FloatRange lets NaN through (every comparison with it is false)."""
    import math

    if not math.isfinite(value):
        raise click.BadParameter(f"{name} must be a number, got {value}")
    return value


def _config(style_image, data, out, run_dir, name, resume, style_layers, style_layer_weights,
            vgg, device, dtype, **settings):
    from streamnst.core.errors import InputError
    from streamnst.training.config import TrainConfig, check_run_dir

    try:
        weights = tuple(float(w) for w in style_layer_weights.split(","))
    except ValueError:
        raise InputError("--style-layer-weights must be comma-separated numbers") from None
    config = TrainConfig(style_image=str(style_image), data=str(data), out=str(out),
                         run_dir=str(run_dir or ""), name=name,
                         style_layers=tuple(style_layers.split(",")),
                         style_layer_weights=weights, vgg=str(vgg) if vgg else None,
                         device=device, dtype=dtype, **settings)
    if Path(out).exists() and not resume and not (config.run_path / "state.pth").exists():
        console.print(f"note: {escape(str(out))} exists and will be replaced by this run's "
                      "checkpoints")
    check_run_dir(config, resume)
    return config


@cli.command()
@click.argument("style_image", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", default="", help="Style name (default: the image's file name).")
@click.option("--quick", is_flag=True,
              help="Minutes, not hours: fit the painting's modulation and output conv on the "
                   "shared bank's network, starting from its nearest style, with the bank's "
                   "recipe, steering its stabilisation by its live warp (the recipe options "
                   "below are not used); --data is optional.")
@click.option("--minutes", default=4.0, show_default=True, type=click.FloatRange(0.05, 120),
              callback=lambda ctx, param, v: _finite(v, "--minutes"),
              help="--quick: how long to train (start-up comes on top: about 20 s).")
@click.option("--bank", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="--quick: the style bank to grow from (default: the bundled gallery).")
@_run_options
def train(style_image, resume, quick, minutes, bank, **options):
    """Train a style network on a painting: noise- and motion-stabilised, resumable.

    Example: streamnst train styles/hokusai_great_wave_c1831.jpg --data photos/ --out wave.pth

    Example: streamnst train my_painting.jpg --quick --out mine.pth
    """
    from streamnst.core.errors import InputError
    from streamnst.training.trainer import Trainer

    if quick:
        _train_quick(style_image, options, minutes, bank)
        return
    if options["data"] is None:
        raise InputError("--data FOLDER of training photos is needed (or use --quick)")
    config = _config(style_image, resume=resume, **options)
    _cpu_threads()
    with console.status("loading photos and the loss network"):
        trainer = Trainer(config)
    _run_training(trainer, resume)


@cli.command("train-bank")
@click.argument("style_list", type=click.Path(dir_okay=False, path_type=Path))
@_run_options
def train_bank(style_list, resume, **options):
    """Train one network for many paintings (a style bank, OUT ending in .bank.pth).

    STYLE_LIST has a line per painting: NAME PAINTING [STYLE_WEIGHT], paintings relative to
    the list. Each step trains one painting in turn; the trunk is shared.

    Example: streamnst train-bank styles/bank.txt --data photos/ --out gallery.bank.pth
    """
    from streamnst.core.errors import InputError
    from streamnst.nets.checkpoint_io import BANK_SUFFIX
    from streamnst.training.bank import BankTrainer, read_style_list

    if not str(options["out"]).endswith(BANK_SUFFIX):
        raise InputError(f"--out must end in {BANK_SUFFIX} (so 'streamnst styles' lists "
                         "every style it holds)")
    if options["data"] is None:
        raise InputError("--data FOLDER of training photos is needed")
    styles = read_style_list(style_list)
    config = _config(style_list, name="", resume=resume, **options)
    _cpu_threads()
    with console.status("loading photos, paintings and the loss network"):
        trainer = BankTrainer(config, styles)
    _run_training(trainer, resume)


def _train_quick(painting: Path, options: dict, minutes: float, bank: Path | None) -> None:
    """`train --quick`: the painting's modulation and output conv on the bank's trunk."""
    from streamnst.core.atomic import check_writable
    from streamnst.media.imageio import read_image
    from streamnst.training.quick import QuickTrainer, plan

    read_image(painting)  # a clear error for a missing or broken image, before anything else
    out = Path(options["out"])
    check_writable(out)  # before the minutes of training, not after them
    if out.exists():
        console.print(f"note: {escape(str(out))} exists and will be replaced")
    _cpu_threads()
    with console.status("loading the bank and the loss network"):
        quick = plan(painting, options["out"], options["data"], bank,
                     device=options["device"], dtype=options["dtype"])
        config = quick.config.replace(name=options["name"] or "")
        trainer = QuickTrainer(config, quick.vgg)
    console.print(f"starting from {escape(quick.nearest)} (the bank's nearest style), training "
                  f"{trainer.trainable} numbers for {minutes:g} min")
    with progress_bar() as progress:
        task = progress.add_task("learning", total=100, completed=0, info="")

        def on_step(step, fraction, losses):
            progress.update(task, completed=round(100 * fraction),
                            info=f"step {step} style={losses['style']:.3f}")

        written = trainer.run_for(60.0 * minutes, on_step)
    for fraction, ratio, steadiness in trainer.looks:
        console.print(f"at {fraction:.0%}: live warp {ratio:.2f}x the input's, stabilisation "
                      f"now {steadiness:.2f}x")
    console.print(f"wrote {escape(str(written))} after {trainer.step} steps; try it: "
                  f"streamnst live --style {written}")


def _cpu_threads() -> None:
    """torch's threads for training on a CPU: the cores other programs leave idle now."""
    import torch

    from streamnst.core.threads import offline_threads

    torch.set_num_threads(offline_threads())


def _run_training(trainer, resume: bool) -> None:
    config = trainer.config
    if not trainer.dist.is_main:  # torchrun: rank 0 reports for everyone
        if trainer.run(resume=resume).interrupted:
            sys.exit(130)
        return
    with progress_bar() as progress:
        task = progress.add_task("training", total=config.steps, completed=0, info="")

        def on_step(stats):
            parts = " ".join(f"{k}={v:.3f}" for k, v in stats.losses.items() if v)
            progress.update(task, completed=stats.step,
                            info=f"{parts} {stats.images_per_s:.1f} img/s")

        result = trainer.run(resume=resume, on_step=on_step)
    grid = result.samples[-1] if result.samples else None
    if result.interrupted:
        console.print(f"[yellow]interrupted[/] at step {result.step}: state saved in "
                      f"{escape(str(config.run_path))}; add --resume to continue")
        sys.exit(130)
    console.print(f"wrote {escape(str(result.checkpoint))} after {result.step} steps"
                  + (f"; samples: {escape(str(grid))}" if grid else ""))
