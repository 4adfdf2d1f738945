"""The layering is a checked contract (import-linter, configured in pyproject.toml): the real
package keeps it, and a cycle added on purpose breaks it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers.configs import ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint_imports(package_parent: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    command = [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"]
    return subprocess.run(command, cwd=package_parent, env=env, capture_output=True, text=True)


def test_the_package_keeps_its_layers():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


def test_a_config_that_imports_an_implementation_breaks_the_layers(tmp_path):
    """The ground floor (gan_lab/config) may import nothing of gan_lab but errors."""
    shutil.copytree(ROOT / "gan_lab", tmp_path / "gan_lab")
    schema = tmp_path / "gan_lab" / "config" / "schema.py"
    schema.write_text(schema.read_text() + "\nfrom gan_lab.training.losses import LOSSES  # noqa\n")
    result = _lint_imports(tmp_path)
    assert result.returncode == 1
    assert "gan_lab.config is not allowed to import gan_lab.training.losses" in result.stdout
