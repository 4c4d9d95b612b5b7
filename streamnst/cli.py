"""The `streamnst` command line: wires the parts together, holds no logic of its own."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from .errors import StreamNSTError

# the live filter stylises at most 640 px wide (360p): a 720p camera costs what 360p does
LIVE_MAX_SIDE = 640

console = Console(stderr=True)
out = Console()


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(message)s", datefmt="[%X]",
                        handlers=[RichHandler(console=console, show_path=False)], force=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="streamnst")
def cli(verbose: int) -> None:
    """Real-time, flicker-free neural style transfer for cameras, screens and files."""
    _setup_logging(verbose)


class ScaleParam(click.ParamType):
    """A number from 0.1 to 1, or "auto" (live only: adapt to keep the frame rate)."""

    name = "SCALE|auto"

    def convert(self, value, param, ctx):
        if value is None or value == "auto" or isinstance(value, float):
            return value
        try:
            return float(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number from 0.1 to 1 nor 'auto'", param, ctx)


def stylizer_options(f):
    """Options shared by every command that runs a style network."""
    f = click.option("--style", "-s", default=None, metavar="NAME|PATH",
                     help="Installed style name or .pth checkpoint (default: starry_night).")(f)
    f = click.option("--device", default="auto", show_default=True,
                     help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps.")(f)
    f = click.option("--dtype", default="auto", show_default=True,
                     type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
                     help="auto: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32.")(f)
    f = click.option("--scale", default=None, type=ScaleParam(),
                     help="Stylise at this fraction of the working size (0.1-1), resize "
                          "back. live: auto by default (steps between 1 and 0.5 to keep up "
                          "with --fps-target); elsewhere 1.")(f)
    f = click.option("--max-side", default=None, type=click.IntRange(min=0),
                     help="Longest side the network works at; bigger frames are stylised "
                          f"smaller and resized back (live: {LIVE_MAX_SIDE} by default; "
                          "0 or unset elsewhere: no cap).")(f)
    f = click.option("--threads", default=None, type=int, help="CPU threads for inference.")(f)
    f = click.option("--backend", default="torch", show_default=True,
                     type=click.Choice(["torch", "onnx"]),
                     help="torch, or onnx (ONNX Runtime, fp32; CUDA/TensorRT when installed).")(f)
    return f


def make_stylizer(style, device, dtype, scale, threads, backend="torch", max_side=None):
    from .checkpoints import DEFAULT_STYLE
    from .stylizer import Stylizer, StylizerSettings

    if scale == "auto":
        raise StreamNSTError("--scale auto adapts to a live frame rate, so only `streamnst "
                             "live` takes it; give a number from 0.1 to 1")
    settings = StylizerSettings(device=device, dtype=dtype,
                                scale=1.0 if scale is None else scale, threads=threads,
                                backend=backend, max_side=max_side or None)
    return Stylizer(style or DEFAULT_STYLE, settings)


def blend_options(f):
    f = click.option("--blend", default="flow", show_default=True,
                     type=click.Choice(["off", "ema", "flow"]),
                     help="Frame-to-frame blending: flow-guided (no ghosts), plain ema, or off.")(f)
    f = click.option("--strength", default=0.7, show_default=True, type=float,
                     help="Weight of the previous output in the blend (0-0.95).")(f)
    return f


@cli.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("output_path", metavar="OUTPUT", type=click.Path(dir_okay=False, path_type=Path))
@stylizer_options
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--max-frames", type=click.IntRange(min=1), default=None,
              help="Stop a video after this many frames.")
@blend_options
def stylize(input_path, output_path, style, device, dtype, scale, max_side, threads, backend,
            overwrite, max_frames, blend, strength):
    """Stylise an image or a video file (mp4/H.264, webm/VP9 or an animated gif, by suffix).

    Example: streamnst stylize clip.mkv clip_starry.mp4 --style starry_night
    """
    from .demo import resolve_media
    from .render import check_paths, render_file

    input_path = resolve_media(input_path)
    from .temporal import Blender, BlendSettings

    check_paths(input_path, output_path, overwrite)  # fail fast, before loading a model
    blender = Blender(BlendSettings(mode=blend, strength=strength))
    stylizer = make_stylizer(style, device, dtype, scale, threads, backend, max_side)

    def process(image):
        return stylizer.stylize(image, blender)

    info = stylizer.describe()
    console.print(f"style [bold]{info['style']}[/] ({info['arch']}) on {info['device']} "
                  f"{info['dtype']}")
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[fps]}"),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console) as progress:
        task = progress.add_task("stylising", total=None, fps="")

        def on_start(total):
            progress.update(task, total=total)

        def on_frame(done):
            speed = progress.tasks[0].speed
            progress.update(task, completed=done, fps=f"{speed:5.1f} fps" if speed else "")

        result = render_file(input_path, output_path, process, overwrite=overwrite,
                             max_frames=max_frames, on_start=on_start, on_frame=on_frame)
    if result.interrupted:
        console.print(f"[yellow]interrupted[/]: {result.output} holds the first "
                      f"{result.frames} frames")
        sys.exit(130)
    console.print(f"wrote {result.output} ({result.frames} frame{'s' * (result.frames != 1)})")


@cli.command()
@click.option("--source", "source_spec", default=None, metavar="SPEC",
              help="webcam[:N], screen[:N][@X,Y,W,H], demo, pattern[:WxH@FPS], a video or an "
                   "image file, or webrtc (a browser's camera: open the page, click 'use my "
                   "camera'; it gets the painted stream back) (default: webcam if one "
                   "answers, else demo).")
@click.option("--output", "-o", "outputs", multiple=True, metavar="SPEC",
              help="vcam[:DEVICE][@BACKEND], window, webrtc, null or a .mp4 path; repeatable "
                   "(default: vcam).")
@stylizer_options
@blend_options
@click.option("--max-frames", type=click.IntRange(min=1), default=None,
              help="Stop after this many output frames.")
@click.option("--duration", type=click.FloatRange(min=0.1), default=None,
              help="Stop after this many seconds.")
@click.option("--overwrite", is_flag=True, help="Replace an existing .mp4 recording.")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON summary on stdout at the end (fps, latency, drops...).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="WebRTC server address (other than loopback requires the printed token).")
@click.option("--port", default=8080, show_default=True, type=int, help="WebRTC server port.")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="Also answer requests for this Host name (a reverse proxy's); by default "
                   "only IP addresses and localhost with our port (against DNS rebinding).")
@click.option("--max-viewers", default=4, show_default=True, type=click.IntRange(min=1),
              help="WebRTC viewer limit.")
@click.option("--fps-target", type=click.FloatRange(min=1, max=240), default=None,
              help="Frame rate --scale auto keeps up with (default: the source's, at most 30).")
def live(source_spec, outputs, style, device, dtype, scale, max_side, threads, backend, blend,
         strength, max_frames, duration, overwrite, as_json, host, port, allow_hosts,
         max_viewers, fps_target):
    """Run the live filter: capture, stylise, blend, and send to every output.

    Example: streamnst live --source webcam --output vcam --style great_wave
    """
    import json
    import threading

    from rich.live import Live

    from .devices import limit_malloc_arenas
    from .live_ui import handle_key, key_reader, status_table, window_overlay
    from .pipeline import Pipeline
    from .sinks import WindowSink, open_sink
    from .sources import default_source_spec, open_source
    from .temporal import BlendSettings
    from .webrtc import WebRTCSink

    limit_malloc_arenas()  # a long-running process: keep RSS from creeping
    blend_settings = BlendSettings(mode=blend, strength=strength)
    if not source_spec:
        from .demo import DEMO_NAME

        source_spec = default_source_spec()
        if source_spec == DEMO_NAME:
            console.print("no webcam found; playing the bundled demo clip (choose with "
                          "--source webcam:N, screen or a video file)", highlight=False,
                          soft_wrap=True)
    specs = list(outputs) or ["vcam"]
    server = None
    if source_spec == "webrtc":  # a browser's camera; it gets the painted stream back
        from .webrtc import WebRTCServer
        from .webrtc_source import WebRTCSource

        server = WebRTCServer(host, port, max_viewers, allow_hosts=allow_hosts)
        source = WebRTCSource(server)
        specs = [spec for spec in specs if spec != "webrtc"] + ["webrtc"]
    else:
        source = open_source(source_spec)
    sinks = []
    for spec in specs:
        if spec == "webrtc":
            sinks.append(WebRTCSink(host=host, port=port, max_viewers=max_viewers,
                                    allow_hosts=allow_hosts, server=server))
        else:
            sinks.append(open_sink(spec, overwrite=overwrite))
    max_side = LIVE_MAX_SIDE if max_side is None else max_side
    auto = scale in (None, "auto")
    stylizer = make_stylizer(style, device, dtype, None if auto else scale, threads, backend,
                             max_side)

    def factory(name):
        return make_stylizer(name, device, dtype, stylizer.settings.scale, threads, backend,
                             max_side)

    pipeline = Pipeline(source, stylizer, sinks, blend_settings, max_frames, duration, factory,
                        auto_scale=auto, target_fps=fps_target)
    for sink in sinks:
        if isinstance(sink, WebRTCSink):
            sink.attach(pipeline)
        if isinstance(sink, WindowSink):
            sink.overlay = lambda: window_overlay(pipeline)
    stop = threading.Event()
    pipeline.start()
    for problem in pipeline.sink_problems:
        console.print(f"[yellow]warning:[/] {problem.message}", highlight=False,
                      soft_wrap=True)
    for sink in sinks:  # the token goes to the user's terminal, never into a log
        if isinstance(sink, WebRTCSink) and sink.server.token:
            console.print(f"open {sink.server.url}", highlight=False, soft_wrap=True)
    try:
        with key_reader() as read_key, Live(status_table(pipeline), console=console,
                                            refresh_per_second=4,
                                            transient=not console.is_terminal) as view:
            while not pipeline.wait(0.05) and not stop.is_set():
                key = read_key()
                if key:
                    handle_key(key, pipeline, stop)
                view.update(status_table(pipeline))
    except KeyboardInterrupt:
        pass
    # shutting down: a second Ctrl+C or SIGTERM must not cut the recordings' finish short
    # (every join in stop() has a timeout, so this cannot hang)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    summary = pipeline.stop()
    if as_json:
        out.print_json(json.dumps(summary))
    else:
        console.print(f"{summary['frames_out']} frames at {summary['fps']:.1f} fps, latency p50 "
                      f"{summary['latency_p50_ms']:.0f} ms / p95 {summary['latency_p95_ms']:.0f}"
                      f" ms, dropped {summary['dropped']}")


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

    from .demo import resolve_media
    from .metrics import plot_per_frame, read_frames, style_distances, warping_errors

    original = resolve_media(original)
    with console.status("measuring warping error"):
        report = warping_errors(read_frames(stylized, max_frames), read_frames(original,
                                                                                max_frames))
    result = report.summary()
    if style_image is not None:
        from .imageio import read_image
        from .vgg import load_vgg

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
    from .checkpoints import load_style
    from .errors import OutputError
    from .onnx_backend import export_onnx

    if output.exists() and not overwrite:
        raise OutputError(f"{output} exists; pass --overwrite to replace it")
    if output.suffix.lower() != ".onnx":
        raise OutputError(f"{output}: use an .onnx file name")
    path = export_onnx(load_style(style), output, opset)
    console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB); input 'image' "
                  "1x3xHxW float32 in [0,1], H and W multiples of the network stride")


@cli.command()
@click.argument("content", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("style_image", metavar="STYLE", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--content-weight", default=1.0, show_default=True, type=float)
@click.option("--style-weight", default=10.0, show_default=True, type=float)
@click.option("--tv-weight", default=0.0, show_default=True, type=float)
@click.option("--temporal/--no-temporal", default=True, show_default=True,
              help="Ruder et al.'s temporal loss on video frames.")
@click.option("--temporal-weight", default=50.0, show_default=True, type=float)
@click.option("--resize", default=512, show_default=True, type=int,
              help="Longest side the optimisation runs at.")
@click.option("--style-size", default=None, type=int, help="Longest side of the style image.")
@click.option("--init", default="prev_warped", show_default=True,
              type=click.Choice(["content", "random", "prev_warped"]),
              help="Start of each video frame after the first (the first starts from content "
                   "unless random).")
@click.option("--iterations", default=100, show_default=True, type=int)
@click.option("--first-iterations", default=200, show_default=True, type=int)
@click.option("--optimizer", default="lbfgs", show_default=True,
              type=click.Choice(["lbfgs", "adam"]))
@click.option("--lr", default=0.02, show_default=True, type=float, help="Adam step size.")
@click.option("--tolerance", default=1e-4, show_default=True, type=float,
              help="Early stop when the loss improves less than this (relative) ...")
@click.option("--patience", default=10, show_default=True, type=int,
              help="... over this many iterations.")
@click.option("--content-layers", default="relu4_2", show_default=True)
@click.option("--style-layers", default="relu1_1,relu2_1,relu3_1,relu4_1,relu5_1",
              show_default=True)
@click.option("--vgg", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A torchvision VGG16/VGG19 state dict (default: the bundled ImageNet VGG19).")
@click.option("--device", default="auto", show_default=True)
@click.option("--max-frames", type=click.IntRange(min=1), default=None)
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT (finished frames are reused).")
def gatys(content, style_image, output, content_weight, style_weight, tv_weight, temporal,
          temporal_weight, resize, style_size, init, iterations, first_iterations, optimizer,
          lr, tolerance, patience, content_layers, style_layers, vgg, device, max_frames,
          overwrite):
    """Reference render by optimisation (Gatys et al.), with a temporal loss for videos.

    Rerunning the same command continues a video after its last finished frame.

    Example: streamnst gatys clip.mp4 styles/vangogh_starry_night_1889.jpg ref.mp4 --resize 256
    """
    from .demo import resolve_media
    from .devices import pick_device
    from .errors import OutputError
    from .gatys import Gatys, GatysSettings, render_gatys
    from .imageio import is_image_path, read_image
    from .render import check_paths
    from .vgg import load_vgg

    content = resolve_media(content)
    if output.exists() and not overwrite:
        raise OutputError(f"{output} exists; pass --overwrite to replace it")
    check_paths(content, output, overwrite=True)
    settings = GatysSettings(content_weight, style_weight, tv_weight, temporal_weight, temporal,
                             resize, style_size, init, iterations, first_iterations, optimizer,
                             lr, tolerance, patience, tuple(content_layers.split(",")),
                             tuple(style_layers.split(",")))
    engine = Gatys(read_image(style_image), load_vgg(vgg, settings.layers), settings,
                   pick_device(device))
    per_frame = first_iterations if is_image_path(content) else iterations
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console) as progress:
        frames = progress.add_task("frames", total=None, info="")
        iters = progress.add_task("iterations", total=per_frame, info="")

        def on_iter(i, losses):
            info = " ".join(f"{k}={v:.3g}" for k, v in losses.items())
            progress.update(iters, completed=i, info=info)

        def on_frame(i, total, reused):
            progress.update(frames, completed=i, total=total,
                            info="(reused)" if reused else "")
            progress.update(iters, completed=0, total=iterations)

        path, done, reused = render_gatys(content, output, engine, max_frames=max_frames,
                                          on_frame=on_frame, on_iter=on_iter)
    console.print(f"wrote {path} ({done} frames rendered" +
                  (f", {reused} reused from an earlier run)" if reused else ")"))
    if done:  # the last frame optimised: did it converge, run out of iterations, or fail?
        console.print(f"last frame: {engine.stop_reason}", highlight=False)


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
    out.print("  " + retrain_command(ckpt.name, t), highlight=False, soft_wrap=True)
    out.print("The same photos (same count and hash), seed, torch version and machine give "
              "the same network again; other photos or hardware give a close one, not an "
              "identical one.", highlight=False)


def retrain_command(name: str, training: dict) -> str:
    """The `streamnst train` command that reproduces a checkpoint's recorded recipe."""
    from dataclasses import fields

    from .training.trainer import TrainConfig

    recipe = {f.name for f in fields(TrainConfig)} - {
        "style_image", "data", "out", "run_dir", "name", "vgg", "device", "dtype",
        "tensorboard", "num_samples"}
    image = Path(str(training.get("style_image") or "STYLE_IMAGE")).name
    parts = ["streamnst train", f"styles/{image}",
             "--data PHOTOS", f"--out {name}.pth", f"--name {name}"]
    for key in sorted(recipe & training.keys()):
        value = training[key]
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        parts.append(f"--{key.replace('_', '-')} {value}")
    return " ".join(parts)


