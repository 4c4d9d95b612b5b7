"""One live session, put together in one place. A `LiveConfig` holds every default of
`streamnst live`; `build_session` turns it into a pipeline with its source, its outputs
(each from its registry entry, given the session's `OutputContext`) and the factory that
makes the stylizer of any style the user switches to. The CLI, tools/live_bench.py and
tools/soak.py parse their own arguments and call it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from streamnst.core.devices import pick_device
from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.engine.temporal import BlendSettings
from streamnst.live import LIVE_KEEP_FACE, LIVE_MAX_SIDE, LIVE_MAX_SIDE_GPU
from streamnst.live.learner import MINUTES, check_painting, is_painting, learnt_path
from streamnst.live.outputs import OutputContext, ServerOptions
from streamnst.live.pipeline import Pipeline
from streamnst.live.sinks import open_sink
from streamnst.live.sources import default_source_spec, open_source
from streamnst.live.stats import cores
from streamnst.nets.checkpoint_io import DEFAULT_STYLE, indexed_spec


@dataclass(frozen=True)
class LiveConfig:
    """A live session as the user asked for it; every field left out is `live`'s default."""

    source: str | None = None  # a source spec; None: the webcam if one answers, else demo
    outputs: tuple[str, ...] = ("vcam",)
    style: str = DEFAULT_STYLE
    # the network's working size: `scale` of the frame capped at `max_side` (0: no cap;
    # None: the device's default, LIVE_MAX_SIDE on a CPU and LIVE_MAX_SIDE_GPU on a GPU);
    # scale None adapts to keep up with `fps_target` (the source's rate, at most 30)
    scale: float | None = None
    max_side: int | None = None
    fps_target: float | None = None
    # the rest of the stylizer's settings (device, dtype, threads, backend, shading,
    # canvas, keep_colors, keep_face); its scale and max_side come from the fields above
    stylizer: StylizerSettings = field(default_factory=StylizerSettings)
    blend: BlendSettings = field(default_factory=BlendSettings)
    max_frames: int | None = None
    duration: float | None = None
    overwrite: bool = False  # may a recording replace an existing file
    server: ServerOptions = field(default_factory=ServerOptions)
    bitrate_kbps: int = 2500  # an rtmp:// output's video bitrate
    whip_token: str | None = None  # a whip+http(s):// output's bearer token (a secret)

    @property
    def auto_scale(self) -> bool:
        return self.scale is None

    def stylizer_settings(self, scale: float | None = None) -> StylizerSettings:
        """The stylizer's settings at `scale` (default: this config's, 1 where it adapts)."""
        scale = scale if scale is not None else (self.scale or 1.0)
        max_side = self.max_side
        if max_side is None:  # the CPU's default cap is not a GPU's
            gpu = pick_device(self.stylizer.device).type != "cpu"
            max_side = LIVE_MAX_SIDE_GPU if gpu else LIVE_MAX_SIDE
        return dataclasses.replace(self.stylizer, scale=scale, max_side=max_side or None,
                                   threads=self.stylizer.threads or live_threads(),
                                   face_default=LIVE_KEEP_FACE)


def live_threads() -> int:
    """Threads for each of torch's and OpenCV's pools in a live session (torch's unless the
    user chose). The live chain runs in threads of its own (capture, the network's half,
    the finishing half, the outputs), which keep the cores busy: on 2 cores a second torch
    thread cost 4.4 ms of CPU a frame and OpenCV's pool 3.5 ms, for the same 29.9 fps
    (docs/benchmarks.md). With more than 4 cores, half of them."""
    n = cores()
    return 1 if n <= 4 else n // 2


@dataclass
class SessionHooks:
    """What a front end is told while a session is built."""

    #: a line to show the user, e.g. that the demo clip plays because no webcam answered
    notice: Callable[[str], None] = lambda line: None
    #: the viewer server listens: its full URL, token included (never written to a log)
    listening: Callable[[str], None] = lambda url: None


def build_session(config: LiveConfig, hooks: SessionHooks | None = None) -> Pipeline:
    """A pipeline ready to start: source, outputs and stylizer made from `config`."""
    hooks = hooks or SessionHooks()
    cv2.setNumThreads(live_threads())  # process-wide, as torch's count is
    spec = config.source
    if spec is None:
        spec = default_source_spec()
        if spec == "demo":
            hooks.notice("no webcam found; playing the bundled demo clip (choose with "
                         "--source webcam:N, screen or a video file)")
    context = OutputContext(config.server, config.overwrite, config.bitrate_kbps,
                            hooks.listening, whip_token=config.whip_token)
    source = open_source(spec, context)
    outputs = list(config.outputs) or ["vcam"]
    outputs += [o for o in context.required_outputs if o not in outputs]
    sinks = [open_sink(o, context) for o in outputs]
    style, painting = _style_or_painting(config.style, hooks)
    first = Stylizer(style, config.stylizer_settings())

    def style_factory(name: str) -> Stylizer:
        # the scale the running style has reached: the pipeline then carries the rest of
        # the live settings (keep colours, keep face) over
        # an installed style loads through the index (a bank's by bank and name): a name
        # is never read as a path
        return Stylizer(indexed_spec(name),
                        config.stylizer_settings(pipeline.stylizer.settings.scale))

    pipeline = Pipeline(source, first, sinks, config.blend, config.max_frames, config.duration,
                        style_factory, auto_scale=config.auto_scale,
                        target_fps=config.fps_target)
    context.bind(pipeline)
    if painting is not None:
        pipeline.learning.start(painting)
    return pipeline


def _style_or_painting(spec: str, hooks: SessionHooks) -> tuple[str, Path | None]:
    """The style to start with, and the painting to learn while the filter runs, if the
    user gave an image file: a painting learnt before is used as it was saved."""
    if not is_painting(spec):
        return spec, None
    painting = Path(spec).expanduser()
    check_painting(painting)
    learnt = learnt_path(painting)
    if learnt.is_file():
        hooks.notice(f"{painting.name}: using the style learnt from it before ({learnt})")
        return str(learnt), None
    hooks.notice(f"learning {painting.name} while the filter runs (about {MINUTES:g} min): "
                 "it starts from the nearest style and improves every few seconds; then it is "
                 f"saved as {learnt}")
    return DEFAULT_STYLE, painting
