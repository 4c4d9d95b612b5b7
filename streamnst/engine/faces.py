"""Keep faces: let the person's own face show through the painting (`--keep-face`).

Each face gets a soft elliptical mask (brow to chin, cheek to cheek, feathered over a
third of its size, so there is no seam or box), and the output is mixed towards the
input under it by the keep-face amount. Over a clip the mask must not flicker or jump:

- faces are detected every few frames only (engine/face_detect.py), near each known face
  (2-3 ms) and now and then over the whole frame (for newcomers);
- in between, each face moves with the optical flow the temporal blend computed anyway;
- a detection pulls the box towards itself (smoothed, never a jump), and a face fades in
  and out over a few frames; a few missed detections in a row are ridden over.

Live, the detector runs in a thread of its own and the frame loop never waits for it
(its results arrive a frame or two later and are merged); offline, it runs in line at
the same frames, so a render is the same every time.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from streamnst.core.slots import LatestSlot
from streamnst.engine.face_detect import Face, FaceDetector, to_gray
from streamnst.engine.temporal import Motion

log = logging.getLogger(__name__)

NEAR_EVERY = 3  # frames between searches near the known faces
FULL_EVERY = 15  # frames between whole-frame searches (for faces that are new)
SEARCH_EVERY = 10  # frames between whole-frame searches while no face is known
MISSES_HELD = 3  # searches in a row a face may be missed before it fades out
FADE_IN = 1 / 5  # presence gained per frame while a face is found: 5 frames to full
FADE_OUT = 1 / 12  # presence lost per frame once it is not
PULL_CENTRE, PULL_SIZE = 0.5, 0.3  # how far one detection moves a face's box, and size
MAX_FACES = 4
STALE_S = 1.0  # a gap this long between frames (keep-face was off): the faces are stale
# the mask's ellipse, in face sizes: a dlib box runs brow to chin, so reach up for the
# forehead; it is fully kept inside INNER and falls off smoothly to nothing at OUTER
ELLIPSE_UP, ELLIPSE_W, ELLIPSE_H = 0.1, 0.48, 0.62
INNER, OUTER = 0.7, 1.15


@dataclass
class _Track:
    face: Face
    presence: float = 0.0
    misses: int = 0


@dataclass(frozen=True)
class _Request:
    gray: np.ndarray
    near: tuple[tuple[int, Face], ...]  # (track id, box) to look near
    full: bool


@dataclass(frozen=True)
class _Result:
    near: dict[int, Face | None]
    full: list[Face] | None


class FaceKeeper:
    """Follows the faces of one stream and gives each frame its face mask."""

    def __init__(self, background: bool = False) -> None:
        """`background`: detect in a thread of its own (live); else in line (offline)."""
        self.background = background
        self._tracks: dict[int, _Track] = {}
        self._next_id = 0
        self._frame = 0
        self._size: tuple[int, int] | None = None
        self._detector: FaceDetector | None = None
        self._requests: LatestSlot[_Request] = LatestSlot()
        self._result: _Result | None = None
        self._busy = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.detections = 0  # detector runs so far, and their time (for tests and stats)
        self.detect_ms = 0.0
        self.last_mask: np.ndarray | None = None
        self._last_call = 0.0

    def reset(self) -> None:
        with self._lock:
            self._result = None
        self._tracks.clear()
        self._frame = 0

    def mask(self, image: np.ndarray, size: tuple[int, int] | None = None,
             motion: Motion | None = None) -> np.ndarray | None:
        """The HxW float32 mask (0..1) of this frame at `size` (the working size; default
        the image's), or None where no face is kept. Faces are found in `image`, the frame
        at the size it came in: a working size the scale shrank may hold faces too small
        to find. `motion`: the blend's motion from this frame back to the previous one at
        `size`, if it has one."""
        size = size or image.shape[:2]
        self.last_mask = face_mask(size, self.present(image, size, motion))
        return self.last_mask

    def present(self, image: np.ndarray, size: tuple[int, int] | None = None,
                motion: Motion | None = None) -> list[tuple[Face, float]]:
        """This frame's faces at `size`, each with its presence (0..1): what `mask`
        draws (the device chain draws them on its device)."""
        h, w = image.shape[:2]
        size = size or (h, w)
        now = time.monotonic()
        # a new picture size, or live with the option off a while (faces have moved since):
        # start over (offline, a slow frame is no gap in the picture)
        stale = self.background and now - self._last_call > STALE_S
        if (h, w) != self._size or stale:
            self.reset()
            self._size = (h, w)
        self._last_call = now
        scale = size[1] / w  # image -> working pixels
        if motion is not None and not motion.cut and tuple(motion.size) == tuple(size):
            self._follow(motion, scale)
        self._merge(self._take_result())
        self._detect_if_due(image)
        self._frame += 1
        for track in self._tracks.values():
            found = track.misses < MISSES_HELD
            track.presence = min(1.0, track.presence + FADE_IN) if found \
                else max(0.0, track.presence - FADE_OUT)
        self._tracks = {k: t for k, t in self._tracks.items()
                        if t.presence > 0 or t.misses < MISSES_HELD}
        return [(_scaled(t.face, scale), t.presence) for t in self._tracks.values()]

    def close(self) -> None:
        """Stop the detector thread (if one runs)."""
        self._requests.close()
        if self._thread is not None:
            self._thread.join(2.0)

    # ----- following -------------------------------------------------------------------
    def _follow(self, motion: Motion, scale: float) -> None:
        """Move each face with the median motion inside its box (flow is current ->
        previous, so a face moved by minus the flow at it). The flow is read where it was
        estimated, small (`Motion.field`), with `scale` x the image = the working size."""
        flow, k = motion.field()
        h, w = flow.shape[:2]
        for track in self._tracks.values():
            f = _scaled(track.face, scale * k)
            r = f.size / 4
            x0, x1 = int(max(0, f.cx - r)), int(min(w, f.cx + r + 1))
            y0, y1 = int(max(0, f.cy - r)), int(min(h, f.cy + r + 1))
            if x1 <= x0 or y1 <= y0:
                continue
            step = 2 if k == 1.0 else 1
            patch = flow[y0:y1:step, x0:x1:step].reshape(-1, 2)
            dx, dy = np.median(patch, axis=0) / scale
            g = track.face
            track.face = Face(g.cx - float(dx), g.cy - float(dy), g.size, g.score)

    def _merge(self, result: _Result | None) -> None:
        if result is None:
            return
        for tid, found in result.near.items():
            track = self._tracks.get(tid)
            if track is None:
                continue
            if found is None:
                track.misses += 1
            else:
                self._pull(track, found)
        if result.full is None:
            return
        for face in result.full:
            track = self._nearest(face)
            if track is not None:
                self._pull(track, face)
            elif len(self._tracks) < MAX_FACES:
                # in a stream's first frame there is nothing to fade in from
                self._tracks[self._next_id] = _Track(face, 1.0 if self._frame == 0 else 0.0)
                self._next_id += 1

    def _nearest(self, face: Face) -> _Track | None:
        best, best_d = None, None
        for track in self._tracks.values():
            d = np.hypot(track.face.cx - face.cx, track.face.cy - face.cy)
            if d < 0.6 * max(track.face.size, face.size) and (best_d is None or d < best_d):
                best, best_d = track, d
        return best

    @staticmethod
    def _pull(track: _Track, found: Face) -> None:
        f = track.face
        track.face = Face(f.cx + PULL_CENTRE * (found.cx - f.cx),
                          f.cy + PULL_CENTRE * (found.cy - f.cy),
                          f.size + PULL_SIZE * (found.size - f.size), found.score)
        track.misses = 0

    # ----- detecting -------------------------------------------------------------------
    def _detect_if_due(self, frame: np.ndarray) -> None:
        near_due = self._frame % NEAR_EVERY == 0 and bool(self._tracks)
        full_due = self._frame % (FULL_EVERY if self._tracks else SEARCH_EVERY) == 0
        if not (near_due or full_due):
            return
        if self.background and self._busy:
            return  # the detector is still on an earlier frame: this one is skipped
        request = _Request(to_gray(frame), tuple((k, t.face) for k, t in self._tracks.items()),
                           full_due)
        if self.background:
            self._busy = True
            self._start_thread()
            self._requests.put(request)
        else:
            self._merge(self._run(request))

    def _take_result(self) -> _Result | None:
        with self._lock:
            result, self._result = self._result, None
        return result

    def _run(self, request: _Request) -> _Result:
        if self._detector is None:
            self._detector = FaceDetector()
        t0 = time.perf_counter()
        near = {tid: self._detector.find_near(request.gray, face) for tid, face in request.near}
        full = self._detector.find_all(request.gray) if request.full else None
        self.detections += 1
        self.detect_ms += (time.perf_counter() - t0) * 1000.0
        return _Result(near, full)

    def _start_thread(self) -> None:
        if self._thread is None:
            if self._detector is None:
                self._detector = FaceDetector()  # a missing dlib fails here, in the caller
            self._thread = threading.Thread(target=self._work, name="faces", daemon=True)
            self._thread.start()

    def _work(self) -> None:
        while (request := self._requests.get()) is not None:
            try:
                result = self._run(request)
            except Exception as exc:  # a detector failure costs the mask, never the stream
                log.warning("face detection failed: %s", exc)
                result = _Result({}, None)
            with self._lock:
                self._result = result
            self._busy = False


def still_faces(image: np.ndarray, size: tuple[int, int] | None = None
                ) -> list[tuple[Face, float]]:
    """The faces of a single picture at `size` (default its own), every one fully
    present."""
    faces = FaceDetector().find_all(to_gray(image))[:MAX_FACES]
    size = size or image.shape[:2]
    scale = size[1] / image.shape[1]
    return [(_scaled(f, scale), 1.0) for f in faces]


def still_mask(image: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray | None:
    """The face mask of a single picture at `size` (default its own): every face found,
    fully present."""
    return face_mask(size or image.shape[:2], still_faces(image, size))


def _scaled(face: Face, scale: float) -> Face:
    return face if scale == 1.0 else Face(face.cx * scale, face.cy * scale,
                                          face.size * scale, face.score)


def face_mask(size: tuple[int, int], faces: list[tuple[Face, float]]) -> np.ndarray | None:
    """HxW float32 mask of the given (face, presence) pairs, None where none shows."""
    faces = [(f, p) for f, p in faces if p > 0]
    if not faces:
        return None
    h, w = size
    mask = np.zeros((h, w), np.float32)
    for face, presence in faces:
        cx, cy = face.cx, face.cy - ELLIPSE_UP * face.size
        ax, ay = ELLIPSE_W * face.size, ELLIPSE_H * face.size
        x0, x1 = int(max(0, cx - OUTER * ax)), int(min(w, cx + OUTER * ax + 1))
        y0, y1 = int(max(0, cy - OUTER * ay)), int(min(h, cy + OUTER * ay + 1))
        if x1 <= x0 or y1 <= y0:
            continue
        xs = ((np.arange(x0, x1, dtype=np.float32) - cx) / ax) ** 2
        ys = ((np.arange(y0, y1, dtype=np.float32) - cy) / ay) ** 2
        r = np.sqrt(ys[:, None] + xs[None, :])
        m = np.clip((OUTER - r) / (OUTER - INNER), 0.0, 1.0)
        m = m * m * (3.0 - 2.0 * m) * presence  # smoothstep: no visible edge to the fall-off
        np.maximum(mask[y0:y1, x0:x1], m, out=mask[y0:y1, x0:x1])
    return mask


def face_mask_tensor(size: tuple[int, int], faces: list[tuple[Face, float]],
                     device: torch.device) -> torch.Tensor | None:
    """`face_mask` drawn on `device` as a 1x1xHxW tensor: only the faces' numbers cross."""
    faces = [(f, p) for f, p in faces if p > 0]
    if not faces:
        return None
    h, w = size
    ys = torch.arange(h, dtype=torch.float32, device=device).view(-1, 1)
    xs = torch.arange(w, dtype=torch.float32, device=device).view(1, -1)
    mask = torch.zeros((h, w), dtype=torch.float32, device=device)
    for face, presence in faces:
        cx, cy = face.cx, face.cy - ELLIPSE_UP * face.size
        ax, ay = ELLIPSE_W * face.size, ELLIPSE_H * face.size
        r = (((ys - cy) / ay) ** 2 + ((xs - cx) / ax) ** 2).sqrt()
        m = ((OUTER - r) / (OUTER - INNER)).clamp(0.0, 1.0)
        mask = torch.maximum(mask, m * m * (3.0 - 2.0 * m) * presence)
    return mask[None, None]


def keep_face_tensor(frame: torch.Tensor, styled: torch.Tensor,
                     faces: list[tuple[Face, float]], amount: float) -> torch.Tensor:
    """`keep_face` on the device road: 1x3xHxW tensors, the mask drawn there."""
    mask = face_mask_tensor(tuple(styled.shape[-2:]), faces, styled.device)
    if mask is None or amount <= 0.0:
        return styled
    return torch.lerp(styled, frame, mask * amount)


def keep_face(frame: np.ndarray, styled: np.ndarray, mask: np.ndarray | None,
              amount: float) -> np.ndarray:
    """`styled` mixed towards `frame` by `amount` x `mask` (HxW 0..1); only the mask's
    bounding box is touched, so the cost follows the faces' size, not the frame's."""
    if mask is None or amount <= 0.0:
        return styled
    ys, xs = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if not len(ys):
        return styled
    y0, y1, x0, x1 = ys[0], ys[-1] + 1, xs[0], xs[-1] + 1
    a = np.ascontiguousarray(mask[y0:y1, x0:x1]) * np.float32(amount)
    out = styled.copy()
    out[y0:y1, x0:x1] = cv2.blendLinear(frame[y0:y1, x0:x1], styled[y0:y1, x0:x1], a, 1.0 - a)
    return out
