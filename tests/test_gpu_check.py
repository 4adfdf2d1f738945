"""benchmarks/gpu_check.sh at toy size on the CPU (--cpu-smoke): the day a GPU is lent, the
script runs first time and its table comes out."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("cuda_tests", "throughput_fp32", "throughput_bf16", "throughput_bf16_compiled")


@pytest.mark.slow
def test_cpu_smoke_runs_every_step_and_prints_one_table(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh", "--cpu-smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,  # minutes on a busy machine: it starts Ray, the peer program, Inception
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    rows = {
        line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
        for line in result.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| step")
    }
    for name in (*STEPS, "vs_examples", "fid", "sweep"):
        assert name in rows, f"no row for {name}: {result.stdout[-2000:]}"
        assert rows[name][0] in ("ok", "SKIP"), (name, rows[name])
    assert "img/s" in rows["throughput_fp32"][2]
    assert rows["throughput_bf16_compiled"][0] == "SKIP"  # compile is not run at toy size
    assert (tmp_path / "throughput_fp32.log").read_text().startswith("== throughput_fp32")
