"""`streamnst live`: capture, stylise, blend and send to every output, with a status panel
and single-key controls."""

from __future__ import annotations

import click

from streamnst.cli.app import blend_options, cli, console, stylizer_options


@cli.command()
@click.option("--source", "source_spec", default=None, metavar="SPEC",
              help="webcam[:N], screen[:N][@X,Y,W,H], demo, pattern[:WxH@FPS], a video or an "
                   "image file, or webrtc (a browser's camera: open the page, click 'use my "
                   "camera'; it gets the painted stream back) (default: webcam if one "
                   "answers, else demo).")
@click.option("--output", "-o", "outputs", multiple=True, metavar="SPEC",
              help="vcam[:DEVICE][@BACKEND], window, webrtc, rtmp://HOST/APP/KEY (a media "
                   "server or YouTube/Twitch ingest), whip+https://HOST/PATH (a WHIP "
                   "endpoint: an SFU), null or a .mp4 path; repeatable (default: vcam).")
@click.option("--bitrate", "bitrate_kbps", default=2500, show_default=True,
              type=click.IntRange(100, 50000), help="Video bitrate of rtmp:// outputs, kbit/s.")
@click.option("--whip-token", envvar="STREAMNST_WHIP_TOKEN", default=None, metavar="TOKEN",
              help="Bearer token of whip+http(s):// outputs (or set STREAMNST_WHIP_TOKEN, "
                   "which keeps it out of the process list).")
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
def live(**opts):
    """Run the live filter: capture, stylise, blend, and send to every output.

    Example: streamnst live --source webcam --output vcam --style great_wave
    """
    from streamnst.cli.live_keys import run_session
    from streamnst.core.devices import limit_malloc_arenas
    from streamnst.live.session import SessionHooks, build_session

    limit_malloc_arenas()  # a long-running process: keep RSS from creeping

    def say(line: str) -> None:
        console.print(line, highlight=False, soft_wrap=True, markup=False)  # names, paths

    # the URL is said as soon as the server listens: a --source webrtc start waits for a
    # camera that can only connect with it (and the token goes to the terminal, not a log)
    hooks = SessionHooks(notice=say, listening=lambda url: say(f"open {url}"))
    run_session(build_session(_config(opts), hooks), opts["as_json"])


def _config(o: dict):
    """The LiveConfig of the parsed options."""
    from streamnst.engine.stylizer import StylizerSettings
    from streamnst.engine.temporal import BlendSettings
    from streamnst.live.outputs import ServerOptions
    from streamnst.live.session import LiveConfig
    from streamnst.nets.checkpoint_io import DEFAULT_STYLE

    stylizer = StylizerSettings(device=o["device"], dtype=o["dtype"], threads=o["threads"],
                                backend=o["backend"], shading=o["shading"], canvas=o["canvas"],
                                keep_colors=o["keep_colors"], keep_face=o["keep_face"],
                                palette=o["palette"])
    fixed = {} if o["max_side"] is None else {"max_side": o["max_side"]}
    return LiveConfig(o["source_spec"], tuple(o["outputs"]) or ("vcam",),
                      o["style"] or DEFAULT_STYLE, None if o["scale"] == "auto" else o["scale"],
                      fps_target=o["fps_target"], stylizer=stylizer,
                      blend=BlendSettings(mode=o["blend"], strength=o["strength"]),
                      max_frames=o["max_frames"], duration=o["duration"],
                      overwrite=o["overwrite"], bitrate_kbps=o["bitrate_kbps"],
                      whip_token=o["whip_token"],
                      server=ServerOptions(
                          o["host"], o["port"], o["max_viewers"], tuple(o["allow_hosts"])),
                      **fixed)
