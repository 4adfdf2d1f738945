"""A one-node SLURM cluster of real daemons for the tests and the benchmarks: munged, slurmctld
and slurmd as root, with a private slurm.conf (SLURM_CONF), munge socket, ports and folders under
a temporary folder, so that nothing of the machine's own /etc/slurm or /etc/munge is used."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.helpers.servers import free_port

# Debian installs the daemons in /usr/sbin, which a user's PATH may lack.
_SBIN = ("/usr/sbin", "/usr/local/sbin")
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel")
# hydra/launcher=slurm for the jobs of a CPU-only partition, as this cluster's: no GPU, one core
# and 2 GB each
SLURM_CPU = [
    "hydra/launcher=slurm",
    "hydra.launcher.gpus_per_task=null",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=2",
    "hydra.launcher.partition=debug",
]


def program(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=os.pathsep.join(_SBIN))


def slurm_missing() -> str | None:
    """Why no cluster can start here (a reason to skip with), or None."""
    missing = [name for name in PROGRAMS if program(name) is None]
    if missing:
        return f"no {', '.join(missing)}: apt-get install slurm-wlm munge"
    if os.geteuid() != 0:
        return "slurmd runs jobs as their user and must start as root"
    return None


def _config(folder: Path, host: str, cpus: int) -> str:
    return f"""\
ClusterName=gan_lab_test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# cred_expire: also how long a requeued job waits before it may start again (120 s by default)
AuthInfo=socket={folder / "munge.socket"},cred_expire=10
CredType=cred/munge
StateSaveLocation={folder / "state"}
SlurmdSpoolDir={folder / "spool"}
SlurmctldPidFile={folder / "slurmctld.pid"}
SlurmdPidFile={folder / "slurmd.pid"}
SlurmctldLogFile={folder / "slurmctld.log"}
SlurmdLogFile={folder / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
# no accounting storage (no slurmdbd): sacct answers nothing, as on many small clusters
AccountingStorageType=accounting_storage/none
# SIGKILL 5 s after the SIGTERM of scancel or requeue (30 s by default): tests wait less
KillWait=5
# bind the daemons to their configured address (127.0.0.1), not to every interface
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def _run(*args: str, env: dict[str, str], user: str | None = None) -> None:
    runner = ["runuser", "-u", user, "--"] if user else []
    done = subprocess.run([*runner, *args], env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip()[-2000:]}")


def _wait_idle(env: dict[str, str], seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        state = subprocess.run(
            [program("sinfo"), "--noheader", "--format=%T"], env=env, capture_output=True, text=True
        ).stdout.strip()
        if state == "idle":
            return
        time.sleep(0.5)
    raise RuntimeError(f"the SLURM node did not become idle (state {state!r})")


def _stop(pid_file: Path) -> None:
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)


@contextlib.contextmanager
def slurm_cluster(cpus: int = 2) -> Iterator[dict[str, str]]:
    """A cluster of one node with `cpus` CPUs and one partition, `debug`; yields the environment
    (SLURM_CONF and PATH) that points SLURM's commands at it. Its jobs are stopped and its daemons
    too when the block ends."""
    folder = Path(tempfile.mkdtemp(prefix="gan_lab_slurm_"))
    host = socket.gethostname().split(".")[0]
    env = {
        **os.environ,
        "SLURM_CONF": str(folder / "slurm.conf"),
        "PATH": os.pathsep.join([os.environ.get("PATH", ""), *_SBIN]),
    }
    for sub in ("state", "spool"):
        (folder / sub).mkdir()
    (folder / "slurm.conf").write_text(_config(folder, host, cpus))
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    shutil.chown(key, "munge", "munge")
    shutil.chown(folder, "munge")  # munged's socket lives here; it refuses a writable folder
    folder.chmod(0o755)
    munge = [f"--key-file={key}", f"--socket={folder / 'munge.socket'}"]
    munge += [f"--pid-file={folder / 'munged.pid'}", f"--log-file={folder / 'munged.log'}"]
    munge += [f"--seed-file={folder / 'munged.seed'}"]
    try:
        _run(program("munged"), *munge, env=env, user="munge")
        _run(program("slurmctld"), "-c", env=env)  # -c: no state of an earlier cluster
        _run(program("slurmd"), env=env)
        _wait_idle(env)
        yield env
    finally:
        subprocess.run([program("scancel"), "--full", "--user=root"], env=env, capture_output=True)
        for daemon in ("slurmd.pid", "slurmctld.pid", "munged.pid"):
            _stop(folder / daemon)
        time.sleep(1)
        shutil.rmtree(folder, ignore_errors=True)
