"""A live session built in one place (live/session.py): the defaults of `streamnst live`,
outputs from their registry entries with one shared context, and the session's hooks."""

import dataclasses

from streamnst.engine.stylizer import StylizerSettings
from streamnst.live.outputs import ServerOptions
from streamnst.live.session import LiveConfig, SessionHooks, build_session
from streamnst.live.sinks import NullSink, WindowSink
from streamnst.live.webrtc import WebRTCSink
from streamnst.live.webrtc_source import WebRTCSource

FAST = StylizerSettings(device="cpu", dtype="fp32")


def test_the_defaults_are_the_live_filters_and_a_session_runs():
    pipe = build_session(LiveConfig("demo", ("null",), stylizer=FAST, max_frames=5))
    assert pipe.auto_scale and pipe.stylizer.settings.max_side == 640
    assert pipe.stylizer.name == "starry_night"
    summary = pipe.run()
    assert summary.frames_out == 5 and isinstance(pipe.sinks[0], NullSink)
    fixed = build_session(LiveConfig("demo", ("null",), scale=0.5, max_side=0, stylizer=FAST))
    assert not fixed.auto_scale and fixed.stylizer.settings.scale == 0.5
    assert fixed.stylizer.settings.max_side is None  # 0: no cap


def test_the_default_cap_follows_the_device_and_a_chosen_cap_is_kept():
    """640 px is a CPU's default; off the CPU (the chain runs there too) the default is
    1080p; a cap the user names is theirs on any device, 640 included."""
    off_cpu = dataclasses.replace(FAST, device="meta")  # any device but the CPU
    assert LiveConfig("demo", stylizer=FAST).stylizer_settings().max_side == 640
    assert LiveConfig("demo", stylizer=off_cpu).stylizer_settings().max_side == 1920
    assert LiveConfig("demo", stylizer=off_cpu, max_side=640).stylizer_settings().max_side \
        == 640


def test_a_session_keeps_torch_and_opencv_to_its_thread_budget():
    import cv2

    from streamnst.live.session import live_threads
    from streamnst.live.stats import cores

    # on up to 4 cores one thread each: the chain's own threads keep the cores busy
    assert live_threads() == (1 if cores() <= 4 else cores() // 2)
    pipe = build_session(LiveConfig("demo", ("null",), stylizer=FAST))
    assert pipe.stylizer.settings.threads == live_threads()
    assert cv2.getNumThreads() == live_threads()
    chosen = build_session(LiveConfig("demo", ("null",),
                                      stylizer=dataclasses.replace(FAST, threads=2)))
    assert chosen.stylizer.settings.threads == 2  # the user's --threads wins
    made = chosen.styles.factory("udnie")
    assert made.settings.threads == 2


def test_a_switched_style_is_made_with_the_sessions_settings():
    keep = dataclasses.replace(FAST, keep_face=0.6, keep_colors=True)
    pipe = build_session(LiveConfig("demo", ("null",), "great_wave", scale=0.7, stylizer=keep))
    made = pipe.styles.factory("udnie")
    assert made.name == "udnie" and made.settings.scale == 0.7
    assert made.settings.max_side == 640 and made.keep_face == 0.6 and made.settings.keep_colors


def test_a_browser_camera_source_shares_its_server_with_the_webrtc_output():
    told = []
    config = LiveConfig("webrtc", ("null",), stylizer=FAST, server=ServerOptions(port=0))
    pipe = build_session(config, SessionHooks(listening=told.append))
    assert isinstance(pipe.source, WebRTCSource)
    web = [s for s in pipe.sinks if isinstance(s, WebRTCSink)]
    assert len(web) == 1 and web[0].server is pipe.source.server  # added, and one server
    assert web[0].server.pipeline is pipe  # its controls steer this pipeline
    web[0].server.start()
    try:
        assert told == [web[0].server.url] and f":{web[0].server.port}/" in told[0]
    finally:
        web[0].server.stop()


def test_the_preview_window_draws_the_sessions_status_line():
    pipe = build_session(LiveConfig("demo", ("window", "null"), stylizer=FAST))
    window = pipe.sinks[0]
    assert isinstance(window, WindowSink)
    assert window.overlay().startswith("starry_night | ")


def test_the_live_filter_keeps_faces_by_default_and_files_do_not(tiny_style):
    from streamnst.engine.stylizer import Stylizer, StylizerSettings
    from streamnst.live import LIVE_KEEP_FACE

    live = LiveConfig(style=str(tiny_style)).stylizer_settings()
    assert Stylizer(tiny_style, live).keep_face == LIVE_KEEP_FACE > 0  # a call's picture
    chosen = LiveConfig(style=str(tiny_style),
                        stylizer=StylizerSettings(keep_face=0.0)).stylizer_settings()
    assert Stylizer(tiny_style, chosen).keep_face == 0.0  # the user's choice stands
    assert Stylizer(tiny_style, StylizerSettings()).keep_face == 0.0  # stylize: as before
