"""Virtual cameras faked at pyvirtualcam's own seam, its registered backends (no
v4l2loopback device exists here): "recording" keeps every frame it is sent, "slow" takes
0.15 s per frame, "broken" fails on every frame."""

import time

import numpy as np
import pyvirtualcam


class RecordingCamera:
    """A pyvirtualcam backend that keeps what it is sent (the library's own seam)."""

    instances: list["RecordingCamera"] = []
    delay = 0.0

    def __init__(self, *, width, height, fps, fourcc, device, **kw):
        self.width, self.height, self.fps, self.fourcc = width, height, fps, fourcc
        self.frames: list[np.ndarray] = []
        self.closed = False
        RecordingCamera.instances.append(self)

    def send(self, frame):
        time.sleep(self.delay)
        # pyvirtualcam hands backends the packed native-format buffer
        self.frames.append(np.array(frame, copy=True).reshape(self.height, self.width, 3))

    def close(self):
        self.closed = True

    def device(self):
        return "recording-cam"

    def native_fourcc(self):
        return pyvirtualcam.util.FOURCC_RGB


class SlowCamera(RecordingCamera):
    delay = 0.15


class BrokenCamera(RecordingCamera):
    """A driver that fails on every frame."""

    def send(self, frame):
        raise RuntimeError("the camera driver rejected the frame")


pyvirtualcam.register_backend("recording", RecordingCamera)
pyvirtualcam.register_backend("slow", SlowCamera)
pyvirtualcam.register_backend("broken", BrokenCamera)
