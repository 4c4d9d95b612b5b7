import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from cli_helpers import assert_clean_error, run_cli
from torchvision.models import vgg16
from train_helpers import random_vgg, tiny_config

from streamnst.core.errors import InputError
from streamnst.nets.checkpoint_io import load_style, read_checkpoint_file
from streamnst.training.stabilisation import motion_views, smooth_random_flow
from streamnst.training.trainer import TrainConfig, Trainer


@pytest.fixture
def photos(tmp_path):
    d = tmp_path / "photos" / "nested"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(6):
        img = cv2.GaussianBlur(rng.integers(0, 255, (48, 56, 3), dtype=np.uint8), (5, 5), 0)
        cv2.imwrite(str(d / f"p{i}.png"), img)
    style = tmp_path / "style.png"
    yy, xx = np.mgrid[0:40, 0:40]
    stripes = ((np.sin(xx / 2.0) > 0) * 255).astype(np.uint8)
    cv2.imwrite(str(style), np.dstack([stripes, 255 - stripes, np.full_like(stripes, 60)]))
    return tmp_path


@pytest.fixture
def random_vgg_file(tmp_path):
    torch.manual_seed(1)
    feats = vgg16(weights=None).features[:9]
    path = tmp_path / "vgg_random.pth"
    torch.save({f"features.{k}": v for k, v in feats.state_dict().items()}, path)
    return path


def _config(root, **kw) -> TrainConfig:
    return tiny_config(**{"style_image": str(root / "style.png"), "data": str(root / "photos"),
                          "out": str(root / "out" / "s.pth"), **kw})


def test_loss_decreases(photos):
    # a random VGG's content features are touchy: a light content weight lets style lead
    t = Trainer(_config(photos, steps=40, noise_weight=0, motion_weight=0, content_weight=0.2),
                vgg=random_vgg())
    fixed = t.sampler.batch(4, torch.Generator().manual_seed(9))

    def losses() -> dict[str, float]:
        with torch.no_grad():
            return {k: float(v) for k, v in t.losses(fixed).items()}

    # the network starts near the identity (content loss ~0): training trades some
    # content for more style
    before = losses()
    for _ in range(40):
        t.train_step()
    after = losses()
    assert after["style"] < 0.8 * before["style"], (before, after)
    assert after["total"] < 0.85 * before["total"], (before, after)


def test_checkpoint_loads_and_has_training_metadata(photos):
    cfg = _config(photos, steps=3, shading=0.6, canvas=3.0)
    result = Trainer(cfg, vgg=random_vgg()).run()
    ckpt = load_style(result.checkpoint)
    assert ckpt.shading == 0.6  # stylize and live use it unless told otherwise
    assert ckpt.canvas == 3.0 and ckpt.training["canvas"] == 3.0
    assert ckpt.arch == "unet" and ckpt.arch_args["width"] == 4
    assert ckpt.training["step"] == 3 and ckpt.training["noise_weight"] == cfg.noise_weight
    # names, not this machine's paths
    assert ckpt.training["style_image"] == Path(cfg.style_image).name
    assert ckpt.training["data"] == Path(cfg.data).name
    assert ckpt.style["thumbnail"].dtype == torch.uint8
    assert result.samples and result.samples[0].suffix == ".png"
    assert (cfg.run_path / "losses.csv").read_text().count("\n") == 4
    assert load_style(cfg.run_path / "styles" / "step_000003.pth").training["step"] == 3


@pytest.mark.slow
def test_resume_reproduces_an_uninterrupted_run(photos):
    straight = Trainer(_config(photos, run_dir=str(photos / "a")), vgg=random_vgg())
    straight.run()
    half = Trainer(_config(photos, run_dir=str(photos / "b"), steps=3), vgg=random_vgg())
    half.run()
    resumed = Trainer(_config(photos, run_dir=str(photos / "b")), vgg=random_vgg())
    resumed.run(resume=True)
    assert resumed.step == 6
    for k, v in straight.net.state_dict().items():
        assert torch.equal(v, resumed.net.state_dict()[k]), k
    rows = (photos / "b" / "losses.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4", "5", "6"]


