import json

import pytest
from cli_helpers import assert_clean_error, run_cli


@pytest.mark.slow
def test_bench_json_is_valid_and_complete():
    r = run_cli("bench", "--size", "40x24", "--repeat", "2", "--warmup", "0", "--json",
                "--width", "4", "--width", "8")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["threads"] >= 1 and data["repeat"] == 2
    rows = data["results"]
    nets = {row["network"] for row in rows}
    assert nets == {"unet-w4", "unet-w4-full", "unet-w8", "unet-w8-full", "transformer_net"}
    backends = {row["backend"] for row in rows}
    assert {"eager-fp32", "channels_last"} <= backends
    assert len(rows) == len(nets) * len(backends)
    for row in rows:
        assert row["resolution"] == "40x24"
        assert 0 < row["median_ms"] <= row["p95_ms"]
        assert abs(row["fps"] - 1000 / row["median_ms"]) < 1e-6
    best_tn = min(r["median_ms"] for r in rows if r["network"] == "transformer_net")
    for row in rows:
        assert abs(row["speedup_vs_transformer_net"] - best_tn / row["median_ms"]) < 1e-9


def test_bench_bad_size():
    assert_clean_error(run_cli("bench", "--size", "big"), "--size must look like 640x360")


def test_bench_table_fits_80_columns():
    r = run_cli("bench", "--size", "40x24", "--repeat", "1", "--warmup", "0",
                "--backend", "bf16+channels_last", "--backend", "eager-fp32",
                env={"COLUMNS": "80"})
    assert r.returncode == 0, r.stderr
    table = [line for line in r.stdout.splitlines() if "unet-w16" in line
             or "transformer_net" in line]
    assert table and all(len(line) <= 80 for line in r.stdout.splitlines()), r.stdout
    assert "…" not in r.stdout and "bf16+channels_last" in r.stdout
    assert "TransformerNet" in r.stdout  # the legend names the baseline