@cli.command()
@click.argument("name", required=False)
def styles(name):
    """List installed styles, or show one style's training recipe (NAME).

    The bundled checkpoints/ and your own style directory are searched.
    """
    from .checkpoints import available_styles, bundled_dir, load_style, user_dir

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
            arch, params = f"[red]unreadable: {exc}[/]", "-"
        where = "bundled" if path.parent == bundled_dir() else str(path.parent)
        table.add_row(name, arch, params, f"{path.stat().st_size / 1e6:.1f} MB", where)
    out.print(table)
    if not found:
        console.print(f"no styles installed; train one with 'streamnst train' into {user_dir()}")


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
                   "bf16+channels_last, onnx-fp32).")
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

    from .bench import rows_as_dicts, run_bench
    from .errors import InputError

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


def _train_options(f):
    """One flag per TrainConfig field, defaults taken from TrainConfig itself."""
    from dataclasses import MISSING, fields

    from .training.trainer import TrainConfig

    skip = {"style_image", "data", "out", "style_layers", "style_layer_weights", "vgg",
            "device", "dtype", "run_dir", "name"}
    for fld in reversed(fields(TrainConfig)):
        if fld.name in skip or fld.default is MISSING:
            continue
        flag = "--" + fld.name.replace("_", "-")
        f = click.option(flag, type=type(fld.default), default=fld.default,
                         show_default=True)(f)
    return f


