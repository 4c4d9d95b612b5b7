"""A real media server for the broadcast tests and tools/broadcast_bench.py: nginx with
Debian's RTMP module, in a folder of its own, on a free loopback port, in the foreground
(`daemon off`, `master_process off`), killed and restarted at will."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import av
import numpy as np
from cli_helpers import free_port, port_open, wait_until

MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
CONFIG = """daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
load_module {module};
events {{ worker_connections 256; }}
rtmp {{ server {{ listen 127.0.0.1:{port}; chunk_size 4096;
    application live {{ live on; record off; }}
    application closed {{ live on; deny publish all; }} }} }}
"""


def available() -> bool:
    return bool(shutil.which("nginx")) and MODULE.is_file()


class Nginx:
    def __init__(self, folder: Path) -> None:
        self.dir, self.port = folder, free_port()
        (folder / "nginx.conf").write_text(CONFIG.format(dir=folder, module=MODULE,
                                                          port=self.port))
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["nginx", "-e", str(self.dir / "error.log"), "-p",
                                      str(self.dir), "-c", str(self.dir / "nginx.conf")])
        if not wait_until(lambda: port_open(self.port), 10):
            raise RuntimeError("nginx did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)

    def url(self, key: str, app: str = "live") -> str:
        return f"rtmp://127.0.0.1:{self.port}/{app}/{key}"


def pull(url: str, frames: int, timeout: float = 30.0) -> list[np.ndarray]:
    """`frames` decoded frames of the live stream at `url`, read by a separate client."""
    got: list[np.ndarray] = []

    def read() -> None:
        with av.open(f"{url} live=1", timeout=timeout) as c:
            for frame in c.decode(video=0):
                got.append(frame.to_ndarray(format="rgb24"))
                if len(got) >= frames:
                    return

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(timeout)
    return got


def pull_sound(url: str, seconds: float, timeout: float = 30.0) -> tuple[np.ndarray, int]:
    """`seconds` of the live stream's sound at `url` (mono float, its rate), read by a
    separate client."""
    got: list[np.ndarray] = []
    rate = [0]

    def read() -> None:
        with av.open(f"{url} live=1", timeout=timeout) as c:
            stream = c.streams.audio[0]
            rate[0] = stream.codec_context.sample_rate
            for frame in c.decode(stream):
                got.append(frame.to_ndarray().astype(np.float32).reshape(
                    -1, frame.samples).mean(axis=0))
                if sum(map(len, got)) >= seconds * rate[0]:
                    return

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(timeout)
    return (np.concatenate(got) if got else np.zeros(0, np.float32)), rate[0]


def loudest_hz(sound: np.ndarray, rate: int) -> float:
    """The frequency with the most energy in `sound`."""
    spectrum = np.abs(np.fft.rfft(sound * np.hanning(len(sound))))
    return float(np.fft.rfftfreq(len(sound), 1 / rate)[int(spectrum.argmax())])
