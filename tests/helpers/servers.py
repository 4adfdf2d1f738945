"""Real servers on 127.0.0.1 for the tests: an MLflow tracking server, a PostgreSQL database."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def mlflow_server(backend: str, artifacts: Path, port: int, workers: int = 1) -> Iterator[str]:
    """`mlflow server` on 127.0.0.1:`port` over the `backend` store with `workers` processes
    (its own default is 4; one keeps the tests light); yields its URL once it answers, and is
    killed (as a crash would) when the block ends."""
    bin_dir = Path(sys.executable).parent  # mlflow execs uvicorn from the same environment
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    # without the job runner MLflow 3 starts beside it (four huey consumers, each importing
    # MLflow: seconds of CPU per server), which gan_lab never uses
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    command = [str(bin_dir / "mlflow"), "server", "--backend-store-uri", backend]
    command += ["--artifacts-destination", str(artifacts), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers)]
    server = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise RuntimeError(f"mlflow server on {url} did not start") from None
                time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):  # it may have died already
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def postgres_bin() -> Path | None:
    """Where Debian's PostgreSQL server programs are (pg_config --bindir), if installed."""
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    found = Path(
        subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip()
    )
    return found if (found / "initdb").exists() and (found / "pg_ctl").exists() else None


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A PostgreSQL server in a temporary folder, listening on 127.0.0.1 only, run as an
    unprivileged user when the tests run as root (the server refuses root); yields a database
    URL. The folder is in the system's temporary folder, which that user can reach (pytest's own
    are private to the tests' user), and is removed afterwards."""
    bin_dir = postgres_bin()
    assert bin_dir is not None
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="gan_lab_pg_"))
    data = folder / "pgdata"
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "nobody")
        as_user = ["runuser", "-u", "nobody", "--"]

    def pg(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, cwd=folder)

    pg(str(bin_dir / "initdb"), "-D", str(data), "-U", "gan_lab", "--auth=trust")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder}"
    pg(
        str(bin_dir / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        options,
        "-w",
        "-l",
        str(folder / "log"),
        "start",
    )
    try:
        pg(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "gan_lab", "mlflow")
        # the driver the Docker stack's server has (SQLAlchemy 2.1 would take psycopg 3)
        yield f"postgresql+psycopg2://gan_lab@127.0.0.1:{port}/mlflow"
    finally:
        pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)