@cli.command()
@click.argument("style_image", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--data", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder of training photos (searched recursively).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Style checkpoint to write (rewritten at every checkpoint).")
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Training state, losses.csv and sample grids (default: OUT's stem + .run).")
@click.option("--name", default="", help="Style name (default: the image's file name).")
@click.option("--resume", is_flag=True, help="Continue the run in --run-dir exactly.")
@click.option("--style-layers", default="relu1_1,relu2_1,relu3_1,relu4_1", show_default=True)
@click.option("--style-layer-weights", default="0.5,1,1,1", show_default=True)
@click.option("--vgg", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A torchvision VGG16/VGG19 state dict (default: the bundled ImageNet VGG19).")
@click.option("--device", default="auto", show_default=True)
@click.option("--dtype", default="auto", show_default=True,
              type=click.Choice(["auto", "fp32", "bf16", "fp16"]))
@_train_options
def train(style_image, data, out, run_dir, name, resume, style_layers, style_layer_weights,
          vgg, device, dtype, **settings):
    """Train a style network on a painting: noise- and motion-stabilised, resumable.

    Example: streamnst train styles/hokusai_great_wave_c1831.jpg --data photos/ --out wave.pth
    """
    from .errors import InputError
    from .training.config import check_run_dir
    from .training.trainer import TrainConfig, Trainer

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
        console.print(f"note: {out} exists and will be replaced by this run's checkpoints")
    check_run_dir(config, resume)
    with console.status("loading photos and the loss network"):
        trainer = Trainer(config)
    _run_training(trainer, resume)


def _run_training(trainer, resume: bool) -> None:
    config = trainer.config
    if not trainer.dist.is_main:  # torchrun: rank 0 reports for everyone
        if trainer.run(resume=resume).interrupted:
            sys.exit(130)
        return
    with Progress(TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console) as progress:
        task = progress.add_task("train", total=config.steps, completed=0, info="")

        def on_step(stats):
            parts = " ".join(f"{k}={v:.3f}" for k, v in stats.losses.items() if v)
            progress.update(task, completed=stats.step,
                            info=f"{parts} {stats.images_per_s:.1f} img/s")

        result = trainer.run(resume=resume, on_step=on_step)
    grid = result.samples[-1] if result.samples else None
    if result.interrupted:
        console.print(f"[yellow]interrupted[/] at step {result.step}: state saved in "
                      f"{config.run_path}; add --resume to continue")
        sys.exit(130)
    console.print(f"wrote {result.checkpoint} after {result.step} steps"
                  + (f"; samples: {grid}" if grid else ""))


def _error_line(message: object) -> None:
    """One unwrapped line on stderr (rich would wrap it at the terminal's width), exit 2."""
    text = " ".join(str(message).split())
    style = console.is_terminal and not console.no_color
    click.echo(click.style("error:", fg="red", bold=True) + " " + text if style
               else f"error: {text}", err=True)
    sys.exit(2)


def _sigterm_as_ctrl_c() -> None:
    """SIGTERM (`kill`, a service manager, a container stop) stops like Ctrl+C: threads
    joined, recordings finished, training state saved."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def main() -> None:
    """Entry point: any streamnst error becomes one clear line and exit status 2."""
    _sigterm_as_ctrl_c()
    try:
        code = cli.main(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except StreamNSTError as exc:
        _error_line(exc)
    except click.exceptions.Abort:  # click's name for Ctrl+C (or SIGTERM) in a command
        console.print("interrupted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
    except OSError as exc:
        _error_line(exc.strerror and f"{exc.filename or ''}: {exc.strerror}".lstrip(": ")
                    or exc)


if __name__ == "__main__":
    main()