@pytest.mark.slow
def test_resume_refuses_changed_architecture(photos):
    Trainer(_config(photos, steps=3), vgg=random_vgg()).run()
    from streamnst.core.errors import CheckpointError
    with pytest.raises(CheckpointError, match="width=4"):
        Trainer(_config(photos, width=8), vgg=random_vgg()).run(resume=True)


@pytest.mark.slow
def test_resume_with_more_steps_extends_a_finished_run(photos):
    Trainer(_config(photos, steps=3), vgg=random_vgg()).run()
    longer = Trainer(_config(photos, steps=5), vgg=random_vgg())
    longer.run(resume=True)
    assert longer.step == 5
    assert load_style(longer.config.out).training["steps"] == 5


@pytest.mark.slow
def test_runs_saved_before_fine_blocks_resume_as_fine_blocks_0(photos):
    first = Trainer(_config(photos, steps=3), vgg=random_vgg())
    first.run()
    state = torch.load(first.state_path, weights_only=True)
    del state["config"]["fine_blocks"]  # as an earlier release wrote it
    torch.save(state, first.state_path)
    from streamnst.core.errors import CheckpointError
    with pytest.raises(CheckpointError, match="fine_blocks=0"):
        Trainer(_config(photos, fine_blocks=1), vgg=random_vgg()).run(resume=True)
    resumed = Trainer(_config(photos), vgg=random_vgg())
    resumed.run(resume=True)
    assert resumed.step == 6


def _grads(trainer: Trainer, seed: int = 5) -> torch.Tensor:
    trainer.gen.manual_seed(seed)
    torch.manual_seed(seed)
    x = torch.rand(2, 3, 32, 32)
    trainer.net.zero_grad()
    trainer.losses(x)["total"].backward()
    return torch.cat([p.grad.flatten() for p in trainer.net.parameters()])


@pytest.mark.slow
@pytest.mark.parametrize("term", ["noise_weight", "motion_weight"])
def test_stabilisation_terms_change_the_gradients(photos, term):
    off = dict(noise_weight=0.0, motion_weight=0.0)
    on = dict(off, **{term: 5.0})
    # the same random draws for both: only the added term differs
    a = Trainer(_config(photos, **off), vgg=random_vgg())
    b = Trainer(_config(photos, **on), vgg=random_vgg())
    b.net.load_state_dict(a.net.state_dict())
    a.net.eval(), b.net.eval()  # batch-norm statistics would differ with the extra views
    b.net.train(False)
    a.gen.manual_seed(5)
    b.gen.manual_seed(5)
    x = torch.rand(2, 3, 32, 32)
    terms = b.losses(x)
    name = term.split("_")[0]
    assert terms[name] > 0
    ga = torch.autograd.grad(a.losses(x)["total"], list(a.net.parameters()))
    gb = torch.autograd.grad(terms["total"], list(b.net.parameters()))
    diff = sum((u - v).abs().sum() for u, v in zip(ga, gb, strict=True))
    assert diff > 1e-6


@pytest.mark.slow
def test_the_canvas_grain_reaches_the_network_in_training(photos):
    a = Trainer(_config(photos, canvas=0.0), vgg=random_vgg())
    b = Trainer(_config(photos, canvas=8.0), vgg=random_vgg())
    b.net.load_state_dict(a.net.state_dict())
    a.net.eval(), b.net.eval()
    assert (_grads(a) - _grads(b)).abs().sum() > 1e-6
    assert (_grads(a) - _grads(a)).abs().sum() == 0  # the same draws give the same step
    with pytest.raises(InputError, match="--canvas must be between 0 and 32"):
        _config(photos, canvas=50.0)


