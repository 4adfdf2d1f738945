"""gan_lab as its users install it: a wheel, outside any clone of the repository."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.helpers.configs import ROOT, with_defaults


def _run(*command, cwd: Path) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{command}: {result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.slow
def test_the_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    """Built, installed (not editable) into a fresh virtual environment, and run from a folder
    that is not the checkout: the configs and sweeps travel inside the package."""
    dist = tmp_path / "dist"
    pip = [sys.executable, "-m", "pip"]
    _run(
        *pip,
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        str(dist),
        str(ROOT),
        cwd=dist.parent,
    )
    (wheel,) = dist.glob("gan_lab-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"gan_lab/conf/config.yaml", "gan_lab/sweeps/search/quick.yaml"} <= set(names)
    assert "hydra_plugins/gan_lab_plugins/searchpath.py" in names
    assert not [n for n in names if "/local/" in n]  # nobody's own settings

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", str(venv), cwd=tmp_path)
    python = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_run(str(python), "-c", purelib, cwd=tmp_path).strip())
    # torch, MLflow and the rest come from the test environment (a .pth file adds its
    # site-packages, whose own .pth files, the editable gan_lab among them, are not read);
    # gan_lab itself only from the wheel.
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel), cwd=dist)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    where = "import gan_lab.config as c; print(c.CONF_DIR, c.SWEEPS_DIR)"
    located = _run(str(python), "-c", where, cwd=elsewhere).split()
    assert all(Path(folder).is_relative_to(site) for folder in located)
    gan_lab = str(venv / "bin" / "gan-lab")
    assert "name: dcgan32" in _run(gan_lab, "--cfg", "job", cwd=elsewhere)
    _run(gan_lab, *with_defaults("train.max_steps=2"), "hydra.run.dir=run", cwd=elsewhere)
    assert (elsewhere / "run" / "checkpoints" / "last.pt").is_file()
    every_preset = (
        "from gan_lab.config import SWEEPS_DIR\n"
        "from gan_lab.config.compose import compose\n"
        "for group in ('sweep', 'search'):\n"
        "    for path in sorted((SWEEPS_DIR / group).glob('*.yaml')):\n"
        "        compose(f'{group}={path.stem}')\n"
        "        print(group, path.stem)\n"
    )
    composed = _run(str(python), "-c", every_preset, cwd=elsewhere).splitlines()
    shipped = [
        p for p in (ROOT / "sweeps").glob("*/*.yaml") if p.parent.name in ("sweep", "search")
    ]
    assert len(composed) == len(shipped) > 0
