"""Files from earlier releases read as today's: one migrate() at load."""

import torch

from streamnst.nets.checkpoint_io import load_style, read_checkpoint_file
from streamnst.nets.migrate import UNET_V1, VERSION, migrate


def test_a_version_1_file_means_what_it_meant_then():
    old = {"version": 1, "arch": "unet", "arch_args": {"width": 4, "head": "plain"}}
    new = migrate(old)
    assert new["version"] == VERSION and new["arch_args"]["head"] == "plain"  # named: kept
    assert new["arch_args"]["ends"] == UNET_V1["ends"] == "full"  # left out: then's default
    assert (new["arch_args"]["up"], new["arch_args"]["down"]) == ("nearest", "stride")
    assert old["arch_args"] == {"width": 4, "head": "plain"}  # the caller's dict untouched
    today = {"version": VERSION, "arch": "unet", "arch_args": {"width": 4}}
    assert migrate(today) is today


def test_the_shipped_files_load_with_the_layout_they_were_trained_with():
    ckpt = load_style("starry_night")
    stored = read_checkpoint_file(ckpt.path)["arch_args"]
    for key, value in stored.items():
        assert ckpt.arch_args[key] == value
    assert ckpt.model(torch.rand(1, 3, 16, 16)).shape == (1, 3, 16, 16)
