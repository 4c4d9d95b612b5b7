"""Offline commands: stylize a file, gatys reference renders, eval metrics, ONNX export,
bench."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from streamnst.cli.app import (
    blend_options,
    cli,
    console,
    dataclass_options,
    make_stylizer,
    out,
    progress_bar,
    stylizer_options,
)
from streamnst.core.signals import stop_requested
from streamnst.offline.gatys import INITS, OPTIMIZERS, GatysSettings


@cli.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("output_path", metavar="OUTPUT", type=click.Path(dir_okay=False, path_type=Path))
@stylizer_options
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--max-frames", type=click.IntRange(min=1), default=None,
              help="Stop a video after this many frames.")
@blend_options
def stylize(input_path, output_path, style, device, dtype, scale, max_side, threads, backend,
            shading, palette, canvas, keep_colors, keep_face, overwrite, max_frames, blend,
            strength):
    """Stylise an image or a video file (mp4/H.264, webm/VP9 or an animated gif, by suffix).

    Example: streamnst stylize clip.mkv clip_starry.mp4 --style starry_night
    """
    from streamnst.media.demo import resolve_media
    from streamnst.media.video import GIF_MAX_SIDE, GIF_SUFFIX
    from streamnst.offline.stylize_file import check_paths, render_file

    input_path = resolve_media(input_path)
    from streamnst.engine.faces import FaceKeeper
    from streamnst.engine.temporal import Blender, BlendSettings

    check_paths(input_path, output_path, overwrite)  # fail fast, before loading a model
    if output_path.suffix.lower() == GIF_SUFFIX and max_side is None:
        max_side = GIF_MAX_SIDE  # the GIF is written no larger: paint no more than that
    blender = Blender(BlendSettings(mode=blend, strength=strength))
    stylizer = make_stylizer(style, device, dtype, scale, threads, backend, max_side, shading,
                             canvas, keep_colors, keep_face, palette)
    faces = FaceKeeper()  # in line: a render is the same every time

    def process(image):
        return stylizer.stylize(image, blender, faces)

    info = stylizer.describe()
    console.print(f"style [bold]{escape(info['style'])}[/] ({info['arch']}) on "
                  f"{info['device']} "
                  f"{info['dtype']}")
    with stop_requested(restore=False) as stop, progress_bar() as progress:
        task = progress.add_task("stylising", total=None, info="")

        def on_start(total):
            progress.update(task, total=total)

        def on_frame(done):
            speed = progress.tasks[0].speed
            progress.update(task, completed=done, info=f"{speed:5.1f} fps" if speed else "")

        result = render_file(input_path, output_path, process, overwrite=overwrite,
                             max_frames=max_frames, on_start=on_start, on_frame=on_frame,
                             stop=stop)
    if result.interrupted:
        console.print(f"[yellow]interrupted[/]: {escape(str(result.output))} holds the first "
                      f"{result.frames} frames")
        sys.exit(130)
    console.print(f"wrote {escape(str(result.output))} ({result.frames} "
                  f"frame{'s' * (result.frames != 1)})")



@cli.command("eval")
@click.argument("stylized", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--input", "original", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="The original video the stylised one was made from.")
@click.option("--style", "style_image", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Style image: also report Gram and content distances.")
@click.option("--vgg", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="VGG weights for --style (default: the bundled ImageNet VGG19).")
@click.option("--max-frames", type=click.IntRange(min=2), default=None)
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a per-frame warping-error plot (PNG).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def evaluate(stylized, original, style_image, vgg, max_frames, plot, as_json):
    """Temporal consistency (warping error, Lai et al. 2018) and style metrics of a video.

    Example: streamnst eval clip_starry.mp4 --input clip.mp4 --json
    """
    import json

    from streamnst.media.demo import resolve_media
    from streamnst.offline.metrics import (
        plot_per_frame,
        read_frames,
        style_distances,
        warping_errors,
    )

    original = resolve_media(original)
    with console.status("measuring warping error"):
        report = warping_errors(read_frames(stylized, max_frames), read_frames(original,
                                                                                max_frames))
    result = report.summary()
    if style_image is not None:
        from streamnst.media.imageio import read_image
        from streamnst.nets.vgg import load_vgg

        with console.status("measuring style and content distances"):
            result.update(style_distances(read_frames(stylized, max_frames),
                                          read_frames(original, max_frames),
                                          read_image(style_image), load_vgg(vgg)))
    if plot:
        plot_per_frame(report, plot)
    if as_json:
        out.print_json(json.dumps(result))
        return
    table = Table(title=f"streamnst eval: {stylized.name}", show_header=False)
    for key, value in result.items():
        table.add_row(key, f"{value:.5g}" if isinstance(value, float) else str(value))
    out.print(table)


@cli.command()
@click.argument("style", metavar="STYLE")
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--opset", default=17, show_default=True, type=int)
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def export(style, output, opset, overwrite):
    """Export a style network to ONNX (dynamic height and width, fp32).

    Example: streamnst export starry_night starry_night.onnx
    """
    from streamnst.nets.checkpoint_io import load_style
    from streamnst.nets.onnx_io import check_export_path, export_onnx

    check_export_path(output, overwrite)  # before loading the style
    path = export_onnx(load_style(style), output, opset, overwrite)
    console.print(f"wrote {escape(str(path))} ({path.stat().st_size / 1e6:.1f} MB); input 'image' "
                  "1x3xHxW float32 in [0,1], H and W multiples of the network stride")


@cli.command()
@click.argument("content", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("style_image", metavar="STYLE", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@dataclass_options(GatysSettings, frozenset({"content_layers", "style_layers"}), helps={
    "temporal": "Ruder et al.'s temporal loss on video frames.",
    "resize": "Longest side the optimisation runs at.",
    "style_size": "Longest side of the style image (default: --resize).",
    "init": "Start of each video frame after the first (the first starts from content "
            "unless random).",
    "lr": "Adam step size.",
    "tolerance": "Early stop when the loss improves less than this (relative) ...",
    "patience": "... over this many iterations."},
    choices={"init": INITS, "optimizer": OPTIMIZERS}, types={"style_size": int})
@click.option("--content-layers", default="relu4_2", show_default=True)
@click.option("--style-layers", default="relu1_1,relu2_1,relu3_1,relu4_1,relu5_1",
              show_default=True)
@click.option("--vgg", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A torchvision VGG16/VGG19 state dict (default: the bundled ImageNet VGG19).")
@click.option("--device", default="auto", show_default=True)
@click.option("--max-frames", type=click.IntRange(min=1), default=None)
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT (finished frames are reused).")
def gatys(content, style_image, output, content_layers, style_layers, vgg, device,
          max_frames, overwrite, **options):
    """Reference render by optimisation (Gatys et al.), with a temporal loss for videos.

    Rerunning the same command continues a video after its last finished frame.

    Example: streamnst gatys clip.mp4 styles/vangogh_starry_night_1889.jpg ref.mp4 --resize 256
    """
    from streamnst.core.devices import pick_device
    from streamnst.core.errors import OutputError
    from streamnst.media.demo import resolve_media
    from streamnst.media.imageio import is_image_path, read_image
    from streamnst.nets.vgg import load_vgg
    from streamnst.offline.gatys import Gatys, render_gatys
    from streamnst.offline.stylize_file import check_paths

    content = resolve_media(content)
    if output.exists() and not overwrite:
        raise OutputError(f"{output} exists; pass --overwrite to replace it")
    check_paths(content, output, overwrite=True)
    settings = GatysSettings(content_layers=tuple(content_layers.split(",")),
                             style_layers=tuple(style_layers.split(",")), **options)
    engine = Gatys(read_image(style_image), load_vgg(vgg, settings.layers), settings,
                   pick_device(device))
    per_frame = settings.first_iterations if is_image_path(content) else settings.iterations
    with progress_bar() as progress:
        frames = progress.add_task("frames", total=None, info="")
        iters = progress.add_task("iterations", total=per_frame, info="")

        def on_iter(i, losses):
            info = " ".join(f"{k}={v:.3g}" for k, v in losses.items())
            progress.update(iters, completed=i, info=info)

        def on_frame(i, total, reused):
            progress.update(frames, completed=i, total=total,
                            info="(reused)" if reused else "")
            progress.update(iters, completed=0, total=settings.iterations)

        path, done, reused = render_gatys(content, output, engine, max_frames=max_frames,
                                          on_frame=on_frame, on_iter=on_iter)
    console.print(f"wrote {escape(str(path))} ({done} frames rendered" +
                  (f", {reused} reused from an earlier run)" if reused else ")"))
    if done:  # the last frame optimised: did it converge, run out of iterations, or fail?
        console.print(f"last frame: {escape(str(engine.stop_reason))}", highlight=False)



@cli.command()
@click.option("--resolution", "-r", "resolutions", multiple=True,
              type=click.Choice(["360p", "720p", "1080p"]), default=("360p", "720p"),
              show_default=True, help="Frame sizes: 640x360, 1280x720, 1920x1080.")
@click.option("--width", "widths", multiple=True, type=int, default=(16,), show_default=True,
              help="U-Net widths to measure.")
@click.option("--network", "network_names", multiple=True,
              help="Only these networks (unet-wN: today's layout; unet-wN-full: the first "
                   "releases'; transformer_net).")
@click.option("--backend", "backend_names", multiple=True,
              help="Only these backends (eager-fp32, channels_last, bf16, "
                   "bf16+channels_last, onnx-fp32, onnx-int8).")
@click.option("--repeat", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--warmup", default=2, show_default=True, type=click.IntRange(min=0))
@click.option("--device", default="auto", show_default=True)
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
@click.option("--size", "custom", default=None, metavar="WxH",
              help="Measure one custom size instead (e.g. 64x48).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def bench(resolutions, widths, network_names, backend_names, repeat, warmup, device, threads,
          custom, as_json):
    """Measure stylisation speed of each network and backend, side by side in one run.

    Example: streamnst bench -r 360p -r 720p --json
    """
    import json

    import torch

    from streamnst.core.errors import InputError
    from streamnst.offline.bench import rows_as_dicts, run_bench

    if threads:
        torch.set_num_threads(threads)
    sizes = None
    if custom:
        try:
            w, h = (int(v) for v in custom.lower().split("x"))
        except ValueError:
            raise InputError(f"--size must look like 640x360, got {custom!r}") from None
        sizes, resolutions = {custom: (h, w)}, (custom,)
    with console.status("benchmarking"):
        rows = run_bench(list(resolutions), tuple(widths), repeat, warmup, device,
                         list(backend_names) or None, list(network_names) or None, sizes)
    meta = {"device": device, "threads": torch.get_num_threads(), "repeat": repeat,
            "warmup": warmup, "torch": torch.__version__}
    if as_json:
        out.print_json(json.dumps({**meta, "results": rows_as_dicts(rows)}))
        return
    from rich import box

    # fits 80 columns: no vertical rules, short headers, a legend under the table
    table = Table(title=f"streamnst bench: ms per frame ({meta['threads']} threads, "
                        f"{repeat} runs)", box=box.SIMPLE_HEAD, pad_edge=False,
                  padding=(0, 1))
    for col in ("network", "backend", "size", "median", "p95", "fps", "vs TN"):
        table.add_column(col, no_wrap=True, justify="left" if col in (
            "network", "backend", "size") else "right")
    for r in rows:
        speed = f"{r.speedup_vs_transformer_net:.1f}x" if r.speedup_vs_transformer_net else "-"
        table.add_row(r.network, r.backend, r.resolution, f"{r.median_ms:.1f}",
                      f"{r.p95_ms:.1f}", f"{r.fps:.1f}", speed)
    out.print(table)
    out.print("vs TN: how many times faster than Johnson et al.'s TransformerNet on its "
              "fastest backend here; unet-wN: today's layout, unet-wN-full: the first "
              "releases'.", highlight=False)
