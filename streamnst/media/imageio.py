"""Reading and writing still images: the colour-conversion edge for files."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from streamnst.core.atomic import atomic_path
from streamnst.core.errors import InputError, OutputError
from streamnst.core.frame import check_image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
#: the most pixels an image file may have: checked from its header before decoding, so a
#: tiny file claiming 60000x60000 (an image bomb) costs nothing (50 MP: an 8K frame is 33)
MAX_PIXELS = 50_000_000


def is_image_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def to_rgb(decoded: np.ndarray, what: str = "image") -> np.ndarray:
    """OpenCV's decoded array (gray, BGR or BGRA; 8 or 16 bit) -> HxWx3 uint8 RGB.

    Alpha is composited over white, the way viewers show transparent images.
    """
    img = decoded
    if img.dtype == np.uint16:
        img = (img / 257.0).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        raise InputError(f"{what}: unsupported pixel type {img.dtype}")
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        alpha = img[..., 3:4].astype(np.float32) / 255.0
        bgr = img[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return cv2.cvtColor(bgr.round().astype(np.uint8), cv2.COLOR_BGR2RGB)
    if img.shape[2] == 1:
        return cv2.cvtColor(img[..., 0], cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as HxWx3 uint8 RGB; InputError if it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    return decode_image(np.fromfile(str(path), dtype=np.uint8), str(path))


def decode_image(data: np.ndarray | bytes, what: str = "image",
                 max_pixels: int = MAX_PIXELS, measured_only: bool = False) -> np.ndarray:
    """Encoded image bytes -> HxWx3 uint8 RGB, refusing more than `max_pixels` before any
    pixel is decoded; InputError for anything that is not a readable image. With
    `measured_only` (bytes from a client), Pillow decodes, after its header was read: a
    format whose size cannot be read first (.hdr, .pfm, .pam: a 10 MB Radiance file
    decoded to 4 GB) is refused, and no codec library writes to our stderr."""
    buf = np.frombuffer(data, np.uint8) if isinstance(data, bytes) else data
    if measured_only:
        return _decode_measured(buf, what, max_pixels)
    _check_pixels(buf, what, max_pixels)
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    except cv2.error:
        img = None
    if img is None:
        raise InputError(f"{what}: not a readable image (png, jpg, webp, bmp, tiff)")
    return to_rgb(img, what)


def _decode_measured(buf: np.ndarray, what: str, max_pixels: int) -> np.ndarray:
    import io
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(buf.tobytes())) as im:
                if im.size[0] * im.size[1] > max_pixels:
                    raise Image.DecompressionBombError
                rgba = np.asarray(im.convert("RGBA"))
    except Image.DecompressionBombError:
        raise _too_big(what, max_pixels) from None
    except UnidentifiedImageError:
        raise InputError(f"{what}: not a readable image (png, jpg, webp, bmp, tiff)") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # truncated, corrupt
        raise InputError(f"{what}: not a readable image ({exc})") from None
    # OpenCV's order (BGRA) for the one conversion: transparency over white
    return to_rgb(np.ascontiguousarray(rgba[..., [2, 1, 0, 3]]), what)


def _too_big(what: str, max_pixels: int) -> InputError:
    return InputError(f"{what}: the image is over the {max_pixels / 1e6:.0f} megapixel "
                      "limit; scale it down first")


def _check_pixels(buf: np.ndarray, what: str, max_pixels: int) -> None:
    """Refuse an image whose header states more than `max_pixels` (Pillow reads only the
    header); a format Pillow does not know is left to OpenCV's own limit."""
    import io
    import warnings

    from PIL import Image, UnidentifiedImageError

    too_big = _too_big(what, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(buf.tobytes())) as im:
                w, h = im.size
    except Image.DecompressionBombError:  # past Pillow's own (larger) limit
        raise too_big from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return
    if w * h > max_pixels:
        raise too_big


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write HxWx3 uint8 RGB atomically; the format follows the file extension."""
    path = Path(path)
    if not is_image_path(path):
        raise OutputError(f"{path}: unknown image extension; use one of "
                          f"{', '.join(sorted(IMAGE_SUFFIXES))}")
    bgr = cv2.cvtColor(check_image(image), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(path.suffix.lower(), bgr)
    if not ok:
        raise OutputError(f"{path}: could not encode image")
    with atomic_path(path) as tmp:
        buf.tofile(str(tmp))
    return path


def resize_to(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to size=(width, height): area filter when shrinking (no aliasing), bilinear
    when growing; the image itself when it already has that size."""
    h, w = image.shape[:2]
    if (w, h) == size:
        return image
    shrink = size[0] <= w and size[1] <= h
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`resize_to` a much smaller size=(width, height), faster: exact halvings first
    (OpenCV's whole-factor area path: 1.7 ms where one 7.5x area resize of a 1080p frame
    took 6), then one area resize by the rest. Both are box filters, so the result is
    within a level or two of one area resize; under a 3x step it is that resize."""
    h, w = image.shape[:2]
    while min(w / size[0], h / size[1]) >= 3 and w % 2 == 0 and h % 2 == 0:
        w, h = w // 2, h // 2
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return resize_to(image, size)


def resize_max_side(image: np.ndarray, max_side: int) -> np.ndarray:
    """Downscale (area filter) so the longer side is at most `max_side`; never upscale."""
    h, w = image.shape[:2]
    s = max_side / max(h, w)
    if s >= 1.0:
        return image
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


MIN_PAINTING_SIDE = 16  # fewer pixels hold no brush strokes to learn
MIN_STYLE_SIDE = 64  # the loss network pools 16x: a thinner picture has no deep features


def resize_painting(image: np.ndarray, max_side: int, what: str = "the painting"
                    ) -> np.ndarray:
    """A painting for the loss network: its long side at most `max_side`, and a thin one
    (a banner) mirror-tiled across to MIN_STYLE_SIDE; a style's statistics do not depend
    on where its strokes are, so tiling keeps them. InputError for one too small."""
    h, w = image.shape[:2]
    if min(h, w) < MIN_PAINTING_SIDE:
        raise InputError(f"{what} is {w}x{h}: too small to learn a style from; give one at "
                         f"least {MIN_PAINTING_SIDE} pixels a side")
    small = resize_max_side(image, max_side)
    h, w = small.shape[:2]
    if min(h, w) >= MIN_STYLE_SIDE:
        return small
    axis = 0 if h < w else 1
    mirrored = np.concatenate([small, np.flip(small, axis)], axis)
    reps = -(-MIN_STYLE_SIDE // mirrored.shape[axis])
    tiled = np.concatenate([mirrored] * reps, axis)
    return np.ascontiguousarray(tiled[:max(MIN_STYLE_SIDE, h)] if axis == 0
                                else tiled[:, :max(MIN_STYLE_SIDE, w)])


def resize_short_side(image: np.ndarray, short: int) -> np.ndarray:
    h, w = image.shape[:2]
    s = short / min(h, w)
    size = (max(short, round(w * s)), max(short, round(h * s)))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    return cv2.resize(image, size, interpolation=interp)


def contact_sheet(rows: list[list[np.ndarray]], cell: int | tuple[int, int] = 256,
                  gap: int = 4, captions: list[list[str]] | None = None) -> np.ndarray:
    """Tile images, each fitted into a cell (a square side or (width, height)), row by row
    into one RGB sheet; captions[i][j], where given, is written on image j of row i."""
    cw, ch = (cell, cell) if isinstance(cell, int) else cell
    ncols = max(len(r) for r in rows)
    sheet = np.full((len(rows) * (ch + gap) + gap, ncols * (cw + gap) + gap, 3), 255,
                    np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            h, w = img.shape[:2]
            s = min(cw / w, ch / h)
            small = resize_to(img, (max(1, round(w * s)), max(1, round(h * s))))
            if captions and i < len(captions) and j < len(captions[i]) and captions[i][j]:
                small = small.copy()  # never write on the caller's image
                _caption(small, captions[i][j])
            y = gap + i * (ch + gap) + (ch - small.shape[0]) // 2
            x = gap + j * (cw + gap) + (cw - small.shape[1]) // 2
            sheet[y:y + small.shape[0], x:x + small.shape[1]] = small
    return sheet


def _caption(image: np.ndarray, text: str) -> None:
    """Black text on a white box in the top-left corner, in place."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), _ = cv2.getTextSize(text, font, 0.5, 1)
    cv2.rectangle(image, (0, 0), (tw + 8, th + 10), (255, 255, 255), -1)
    cv2.putText(image, text, (4, th + 4), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
