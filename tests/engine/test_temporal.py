import cv2
import numpy as np
import pytest
import torch

from streamnst.core.errors import InputError
from streamnst.engine.flow import FlowEstimator, consistency_mask, flow_to_tensor, warp
from streamnst.engine.temporal import Blender, BlendSettings


def scene(t: int, h: int = 96, w: int = 128) -> np.ndarray:
    """Textured background, and a bright checkered square moving right by 4 px a frame."""
    rng = np.random.default_rng(42)
    tex = rng.integers(40, 200, (h // 8, w // 8, 3)).astype(np.uint8)
    img = np.kron(tex, np.ones((8, 8, 1), np.uint8))
    x = 10 + 4 * t
    yy, xx = np.mgrid[0:32, 0:32]
    checks = ((yy // 4 + xx // 4) % 2)[..., None]  # textured, so flow can lock on
    img[30:62, x:x + 32] = np.where(checks, (250, 250, 40), (200, 120, 20))
    return img


def flicker(img: np.ndarray, t: int) -> np.ndarray:
    """A 'stylisation' that flickers: the picture plus fresh noise every frame."""
    noise = np.random.default_rng(t).normal(0, 25, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def run(mode: str, strength: float = 0.8, frames: int = 12):
    b = Blender(BlendSettings(mode=mode, strength=strength, flow_max_side=128))
    outs = [b(scene(t), flicker(scene(t), t)) for t in range(frames)]
    return b, outs


def test_off_returns_stylisation():
    b = Blender(BlendSettings(mode="off"))
    assert np.array_equal(b(scene(0), flicker(scene(0), 0)), flicker(scene(0), 0))


def test_flow_blend_reduces_flicker_and_leaves_no_ghost():
    _, flow_out = run("flow")
    _, ema_out = run("ema")
    _, off_out = run("off")
    t = 11
    clean = scene(t).astype(float)

    def err(img, region):
        return np.abs(img.astype(float) - clean)[region].mean()

    background = (slice(70, 96), slice(0, 128))  # never covered by the square
    trail = (slice(30, 62), slice(10 + 4 * (t - 3), 10 + 4 * t))  # where it was just before
    assert err(flow_out[t], background) < 0.6 * err(off_out[t], background)  # steadier
    # ema drags the square behind it; flow-guided blending does not
    assert err(ema_out[t], trail) > 40
    assert err(flow_out[t], trail) < 0.5 * err(ema_out[t], trail)
    # the moving square stays sharp and in place
    square = (slice(34, 58), slice(10 + 4 * t + 4, 10 + 4 * t + 28))
    assert err(flow_out[t], square) < err(off_out[t], square) + 5


def test_a_still_cameras_flow_noise_moves_nothing():
    """Sub-pixel flow on a still background is noise: warping a textured output (and the
    canvas) by it every frame made still walls shimmer, so the shared motion zeroes it,
    and keeps the real motion of the square."""
    b = Blender(BlendSettings(mode="flow", flow_max_side=128))
    rng = np.random.default_rng(0)
    frames = [np.clip(scene(t) + rng.normal(0, 2, scene(t).shape), 0, 255).astype(np.uint8)
              for t in range(3)]
    for t, frame in enumerate(frames):
        motion = b.track(frame)  # None for the first frame: nothing to follow yet
        b(frame, flicker(frame, t), motion)
    raw = FlowEstimator(128)(frames[2], frames[1])[70:96]
    assert np.abs(raw).max() > 0.01  # the estimator does see noise there
    assert np.count_nonzero(motion.flow[70:96]) == 0
    square = motion.flow[36:56, 10 + 4 * 2 + 6:10 + 4 * 2 + 26, 0]  # current -> previous
    assert np.median(square) < -0.5


def test_scene_cut_resets():
    b = Blender(BlendSettings(mode="flow", strength=0.9, flow_max_side=128))
    b(scene(0), scene(0))
    other = np.random.default_rng(7).integers(0, 255, scene(0).shape, dtype=np.uint8)
    out = b(other, other)
    assert b.cuts == 1 and np.array_equal(out, other)


def test_size_change_and_bad_settings():
    b = Blender(BlendSettings(mode="flow"))
    b(scene(0), scene(0))
    small = scene(0)[:64, :64].copy()
    assert np.array_equal(b(small, small), small)
    with pytest.raises(InputError):
        BlendSettings(mode="smear")
    with pytest.raises(InputError):
        BlendSettings(strength=1.0)
    with pytest.raises(InputError, match="sizes differ"):
        b(scene(0), small)


def test_a_scale_step_keeps_blending():
    import cv2

    # flow runs at flow_max_side whatever the working size, as live (256 for 640 and 320)
    b = Blender(BlendSettings(mode="flow", strength=0.7, flow_max_side=48))
    bright = np.full_like(scene(0), 200)
    b(scene(0), bright)
    half = cv2.resize(scene(0), (64, 48), interpolation=cv2.INTER_AREA)  # same picture
    out = b(half, np.zeros_like(half))
    assert out.shape == half.shape
    # the past (200) carried over at the new size: 0.7 x 200 where the flow is reliable
    assert abs(float(np.median(out)) - 140) < 15
    # and back up again
    out = b(scene(0), np.zeros_like(scene(0)))
    assert abs(float(np.median(out)) - 98) < 15


def test_warp_moves_content_the_right_way():
    img = torch.zeros(1, 1, 20, 30)
    img[..., 5:10, 12:15] = 1.0
    flow = torch.zeros(1, 2, 20, 30)
    flow[:, 0] = 3.0  # out(p) = img(p + 3 px right): content appears 3 px to the left
    out = warp(img, flow)
    assert out[..., 5:10, 9:12].min() == 1.0 and out[..., 5:10, 12:15].max() < 1.0


def test_opencv_warp_matches_the_torch_warp():
    """The blender's full-size warp (OpenCV remap) and the shared torch warp agree."""
    from streamnst.engine.flow import warp_image

    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8), (5, 5), 0)
    yy, xx = np.mgrid[0:40, 0:56].astype(np.float32)
    flow = np.dstack([2.5 * np.sin(yy / 7), 1.5 * np.cos(xx / 9)]).astype(np.float32)
    t_img = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    for cubic, mode in ((False, "bilinear"), (True, "bicubic")):
        ours = warp_image(img, flow, cubic=cubic).astype(float)
        ref = warp(t_img, flow_to_tensor(flow), mode=mode)[0].permute(1, 2, 0).numpy()
        inner = np.abs(ours - ref.clip(0, 255))[4:-4, 4:-4]
        assert inner.mean() < 1.0 and inner.max() <= 3, (mode, inner.mean(), inner.max())


def test_flow_estimator_direction_and_mask_on_disocclusion():
    a, b = scene(2), scene(3)  # square moves +4 px in x from a to b
    f_ab = FlowEstimator(max_side=None, preset="medium")(a, b)
    assert abs(np.median(f_ab[36:56, 22:38, 0]) - 4.0) < 1.0  # on the square
    warped = warp(torch.from_numpy(b).permute(2, 0, 1)[None].float(), flow_to_tensor(f_ab))
    err_before = np.abs(b.astype(float) - a).mean()
    err_after = np.abs(warped[0].permute(1, 2, 0).numpy() - a).mean()
    assert err_after < 0.5 * err_before
    f_ba = FlowEstimator(max_side=None, preset="medium")(b, a)
    mask = consistency_mask(flow_to_tensor(f_ab), flow_to_tensor(f_ba))[0, 0].numpy()
    assert mask[75:, :].mean() > 0.9  # static background is reliable
    assert mask.mean() < 0.99  # the occluded/disoccluded band is not


def test_bicubic_warp_keeps_detail_under_repeated_warps():
    # the flow blend warps its own output every frame: half-pixel shifts to and fro
    img = torch.from_numpy(scene(0)).permute(2, 0, 1)[None].float()
    shift = torch.zeros(1, 2, *img.shape[-2:])
    shift[:, 0] = 0.5
    sharp = {}
    for mode in ("bilinear", "bicubic"):
        x = img
        for i in range(10):
            x = warp(x, shift if i % 2 else -shift, mode=mode)
        g = x[0].mean(0)
        lap = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
        sharp[mode] = float(lap[8:-8, 8:-8].var())
    assert sharp["bicubic"] > 1.5 * sharp["bilinear"]


def test_photometric_mask_trusts_matches_and_refuses_occlusion_and_the_frame_edge():
    from streamnst.engine.flow import photometric_mask

    cur, prev = scene(3), scene(2)  # the square moved +4 px in x from prev to cur
    h, w = cur.shape[:2]
    true = np.zeros((h, w, 2), np.float32)
    true[30:62, 22:54, 0] = -4.0  # cur's square pixels came from 4 px to the left in prev
    mask = photometric_mask(cur, prev, true, tolerance=40.0)
    assert mask[70:, :].mean() > 0.99 and mask[30:62, 22:54].mean() > 0.99  # exact matches
    # the strip the square uncovered: flow 0 there finds the square in prev, not the wall
    assert mask[30:62, 18:22].mean() < 0.2
    # a flow that leaves the frame is refused whatever the colours
    out = np.zeros_like(true)
    out[..., 0] = -3.0
    assert mask_cols(photometric_mask(cur, cur, out, 40.0), 0, 3) == 0.0
    # estimated flow, as the blend uses it: most of the frame trusted, the seam not
    est = FlowEstimator(max_side=None, preset="fast")(cur, prev)
    estimated = photometric_mask(cur, prev, est, 40.0)
    assert estimated.mean() > 0.85 and estimated[30:62, 18:22].mean() < 0.5


def mask_cols(mask: np.ndarray, start: int, stop: int) -> float:
    return float(mask[:, start:stop].max())


def test_still_flow_is_dropped_exactly_as_its_definition():
    from streamnst.engine.temporal import STILL_PX, _drop_still

    rng = np.random.default_rng(0)
    flow = (rng.standard_normal((90, 160, 2)) * STILL_PX).astype(np.float32)
    flow[0, 0] = (STILL_PX, 0.0)  # exactly still-speed: kept
    flow[0, 1] = (STILL_PX * 0.99, 0.0)  # just under: dropped
    expected = flow.copy()
    expected[np.sum(expected * expected, axis=2) < STILL_PX ** 2] = 0.0
    _drop_still(flow)
    assert np.array_equal(flow, expected)
    assert flow[0, 0, 0] == STILL_PX and flow[0, 1, 0] == 0.0
