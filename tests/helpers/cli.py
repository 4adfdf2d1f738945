"""The command line, in this process or in a process of its own."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import gan_lab.sweep.record
from gan_lab.__main__ import main


def gan_lab_cli(cwd: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """`python -m gan_lab <args>` in a process of its own, run in `cwd`."""
    command = [sys.executable, "-m", "gan_lab", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def run_cli(monkeypatch, *args: str) -> None:
    """`gan-lab <args>` in this process (Hydra's basic launcher runs the jobs here too). The
    environment variables it sets (MLflow's short HTTP retries, a sweep's ids) are undone when
    it ends, as a process of its own would leave the tests' environment. It starts, as a process
    does, with no sweep on record: an earlier test's sweep would otherwise end a single run."""
    monkeypatch.setattr(sys, "argv", ["gan-lab", *args])
    monkeypatch.setattr(gan_lab.sweep.record, "_current", gan_lab.sweep.record.SweepRecord())
    environment = dict(os.environ)
    try:
        main()
    finally:  # Hydra points the root logger at streams that pytest closes after the test
        logging.getLogger().handlers.clear()
        os.environ.clear()
        os.environ.update(environment)
