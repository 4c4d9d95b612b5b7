"""Finding faces: dlib's HOG frontal-face detector, which ships inside the `dlib-bin` wheel
(no model file, nothing downloaded).

Chosen over the alternatives measured on the shared webcam clips (20 ASL clips, 640x480,
one frame in 15): dlib found a face in 89% of frames, 19 ms a full 640x480 frame and 2 ms
near a known face; OpenCV 4's Haar cascade 96% but 30 ms (and OpenCV 5, which the
project uses, has neither cascades nor `CascadeClassifier`); MediaPipe's models need
numpy<2; the ONNX face models found on PyPI come in packages that require the GUI
`opencv-python`, which must not be installed beside the headless build.

A search near a known face runs on a crop of about twice its size, resized so the face
is ~90 px (just over the detector's window): 10x cheaper than the whole frame, and it finds faces
smaller than the window too.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from streamnst.core.errors import DeviceError

#: dlib's detector slides an 80x80 window; a face is searched for at about this size
WINDOW = 80
#: a crop around a known face spans this many face sizes, resized to NEAR_SIDE pixels
NEAR_SPAN = 2.0
NEAR_SIDE = 180
#: the whole frame is searched at most this size (a face smaller than the window at that
#: size is too small to matter in a video call)
FULL_SIDE = 640


@dataclass(frozen=True)
class Face:
    """A face's square box in frame pixels: centre and side."""

    cx: float
    cy: float
    size: float
    score: float = 0.0


class FaceDetector:
    """dlib's HOG frontal-face detector on grey uint8 frames (thread-safe per instance only
    if not shared: make one per thread)."""

    def __init__(self, threshold: float = 0.0) -> None:
        try:
            import dlib
        except ImportError as exc:
            raise DeviceError("--keep-face needs dlib's face detector: "
                              "python -m pip install dlib-bin") from exc
        self._detect = dlib.get_frontal_face_detector()
        self.threshold = threshold  # dlib's score offset: higher finds fewer, surer faces

    def _run(self, gray: np.ndarray, scale: float, x0: float = 0.0,
             y0: float = 0.0) -> list[Face]:
        """Faces in `gray` (already resized by `scale` from frame pixels at x0, y0)."""
        boxes, scores, _ = self._detect.run(np.ascontiguousarray(gray), 0, self.threshold)
        return [Face(x0 + (b.left() + b.right()) / 2 / scale,
                     y0 + (b.top() + b.bottom()) / 2 / scale, b.width() / scale, float(sc))
                for b, sc in zip(boxes, scores, strict=True)]

    def find_all(self, gray: np.ndarray) -> list[Face]:
        """Every face in the frame, largest first."""
        h, w = gray.shape[:2]
        scale = min(1.0, FULL_SIDE / max(h, w))
        small = gray if scale == 1.0 else cv2.resize(
            gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        return sorted(self._run(small, scale), key=lambda f: -f.size)

    def find_near(self, gray: np.ndarray, face: Face) -> Face | None:
        """The face nearest `face` in a crop around it, or None where none is there."""
        h, w = gray.shape[:2]
        half = NEAR_SPAN * face.size / 2
        x0, y0 = max(0, int(face.cx - half)), max(0, int(face.cy - half))
        x1, y1 = min(w, int(face.cx + half)), min(h, int(face.cy + half))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        crop = gray[y0:y1, x0:x1]
        scale = NEAR_SIDE / (NEAR_SPAN * face.size)
        size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if scale < 1
                          else cv2.INTER_LINEAR)
        found = self._run(crop, scale, x0, y0)
        if not found:
            return None
        return min(found, key=lambda f: (f.cx - face.cx) ** 2 + (f.cy - face.cy) ** 2)


def to_gray(image: np.ndarray) -> np.ndarray:
    """RGB uint8 -> grey uint8, what the detector reads."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
