"""Offline rendering of image and video files through a frame processor.

Outputs are written beside their target and renamed into place: an error leaves
no file; Ctrl+C during a video leaves a valid, playable file of the frames done.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamnst.core.atomic import atomic_path
from streamnst.core.errors import InputError, OutputError
from streamnst.core.workers import WriteBehind, read_ahead
from streamnst.media.imageio import is_image_path, read_image, write_image
from streamnst.media.video import VIDEO_OUT_SUFFIXES, VideoReader, open_writer

Process = Callable[[np.ndarray], np.ndarray]


@dataclass
class RenderResult:
    output: Path
    frames: int
    interrupted: bool = False
    total: int | None = None


def check_paths(src: str | os.PathLike, dst: str | os.PathLike, overwrite: bool) -> None:
    """Refuse work that cannot succeed or would clobber a file, before any is done."""
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise InputError(f"{src}: file not found")
    if dst.exists() and not overwrite:
        raise OutputError(f"{dst} exists; pass --overwrite to replace it")
    if dst.resolve() == src.resolve():
        raise OutputError(f"{dst}: output would replace the input; choose another name")
    if is_image_path(src):
        if not is_image_path(dst):
            raise OutputError(f"{dst}: an image input needs an image output (.png, .jpg, .webp)")
    elif dst.suffix.lower() not in VIDEO_OUT_SUFFIXES:
        raise OutputError(f"{dst}: video output must be .mp4 (H.264), .webm (VP9) or .gif; "
                          f"got '{dst.suffix}'")
    else:
        with VideoReader(src):  # a file that is no video fails here, before any progress bar
            pass


def render_file(src: str | os.PathLike, dst: str | os.PathLike, process: Process, *,
                overwrite: bool = False, max_frames: int | None = None,
                on_start: Callable[[int | None], None] | None = None,
                on_frame: Callable[[int], None] | None = None,
                stop: threading.Event | None = None) -> RenderResult:
    """Apply `process` to an image, or to every frame of a video (audio and fps kept).

    Setting `stop` (or a KeyboardInterrupt) ends a video early with the frames done."""
    check_paths(src, dst, overwrite)
    if is_image_path(src):
        if on_start:
            on_start(1)
        write_image(dst, process(read_image(src)))
        if on_frame:
            on_frame(1)
        return RenderResult(Path(dst), 1, total=1)
    return _render_video(Path(src), Path(dst), process, max_frames, on_start, on_frame,
                         stop or threading.Event())


def _close_quietly(encode: WriteBehind, writer) -> None:
    """On the way out with an error already in flight: finish what can be finished."""
    for close in (encode.close, writer.close):
        try:
            close()
        except Exception:  # the first error is the one to report
            pass


def _render_video(src: Path, dst: Path, process: Process, max_frames: int | None,
                  on_start, on_frame, stop: threading.Event) -> RenderResult:
    with VideoReader(src) as reader:
        total = reader.frame_count
        if max_frames is not None:
            total = min(total or max_frames, max_frames)
        if on_start:
            on_start(total)
        done, interrupted = 0, False
        with atomic_path(dst) as tmp:
            writer = open_writer(tmp, reader.fps, audio_from=src if reader.has_audio else None)
            # decode ahead and encode behind in their own threads, so the network never
            # waits for either; bounded queues hold the decoder back instead of dropping
            encode = WriteBehind(writer.write, 4, "encode")
            frames = read_ahead(reader, 4, "decode")
            # a writer that uses fewer frames than the source has (a GIF) says which
            keeps = getattr(writer, "keeps", lambda index: True)
            try:
                for index, image in enumerate(frames):
                    if max_frames is not None and index >= max_frames:
                        break
                    if not keeps(index):
                        continue  # not painted: the file would not show it
                    encode.put(process(image))
                    done += 1
                    if on_frame:  # progress counts the source's frames, as `total` does
                        on_frame(index + 1)
                    if stop.is_set():
                        interrupted = True
                        break
            except KeyboardInterrupt:
                interrupted = True
            except BaseException:
                _close_quietly(encode, writer)
                raise
            finally:
                frames.close()
            try:
                encode.close()  # everything stylised so far reaches the file
            finally:
                writer.close()
            if done == 0:
                if interrupted:
                    raise KeyboardInterrupt
                raise InputError(f"{src}: no video frames could be decoded; nothing written")
    return RenderResult(dst, done, interrupted, total)
