"""Files that must survive a crash, and that others may read."""

from __future__ import annotations

import os
import stat

import pytest

from gan_lab.files import atomic_write


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_an_atomic_write_gets_the_mode_the_umask_gives(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "report.html", lambda tmp: tmp.write_text("<p>ok</p>"))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "report.html").stat().st_mode) == mode
    assert (tmp_path / "report.html").read_text() == "<p>ok</p>"
