"""One control surface for a running pipeline: keys, the WebRTC data channel and
`POST /api/control` all call it, so they agree.

Every change starts from the pending state (a style being loaded, a blend about to take
effect at the next frame), so two changes within one frame both count.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from streamnst.core.errors import InputError, StreamNSTError
from streamnst.engine.temporal import MAX_STRENGTH, MODES
from streamnst.nets.checkpoint_io import available_styles

if TYPE_CHECKING:
    from streamnst.live.pipeline import Pipeline

STRENGTH_STEP = 0.05
MIX_STEP = 0.1
KEEP_FACE_STEPS = (0.6, 1.0)  # what the keep-face key steps through (then off)


class LiveControl:
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    # ----- single changes (keys) -------------------------------------------------------
    def current_style(self) -> str:
        """The style in effect, or the one about to be."""
        return self.pipeline.style_name

    def step_style(self, step: int) -> str | None:
        """Switch to the next (+1) or previous (-1) installed style; returns its name."""
        names = list(available_styles())
        if not names:
            return None
        current = self.current_style()
        i = names.index(current) if current in names else (-1 if step > 0 else 0)
        name = names[(i + step) % len(names)]
        if name != current:
            self.pipeline.switch_style(name)
        return name

    def set_mix(self, amount: float | None = None, style: str | None = None) -> None:
        """Mix `amount` of bank style `style` into the current style; either left out keeps
        the one in effect (the first time: the next style of the bank, amount 0)."""
        p = self.pipeline
        mix = p.styles.mix
        if style is None:
            style = mix[0] if mix and mix[0] in p.styles.mixable() else self._next_mixable()
        if style is None:
            raise InputError(f"{self.current_style()} has no other style in its bank to mix "
                             "with: pick a bank style first")
        if amount is None:
            amount = mix[1] if mix else 0.0
        p.set_mix(style, float(amount))

    def nudge_mix(self, steps: int) -> None:
        mix = self.pipeline.styles.mix
        amount = mix[1] if mix else 0.0
        self.set_mix(amount=min(1.0, max(0.0, round(amount + steps * MIX_STEP, 2))))

    def step_mix_style(self) -> None:
        """Mix with the next style of the bank instead (the amount stays)."""
        self.set_mix(style=self._next_mixable())

    def _next_mixable(self) -> str | None:
        names = self.pipeline.styles.mixable()
        mix = self.pipeline.styles.mix
        if not names:
            return None
        if mix and mix[0] in names:
            return names[(names.index(mix[0]) + 1) % len(names)]
        return names[0]

    def set_blend(self, mode: str | None = None, strength: float | None = None) -> None:
        changes = {}
        if mode is not None:
            changes["mode"] = str(mode)
        if strength is not None:
            changes["strength"] = float(strength)
        # replace: every other setting (flow size, cut and photometric thresholds) stays
        self.pipeline.set_blend(dataclasses.replace(self.pipeline.blend_settings, **changes))

    def cycle_blend(self) -> None:
        mode = self.pipeline.blend_settings.mode
        self.set_blend(mode=MODES[(MODES.index(mode) + 1) % len(MODES)])

    def nudge_strength(self, steps: int) -> None:
        cur = self.pipeline.blend_settings.strength
        strength = round(cur + steps * STRENGTH_STEP, 2)
        self.set_blend(strength=min(MAX_STRENGTH, max(0.0, strength)))

    def toggle_keep_colors(self) -> None:
        p = self.pipeline
        p.set_keep_colors(not p.stylizer.settings.keep_colors)

    def cycle_keep_face(self) -> None:
        """Off, some of the face, all of it, off: the next step up from the amount now."""
        amount = self.pipeline.stylizer.keep_face
        self.pipeline.set_keep_face(next((a for a in KEEP_FACE_STEPS if a > amount + 1e-6), 0.0))

    def toggle_auto_scale(self) -> None:
        """Off: keep the scale adaptation has reached; on: adapt from there."""
        p = self.pipeline
        p.set_scale(p.stylizer.settings.scale if p.autoscaler else "auto")

    # ----- several at once (JSON) --------------------------------------------------------
    def apply(self, data: dict) -> dict:
        """Apply {style, blend, strength, scale (a number or "auto"), mix (0..1), mix_style,
        keep_colors (true/false), keep_face (0..1)} (any subset); returns the new state, or
        {"error": ...} and changes nothing more."""
        p = self.pipeline
        problem = _type_problem(data)
        if problem:
            return {"error": problem}
        try:  # everything is checked first: a request refused changes nothing
            self._check(data)
        except (StreamNSTError, TypeError, ValueError, OverflowError) as exc:
            return {"error": str(exc)}
        try:
            if "blend" in data or "strength" in data:
                self.set_blend(data.get("blend"), data.get("strength"))
            if data.get("scale") == "auto":
                p.set_scale("auto")
            elif "scale" in data:
                p.set_scale(data["scale"])
            if "style" in data and data["style"] != self.current_style():
                p.switch_style(data["style"])
            if "keep_colors" in data:
                p.set_keep_colors(data["keep_colors"])
            if "keep_face" in data:
                p.set_keep_face(float(data["keep_face"]))
            if "mix" in data or "mix_style" in data:
                self.set_mix(data.get("mix"), data.get("mix_style"))
        except (StreamNSTError, TypeError, ValueError, OverflowError) as exc:
            return {"error": str(exc)}
        return self.state()

    def _check(self, data: dict) -> None:
        """Raise InputError for the first value of a request that cannot be applied."""
        p = self.pipeline
        if "blend" in data or "strength" in data:
            changes = {k: v for k, v in (("mode", data.get("blend")),
                                         ("strength", data.get("strength"))) if v is not None}
            dataclasses.replace(p.blend_settings, **changes)  # its own checks
        if "scale" in data and data["scale"] != "auto":
            dataclasses.replace(p.stylizer.settings, scale=float(data["scale"]))
        if "style" in data and data["style"] not in available_styles():
            raise InputError(f"unknown style {data['style']!r}")
        if "keep_face" in data and not 0.0 <= data["keep_face"] <= 1.0:
            raise InputError(f"keep_face must be between 0 and 1, got {data['keep_face']}")
        if "mix" in data and not 0.0 <= data["mix"] <= 1.0:
            raise InputError(f"mix must be between 0 and 1, got {data['mix']}")

    def state(self) -> dict:
        """What a viewer shows: styles, the pending-aware style and blend, scale, fps."""
        p = self.pipeline
        s = p.summary()
        blend = p.blend_settings
        mix = p.styles.mix
        return {"styles": list(available_styles()), "blend_modes": list(MODES),
                "style": self.current_style(), "blend": blend.mode,
                "mix": mix[1] if mix else 0.0, "mix_style": mix[0] if mix else None,
                "mixable": p.styles.mixable(),
                "keep_colors": p.stylizer.settings.keep_colors,
                "keep_face": p.stylizer.keep_face,
                "strength": blend.strength, "scale": s.scale,
                "auto_scale": s.auto_scale, "fps": round(s.fps, 1),
                "latency_ms": round(s.latency_p50_ms, 1),
                # the CPU the filter takes, beside the frame rate: what is left for the call
                "cpu_ms_per_frame": round(s.cpu_ms_per_frame, 1), "cores": s.cores,
                "switching": p.switching, "switch_error": p.switch_error,
                # a painting being learnt (live/learner.py): state, fraction done, ...
                "learning": p.learning.progress()}


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _type_problem(data: dict) -> str | None:
    """What is wrong with the types of a JSON control request, if anything ("0.5" for a
    number or true for a scale is refused, not converted)."""
    for key in ("style", "blend", "mix_style"):
        if key in data and not isinstance(data[key], str):
            return f"{key} must be a string"
    if "keep_colors" in data and not isinstance(data["keep_colors"], bool):
        return "keep_colors must be true or false"
    for key in ("strength", "mix", "keep_face"):
        if key in data and not _is_number(data[key]):
            return f"{key} must be a number"
    if "scale" in data and data["scale"] != "auto" and not _is_number(data["scale"]):
        return 'scale must be a number between 0.1 and 1, or "auto"'
    return None