@pytest.mark.slow
def test_an_older_log_is_relaid_under_todays_header_on_resume(photos):
    cfg = _config(photos, steps=3)
    Trainer(cfg, vgg=random_vgg()).run()
    path = cfg.run_path / "losses.csv"
    header, *rows = path.read_text().splitlines()
    # a log from a release that had a colour column: resuming re-lays it under today's header
    old = [header.replace(",images_per_s", ",colour,images_per_s")]
    old += [",".join([*f[:-1], "0.5", f[-1]]) for f in (r.split(",") for r in rows)]
    path.write_text("\n".join(old) + "\n")
    Trainer(_config(photos, steps=5), vgg=random_vgg()).run(resume=True)
    header2, *rows2 = path.read_text().splitlines()
    assert header2 == header and len(rows2) == 5
    assert [r.split(",")[0] for r in rows2] == ["1", "2", "3", "4", "5"]


def test_stabilisation_ramps_in_from_stab_start(photos):
    cfg = _config(photos, stab_start=10, stab_ramp=4)
    assert [cfg.stab_factor(s) for s in (0, 9, 10, 11, 13, 50)] == [0, 0, 0.25, 0.5, 1, 1]
    assert _config(photos, stab_start=3).stab_factor(3) == 1.0
    t = Trainer(cfg, vgg=random_vgg())
    t.net.eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        before = t.losses(x)
        t.step = 12
        during = t.losses(x)
    assert float(before["noise"]) == 0 and float(before["motion"]) == 0
    assert float(during["noise"]) > 0 and float(during["motion"]) > 0


@pytest.mark.slow
def test_warm_start_begins_from_a_style_and_checks_its_network(photos):
    first = Trainer(_config(photos, steps=2), vgg=random_vgg())
    first.run()
    out2 = str(photos / "warm" / "w.pth")
    warm = Trainer(_config(photos, out=out2, init_from=first.config.out), vgg=random_vgg())
    for a, b in zip(warm.net.state_dict().values(), first.net.state_dict().values(),
                    strict=True):
        assert torch.equal(a.cpu(), b.cpu())
    warm.run()
    assert load_style(out2).training["init_from"] == "s.pth"
    with pytest.raises(InputError, match="--init-from"):
        Trainer(_config(photos, out=out2, width=8, init_from=first.config.out),
                vgg=random_vgg())
    # the padding changes no weight: a zero-padded style can start an encoder-reflect run
    reflect = Trainer(_config(photos, out=str(photos / "r.pth"), pad="encoder",
                              init_from=first.config.out), vgg=random_vgg())
    reflect.run()
    assert load_style(photos / "r.pth").arch_args["pad"] == "encoder"


@pytest.mark.parametrize("ends", ["shuffle", "full"])
def test_encoder_padding_leaves_the_trunk_no_zero_border(ends):
    from streamnst.nets import UNet

    def modes(net):
        return {name: m.conv.padding_mode for name, m in net.named_children()
                if name.startswith("down")}

    assert modes(UNet(4, 2, pad="encoder", ends=ends)) == dict.fromkeys(
        ("down1", "down2", "down3"), "reflect")
    assert modes(UNet(4, 2, ends=ends))["down1"] == "zeros"  # today's files, unchanged
    with pytest.raises(ValueError, match="pad must be one of"):
        UNet(4, 2, pad="circular")


def test_unknown_network_settings_are_one_line_errors(photos):
    for bad in (dict(norm="bn"), dict(head="fancy"), dict(pad="circular")):
        with pytest.raises(InputError, match=next(iter(bad))):
            _config(photos, **bad)


@pytest.mark.slow
def test_real_vgg19_training_lowers_the_style_loss(photos):
    """Steps with the packaged VGG19 (default layers) cut the style loss on a fixed batch."""
    from streamnst.nets.vgg import load_vgg

    cfg = _config(photos, steps=60, content_layer="relu4_2", style_size=64,
                  style_layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1"),
                  style_layer_weights=(1.0, 1.0, 1.0, 1.0), noise_weight=0.0,
                  motion_weight=0.0, checkpoint_every=1000, lr=1e-2, width=8)
    t = Trainer(cfg, vgg=load_vgg(None, ("relu4_2", *cfg.style_layers)))
    x = t.sampler.batch(4, torch.Generator().manual_seed(9))

    def style_now() -> float:
        t.net.eval()
        with torch.no_grad():
            return float(t.losses(x)["style"])

    before = style_now()
    t.run()
    after = style_now()
    assert after < 0.85 * before, (before, after)


