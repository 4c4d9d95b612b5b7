"""`streamnst live`: capture, stylise, blend and send to every output, with a status panel
and single-key controls."""

from __future__ import annotations

import click

from streamnst.cli.app import blend_options, cli, console, make_stylizer, out, stylizer_options
from streamnst.core.signals import stop_requested
from streamnst.live import LIVE_MAX_SIDE


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
def live(source_spec, outputs, style, device, dtype, scale, max_side, threads, backend, shading,
         canvas, keep_colors, keep_face, blend, strength, max_frames, duration, overwrite,
         as_json, host, port, allow_hosts, max_viewers, fps_target):
    """Run the live filter: capture, stylise, blend, and send to every output.

    Example: streamnst live --source webcam --output vcam --style great_wave
    """
    from streamnst.cli.live_keys import window_overlay
    from streamnst.core.devices import limit_malloc_arenas
    from streamnst.engine.temporal import BlendSettings
    from streamnst.live.outputs import ServerOptions, open_live_io
    from streamnst.live.pipeline import Pipeline
    from streamnst.live.sinks import WindowSink
    from streamnst.live.sources import default_source_spec

    limit_malloc_arenas()  # a long-running process: keep RSS from creeping
    blend_settings = BlendSettings(mode=blend, strength=strength)
    if not source_spec:
        from streamnst.media.demo import DEMO_NAME

        source_spec = default_source_spec()
        if source_spec == DEMO_NAME:
            console.print("no webcam found; playing the bundled demo clip (choose with "
                          "--source webcam:N, screen or a video file)", highlight=False,
                          soft_wrap=True)
    source, sinks = open_live_io(source_spec, list(outputs) or ["vcam"],
                                 ServerOptions(host, port, max_viewers, tuple(allow_hosts)),
                                 overwrite)
    max_side = LIVE_MAX_SIDE if max_side is None else max_side
    auto = scale in (None, "auto")
    stylizer = make_stylizer(style, device, dtype, None if auto else scale, threads, backend,
                             max_side, shading, canvas, keep_colors, keep_face)

    def factory(name):
        return make_stylizer(name, device, dtype, stylizer.settings.scale, threads, backend,
                             max_side, shading, canvas, keep_colors, keep_face)  # then live

    pipeline = Pipeline(source, stylizer, sinks, blend_settings, max_frames, duration, factory,
                        auto_scale=auto, target_fps=fps_target)
    for sink in sinks:
        sink.attach(pipeline)
        if isinstance(sink, WindowSink):
            sink.overlay = lambda: window_overlay(pipeline)
    _run_until_done(pipeline, as_json)


def _run_until_done(pipeline, as_json: bool) -> None:
    """Start the pipeline, show the status panel and take keys until it ends or Ctrl+C,
    then stop it and print the summary."""
    import json

    from streamnst.live.webrtc import WebRTCSink

    for sink in pipeline.sinks:  # the token goes to the user's terminal, never into a log
        if isinstance(sink, WebRTCSink) and sink.server.token:
            # said as soon as the server listens: a --source webrtc start waits for a camera
            # that can only connect with it
            sink.server.on_listening = lambda url: console.print(f"open {url}",
                                                                 highlight=False,
                                                                 soft_wrap=True)
    try:
        summary = _watch(pipeline)
    except Exception as exc:
        if as_json:  # a script still gets its summary, with why the run ended
            out.print_json(json.dumps({**_partial_summary(pipeline), "error": str(exc)}))
        raise
    if as_json:
        out.print_json(json.dumps(summary.as_dict()))
    else:
        console.print(f"{summary.frames_out} frames at {summary.fps:.1f} fps, latency p50 "
                      f"{summary.latency_p50_ms:.0f} ms / p95 {summary.latency_p95_ms:.0f}"
                      f" ms, dropped {summary.dropped}")


def _partial_summary(pipeline) -> dict:
    try:
        return pipeline.summary().as_dict()
    except Exception:  # a run that failed before its first frame has no statistics yet
        return {"frames_out": pipeline.stats.frames_out}


def _watch(pipeline):
    """Start, show the status panel and take keys until the end or Ctrl+C; stop."""
    from rich.live import Live

    from streamnst.cli.live_keys import handle_key, key_reader, status_table

    pipeline.start()
    for problem in pipeline.sink_problems:
        console.print(f"[yellow]warning:[/] {problem.message}", highlight=False,
                      soft_wrap=True)
    # from here a signal only sets `stop` (seen: one SIGINT raised as an exception in a few
    # hundred during a style switch was swallowed there and left the filter running); a
    # second one while stop() finishes the recordings changes nothing, and every join in
    # stop() has a timeout, so that cannot hang
    with stop_requested(restore=False) as stop:
        with key_reader() as read_key, Live(status_table(pipeline), console=console,
                                            refresh_per_second=4,
                                            transient=not console.is_terminal) as view:
            while not pipeline.wait(0.05) and not stop.is_set():
                key = read_key()
                if key:
                    handle_key(key, pipeline, stop)
                view.update(status_table(pipeline))
        return pipeline.stop()
