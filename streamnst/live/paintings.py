"""Paintings sent to the viewer page (`POST /api/paintings`): checked, stored under the
user's style directory with a generated name, and learnt live (live/learner.py).

Nothing of the client's reaches the file system but decoded pixels: the bytes are
decoded with a pixel limit set before decoding, re-encoded as PNG and written (then
renamed) as `paintings/<content hash>.png` in the style directory. The display name a
client may send is cut to letters, digits and spaces; it names the style, never a path.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import unquote

from streamnst.core.errors import InputError, OutputError
from streamnst.media.imageio import MIN_PAINTING_SIDE, decode_image, write_image
from streamnst.nets.checkpoint_io import user_dir

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 25_000_000
NAME_HEADER = "X-Painting-Name"


def paintings_dir() -> Path:
    return user_dir() / "paintings"


def display_name(raw: str | None) -> str:
    """A style name from a client's file name: letters (of any script), digits, spaces and
    dashes, at most 40 characters, no extension; "painting" where nothing is left."""
    base = unquote(raw or "")  # the page sends it percent-encoded (a header is Latin-1)
    base = base.replace("\\", "/").rsplit("/", 1)[-1]  # a path's last part only
    stem = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", base)
    cleaned = re.sub(r"[^\w -]+", " ", stem).strip()  # letters of any script
    return re.sub(r"\s+", " ", cleaned)[:40].strip() or "painting"


def store_painting(data: bytes) -> Path:
    """Decode an uploaded painting within the caps and store its pixels; InputError (one
    line for the page) if it is too big, a pixel bomb or not an image."""
    if len(data) > MAX_BYTES:
        raise InputError(f"the painting is over {MAX_BYTES // (1024 * 1024)} MB")
    # a format whose size cannot be read before decoding (.hdr, .pfm, .pam) is refused:
    # a 10 MB Radiance file decoded to 4 GB
    rgb = decode_image(data, "the painting", max_pixels=MAX_PIXELS, measured_only=True)
    if min(rgb.shape[:2]) < MIN_PAINTING_SIDE:
        raise InputError(f"the painting is too small (at least {MIN_PAINTING_SIDE} pixels a "
                         "side)")
    folder = paintings_dir()
    # a link planted in place of the folder would carry the write elsewhere
    if folder.is_symlink() or (folder.exists() and not folder.resolve().is_relative_to(
            user_dir().resolve())):
        raise InputError(f"{folder} is a link out of the style directory; remove it")
    path = folder / f"{hashlib.sha256(rgb.tobytes()).hexdigest()[:16]}.png"
    try:
        write_image(path, rgb)  # write, then rename (media/imageio.py)
    except OSError as exc:  # read-only, full, or `paintings` is a file
        raise OutputError(f"cannot store the painting in {folder} "
                          f"({exc.strerror or exc}); free space or fix that folder") from None
    return path