def test_synthetic_flow_is_smooth_and_bounded():
    gen = torch.Generator().manual_seed(0)
    flow = smooth_random_flow(3, 64, 64, max_shift=8.0, gen=gen)
    assert flow.abs().max() <= 8.0 + 1e-4
    assert (flow[..., 1:, :] - flow[..., :-1, :]).abs().max() < 1.0
    x = torch.rand(2, 3, 32, 32)
    flow, moved, mask = motion_views(x, 6.0, 0.0, torch.Generator().manual_seed(1))
    assert moved.shape == x.shape and 0.3 < mask.mean() <= 1.0


def _train_cmd(photos, vgg_file, *extra):
    return [sys.executable, "-m", "streamnst", "train", str(photos / "style.png"),
            "--data", str(photos / "photos"), "--out", str(photos / "cli.pth"),
            "--vgg", str(vgg_file), "--size", "32", "--batch", "2", "--width", "4",
            "--res-convs", "2", "--style-size", "40", "--device", "cpu", "--dtype", "fp32",
            "--style-layers", "relu1_2,relu2_2", "--style-layer-weights", "1,1",
            "--content-layer", "relu2_2", *extra]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_ctrl_c_saves_and_resume_finishes(photos, random_vgg_file, sig):
    cmd = _train_cmd(photos, random_vgg_file, "--steps", "100000", "--checkpoint-every", "1000")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    csv_path = photos / "cli.run" / "losses.csv"
    deadline = time.time() + 90
    while time.time() < deadline and not (csv_path.exists() and
                                          csv_path.read_text().count("\n") > 3):
        time.sleep(0.1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    state = read_checkpoint_file(photos / "cli.run" / "state.pth")
    assert state["step"] >= 3
    assert load_style(photos / "cli.pth").training["step"] == state["step"]
    r = run_cli(*_train_cmd(photos, random_vgg_file, "--steps", str(state["step"] + 2),
                            "--resume")[3:])
    assert r.returncode == 0, r.stderr
    assert load_style(photos / "cli.pth").training["step"] == state["step"] + 2


@pytest.mark.slow
def test_state_survives_kill_9(photos, random_vgg_file):
    """A kill at any moment leaves a loadable state (write, then rename)."""
    cmd = _train_cmd(photos, random_vgg_file, "--steps", "100000", "--checkpoint-every", "1",
                     "--num-samples", "0")
    for delay in (2.0, 2.7):
        proc = subprocess.Popen(cmd + (["--resume"] if delay > 2.0 else []),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        state_path = photos / "cli.run" / "state.pth"
        deadline = time.time() + 90
        while time.time() < deadline and not state_path.exists():
            time.sleep(0.05)
        time.sleep(delay)
        proc.kill()
        proc.wait()
        state = read_checkpoint_file(state_path)
        assert state["format"] == "streamnst-train-state" and state["step"] >= 1
        load_style(photos / "cli.pth")
    # a kill during a write can leave a temporary file (never in place of a good one);
    # the next run clears them
    r = run_cli(*cmd[3:-6], "--steps", str(read_checkpoint_file(state_path)["step"] + 1),
                "--checkpoint-every", "1", "--num-samples", "0", "--resume")
    assert r.returncode == 0, r.stderr
    leftovers = [p for d in (photos, photos / "cli.run") for p in d.iterdir()
                 if ".partial" in p.name]
    assert not leftovers


@pytest.mark.slow
def test_cli_errors(photos, random_vgg_file, tmp_path):
    r = run_cli("train", photos / "style.png", "--data", tmp_path / "none", "--out",
                tmp_path / "x.pth", "--vgg", random_vgg_file)
    assert_clean_error(r, "training data folder not found")
    r = run_cli("train", photos / "nope.png", "--data", photos / "photos", "--out",
                tmp_path / "x.pth", "--vgg", random_vgg_file)
    assert_clean_error(r, "nope.png", "file not found")
    r = run_cli("train", photos / "style.png", "--data", photos / "photos", "--out",
                tmp_path / "x.pth", "--size", "30", "--vgg", random_vgg_file)
    assert_clean_error(r, "multiple of 8")
    r = run_cli("train", photos / "style.png", "--data", photos / "photos", "--out",
                tmp_path / "x.pth", "--resume", "--vgg", random_vgg_file)
    assert_clean_error(r, "no training state to resume")


@pytest.mark.slow
def test_torchrun_ddp_averages_gradients_over_processes(photos, random_vgg_file):
    """Two gloo processes with batch B take the same step as one process with batch 2B."""
    common = ["--steps", "1", "--checkpoint-every", "1", "--num-samples", "0", "--norm", "none",
              "--noise-weight", "0", "--motion-weight", "0", "--lr", "0.01"]

    def run(out, batch, torchrun):
        cmd = _train_cmd(photos, random_vgg_file, *common, "--batch", str(batch))
        i = cmd.index("--out")
        cmd[i + 1] = str(photos / out)
        if torchrun:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   "--nproc-per-node", "2", "-m", "streamnst", *cmd[3:]]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        return load_style(photos / out)

    ddp = run("ddp.pth", 2, torchrun=True)
    full = run("full.pth", 4, torchrun=False)
    half = run("half.pth", 2, torchrun=False)
    assert ddp.training["processes"] == 2 and full.training["processes"] == 1

    def distance(a, b):
        sa, sb = a.model.state_dict(), b.model.state_dict()
        return sum(float((sa[k] - sb[k]).abs().sum()) for k in sa)

    # the first Adam step moves every weight by ~lr * sign(gradient): the DDP weights
    # match the full batch's and not those of rank 0's half alone
    near, far = distance(ddp, full), distance(ddp, half)
    assert near < 0.2 * far, (near, far)


@pytest.mark.slow
def test_tensorboard_logs_losses_and_sample_grids(photos):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = _config(photos, tensorboard=True)
    Trainer(config, vgg=random_vgg()).run()
    events = EventAccumulator(str(config.run_path / "tensorboard")).Reload()
    steps = [e.step for e in events.Scalars("loss/total")]
    assert steps == list(range(1, config.steps + 1))
    assert "loss/style" in events.Tags()["scalars"]
    grids = events.Images("samples")
    assert [g.step for g in grids] == [3, 6] and grids[0].width > grids[0].height


@pytest.mark.slow
def test_styles_shows_a_recipe_that_retrains_the_same_network(photos, random_vgg_file):
    r = run_cli(*_train_cmd(photos, random_vgg_file, "--steps", "2")[3:])
    assert r.returncode == 0, r.stderr
    shown = run_cli("styles", photos / "cli.pth")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert any(line.startswith("trained on") and "6 photos in a folder named 'photos'" in line
               for line in lines), shown.stdout
    command = lines[[i for i, line in enumerate(lines) if line.startswith("retrain with")][0]
                    + 1].split()
    assert command[:2] == ["streamnst", "train"] and "--steps" in command
    command[2] = str(photos / Path(command[2]).name)  # styles/style.png -> the test's image
    command[command.index("PHOTOS")] = str(photos / "photos")
    command[command.index("--out") + 1] = str(photos / "again.pth")
    again = run_cli(*command[1:], "--vgg", random_vgg_file, "--device", "cpu",
                    "--dtype", "fp32")
    assert again.returncode == 0, again.stderr
    a, b = load_style(photos / "cli.pth").model, load_style(photos / "again.pth").model
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    # the fingerprint names the photos: one changed file changes the hash
    first = load_style(photos / "cli.pth").training
    assert first["data_images"] == 6 and len(first["data_sha256"]) == 16
    from streamnst.training.data import fingerprint, list_images

    files = list_images(photos / "photos")
    assert fingerprint(photos / "photos", files)["data_sha256"] == first["data_sha256"]
    files[0].write_bytes(files[0].read_bytes() + b"x")
    assert fingerprint(photos / "photos", files)["data_sha256"] != first["data_sha256"]
