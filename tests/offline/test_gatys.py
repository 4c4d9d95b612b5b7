import numpy as np
import pytest
import torch
from cli_helpers import assert_clean_error, run_cli
from media import make_video, probe
from torchvision.models import vgg16

from streamnst.core.errors import InputError
from streamnst.media.demo import demo_clip
from streamnst.media.video import VideoReader
from streamnst.nets.vgg import VGGFeatures
from streamnst.offline.gatys import Gatys, GatysSettings, frames_dir, render_gatys
from streamnst.offline.metrics import warping_errors

LAYERS = ("relu1_2", "relu2_2")


def _vgg():
    torch.manual_seed(3)
    return VGGFeatures(vgg16(weights=None).features.state_dict(), "torchvision", LAYERS,
                       arch="vgg16")


def _settings(**kw):
    base = dict(resize=48, iterations=4, first_iterations=8, style_layers=LAYERS,
                content_layers=("relu2_2",), tolerance=0.0)
    base.update(kw)
    return GatysSettings(**base)


def _style():
    yy, xx = np.mgrid[0:48, 0:48]
    return np.dstack([(np.sin(xx / 3) > 0) * 255, (np.cos(yy / 2) > 0) * 200,
                      np.full_like(xx, 50)]).astype(np.uint8)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_iterations_lower_the_loss(optimizer):
    g = Gatys(_style(), _vgg(), _settings(optimizer=optimizer, first_iterations=12, lr=0.05))
    content = np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    out = g.stylize_image(content)
    assert out.shape == (40, 48, 3)
    assert g.last_history[-1] < 0.9 * g.last_history[0]


@pytest.mark.slow
def test_default_optimizer_cuts_the_style_loss_tenfold_with_vgg19():
    """The issue's check: L-BFGS with the packaged VGG19 on a small real frame."""
    from streamnst.media.imageio import read_image
    from streamnst.nets.vgg import load_vgg

    with VideoReader(demo_clip()) as reader:
        frame = next(iter(reader))
    s = GatysSettings(resize=64, first_iterations=40, tolerance=0.0)
    assert s.optimizer == "lbfgs"
    g = Gatys(read_image("styles/vangogh_starry_night_1889.jpg"), load_vgg(None, s.layers), s)
    style = []
    out = g.stylize_image(frame, on_iter=lambda i, terms: style.append(terms["style"]))
    assert len(g.last_history) == len(style) == 40  # one entry per optimiser step
    assert g.stop_reason == "ran all 40 iterations"
    assert style[-1] < 0.1 * style[0], (style[0], style[-1])
    assert out.shape[:2] == (48, 64) and out.dtype == np.uint8


def test_early_stop_says_why():
    g = Gatys(_style(), _vgg(), _settings(first_iterations=50, tolerance=0.5, patience=2))
    g.stylize_image(np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8))
    assert len(g.last_history) < 50
    assert g.stop_reason.startswith("converged at iteration")


@pytest.mark.slow
def test_video_resume_skips_finished_frames(tmp_path):
    src = make_video(tmp_path / "in.mp4", frames=4, width=48, height=32, fps=8)
    out = tmp_path / "out.mp4"
    g = Gatys(_style(), _vgg(), _settings())
    _, done, reused = render_gatys(src, out, g)
    assert (done, reused) == (4, 0)
    work = frames_dir(out)
    kept = (work / "frame_000001.png").read_bytes()
    (work / "frame_000003.png").unlink()  # as if the render had been killed there
    out.unlink()
    _, done, reused = render_gatys(src, out, g)
    assert (done, reused) == (1, 3)
    assert (work / "frame_000001.png").read_bytes() == kept
    info = probe(out)
    assert info["frames"] == 4 and info["audio_codec"] == "aac"


def test_gif_in_gif_out(tmp_path):
    """The original video-nst tool's round trip: an animated GIF in, one out."""
    from PIL import Image

    rng = np.random.default_rng(2)
    frames = [Image.fromarray(rng.integers(0, 255, (32, 48, 3), dtype=np.uint8))
              for _ in range(3)]
    src = tmp_path / "in.gif"
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=100, loop=0)
    out = tmp_path / "out.gif"
    _, done, _ = render_gatys(src, out, Gatys(_style(), _vgg(), _settings()))
    assert done == 3
    with Image.open(out) as gif:
        assert gif.n_frames == 3 and gif.size == (48, 32) and gif.info["loop"] == 0


@pytest.mark.slow
def test_temporal_loss_makes_frames_consistent(tmp_path):
    rng = np.random.default_rng(5)
    big = rng.integers(0, 255, (12, 24, 3), dtype=np.uint8)
    import cv2
    big = cv2.resize(big, (96, 48), interpolation=cv2.INTER_CUBIC)
    frames = [big[:, 2 * i:2 * i + 64].copy() for i in range(4)]
    results = {}
    for temporal in (False, True):
        # per-frame: each frame from its content; temporal: from the warped previous
        # result, held to it where the flow is reliable (the defaults)
        g = Gatys(_style(), _vgg(), _settings(temporal=temporal, temporal_weight=200.0,
                                              init="prev_warped" if temporal else "content",
                                              resize=64, iterations=10, first_iterations=10,
                                              optimizer="adam", lr=0.05))
        outs, pc, po = [], None, None
        for f in frames:
            o = g.next_frame(f, pc, po)
            outs.append(o)
            pc, po = f, o
        results[temporal] = warping_errors(outs, frames).ewarp_stylized
    assert results[True] < 0.7 * results[False], results


def test_bad_settings():
    with pytest.raises(InputError, match="init"):
        GatysSettings(init="zeros")
    with pytest.raises(InputError, match="optimizer"):
        GatysSettings(optimizer="sgd")
    with pytest.raises(InputError, match="unknown VGG layers"):
        GatysSettings(style_layers=("relu9_9",))


@pytest.mark.slow
def test_cli_image_and_errors(tmp_path):
    import cv2
    feats = vgg16(weights=None).features
    vgg_file = tmp_path / "vgg.pth"
    torch.save({f"features.{k}": v for k, v in feats.state_dict().items()}, vgg_file)
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    cv2.imwrite(str(content), np.random.default_rng(0).integers(0, 255, (30, 40, 3),
                                                                   dtype=np.uint8))
    cv2.imwrite(str(style), _style())
    out = tmp_path / "o.png"
    r = run_cli("gatys", content, style, out, "--vgg", vgg_file, "--resize", "32",
                "--first-iterations", "3", "--style-layers", "relu1_2,relu2_2")
    assert r.returncode == 0, r.stderr
    assert out.exists()
    assert_clean_error(run_cli("gatys", content, style, out, "--vgg", vgg_file), "exists")
    assert_clean_error(run_cli("gatys", tmp_path / "no.png", style, tmp_path / "p.png",
                               "--vgg", vgg_file), "not found")
    assert_clean_error(run_cli("gatys", content, style, tmp_path / "q.png", "--vgg",
                               tmp_path / "none.pth"), "not found")
