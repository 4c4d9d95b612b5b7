"""The source's sound on the shared sample clock: queues placed by time, silence in gaps,
and a video file's sound published in step with its pictures."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from media import make_video

from streamnst.core.audio import RATE, AudioFeed, SoundQueue, sample_at
from streamnst.live.sources import VideoFileSource


def test_chunks_are_read_by_time_with_silence_in_the_gaps():
    queue = SoundQueue()
    queue.put(1000, np.ones((2, 100), np.float32))
    queue.put(1200, np.full((2, 50), 0.5, np.float32))
    out = queue.read(1050, 200)  # 1050..1250
    assert (out[:, :50] == 1).all() and (out[:, 50:150] == 0).all()
    assert (out[:, 150:200] == 0.5).all()
    assert (queue.read(1300, 10) == 0).all()  # nothing there: silence
    assert (queue.read(1000, 10) == 0).all()  # read past: those chunks were let go


def test_the_queue_holds_a_few_seconds_at_most():
    queue = SoundQueue()
    for i in range(100):
        queue.put(i * RATE, np.ones((2, RATE), np.float32))  # 100 s, nobody reading
    assert len(queue._chunks) <= SoundQueue.HOLD_S + 1


def test_a_feed_reaches_every_queue():
    feed = AudioFeed()
    a, b = feed.subscribe(), feed.subscribe()
    feed.publish(np.full((2, 480), 0.25, np.float32), 2.0)
    for q in (a, b):
        assert (q.read(sample_at(2.0), 480) == 0.25).all()


def _beep_video(path: Path, fps: int = 15, frames: int = 60) -> Path:
    """White frames while a 440 Hz beep sounds (frames 20-39), black ones in silence."""
    with av.open(str(path), mode="w") as c:
        v = c.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("aac", rate=RATE)
        a.layout = "mono"
        for i in range(frames):
            value = 255 if 20 <= i < 40 else 0
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), value, np.uint8), "rgb24")
            f.pts, f.time_base = i, Fraction(1, fps)
            c.mux(v.encode(f))
        c.mux(v.encode(None))
        t = np.arange(int(RATE * frames / fps)) / RATE
        on = (t >= 20 / fps) & (t < 40 / fps)
        sound = (0.5 * np.sin(2 * np.pi * 440 * t) * on).astype(np.float32)[None]
        for start in range(0, sound.shape[1], 1024):
            f = av.AudioFrame.from_ndarray(sound[:, start:start + 1024], "fltp", "mono")
            f.sample_rate, f.pts = RATE, start
            c.mux(a.encode(f))
        c.mux(a.encode(None))
    return path


def test_a_video_file_publishes_its_sound_in_step_with_its_pictures(tmp_path):
    source = VideoFileSource(_beep_video(tmp_path / "beep.mp4"), loop=False)
    assert source.audio is not None
    queue = source.audio.subscribe()
    got = []
    source.start()
    while (frame := source.slot.get(timeout=2)) is not None:  # None: the file ended
        got.append(frame)
    source.stop()
    frames = []
    for frame in got:  # the sound that played during each frame's 1/15 s
        sound = queue.read(sample_at(frame.timestamp), RATE // 15)
        frames.append((frame.image.mean() > 128, np.sqrt((sound ** 2).mean())))
    assert len(frames) >= 55
    loud = [rms > 0.1 for _, rms in frames]
    white = [w for w, _ in frames]
    # at most a frame's worth of disagreement at each edge of the beep
    assert sum(a != b for a, b in zip(loud, white, strict=True)) <= 2, frames
    assert sum(white) >= 18


def test_a_file_without_sound_has_no_feed(tmp_path):
    assert VideoFileSource(make_video(tmp_path / "mute.mp4", audio=False)).audio is None
    assert VideoFileSource(make_video(tmp_path / "tone.mp4"), speed=2).audio is None
