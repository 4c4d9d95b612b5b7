"""Files from earlier releases: the one place that knows what changed between versions.

Version 2 (now): a style or bank file's `arch_args` name every U-Net setting. Version 1
files named only the settings that differed from the defaults of their day, and the first
releases' files did not name the sampling at all, so a setting a version-1 file leaves out
means what it meant then: `UNET_V1`. `migrate` rewrites such a file's dict as version 2 when
it is read; nothing else needs to know.
"""

from __future__ import annotations

VERSION = 2
#: what a version-1 U-Net file meant by each setting it left out
UNET_V1 = {"up": "nearest", "down": "stride", "fine_blocks": 0, "head": "identity",
           "ends": "full", "pad": "mixed"}


def migrate(data: dict) -> dict:
    """A style or bank file's dict (its version already checked to be at most VERSION) as
    this version writes it."""
    if data.get("version") == VERSION:
        return data
    args = data.get("arch_args")
    if data.get("arch") == "unet" and isinstance(args, dict):
        args = {**UNET_V1, **args}
    return {**data, "arch_args": args if args is not None else {}, "version": VERSION}
