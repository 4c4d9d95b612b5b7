"""The bundled demo clip (CC BY 4.0, see assets/ATTRIBUTION.md): the default source."""

from __future__ import annotations

from pathlib import Path

DEMO_NAME = "demo"


def demo_clip() -> Path:
    return Path(__file__).resolve().parent / "assets" / "demo.mp4"


def resolve_media(spec: str | Path) -> Path:
    """`demo` names the bundled clip; anything else is a path."""
    return demo_clip() if str(spec) == DEMO_NAME else Path(spec)
