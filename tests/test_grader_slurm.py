"""The Slurm scripts on a real single-node Slurm that this test starts and stops itself.

munged, slurmctld and slurmd (Debian's ``munge`` and ``slurm-wlm``, installed by ``.ci/run``)
run in the foreground from a private folder with their own key, socket, ports and state, as
children of this test; the class is graded by ``slurm/submit.sh`` as an array of 3 shards
plus a merge job that depends on it, and the merged gradebook must equal a serial run's.
Where the daemons cannot run (not installed, not root, slurmd refused by the container) the
test is skipped with the reason measured here: the daemon's own log line.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lhcbnn.grading.classgrade import grade_class
from lhcbnn.grading.gradebook import read_rows

REPO = Path(__file__).resolve().parents[1]
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol")
N_SHARDS = 3
START_SECONDS = 60
JOB_SECONDS = 600
COMPARED = ("score", "max_score", "status", "sha256")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _tail(path: Path, lines: int = 6) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return f"(no {path.name})"


class SingleNodeSlurm:
    """munged + slurmctld + slurmd on this machine, configured in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.processes: list[subprocess.Popen] = []
        self.host = socket.gethostname().split(".")[0]
        self.env = {**os.environ, "SLURM_CONF": str(folder / "slurm.conf")}

    def _start(self, *command: str) -> subprocess.Popen:
        log = open(self.folder / f"{Path(command[0]).name}.out", "w")  # noqa: SIM115
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )
        log.close()
        self.processes.append(process)
        return process

    def start(self) -> str:
        """Start the daemons; returns "" when the node is idle, else why it is not."""
        f = self.folder
        for sub in ("munge", "state", "spool", "log"):
            (f / sub).mkdir(mode=0o700)
        key = f / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        socket_path = f / "munge" / "socket"
        self._start(
            "munged", "--foreground", "--force", f"--socket={socket_path}",
            f"--key-file={key}", f"--pid-file={f / 'munge' / 'pid'}",
            f"--log-file={f / 'log' / 'munged.log'}", f"--seed-file={f / 'munge' / 'seed'}",
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while not socket_path.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if not socket_path.exists():
            return "munged did not start: " + _tail(f / "log" / "munged.log")
        cpus = os.cpu_count() or 1
        (f / "slurm.conf").write_text(
            "\n".join(
                [
                    "ClusterName=lhcbnntest",
                    f"SlurmctldHost={self.host}(127.0.0.1)",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={socket_path}",
                    f"SlurmctldPort={_free_port()}",
                    f"SlurmdPort={_free_port()}",
                    f"StateSaveLocation={f / 'state'}",
                    f"SlurmdSpoolDir={f / 'spool'}",
                    f"SlurmctldPidFile={f / 'slurmctld.pid'}",
                    f"SlurmdPidFile={f / 'slurmd.pid'}",
                    f"SlurmctldLogFile={f / 'log' / 'slurmctld.log'}",
                    f"SlurmdLogFile={f / 'log' / 'slurmd.log'}",
                    "ProctrackType=proctrack/linuxproc",  # no cgroup plugin needed
                    "TaskPlugin=task/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "AccountingStorageType=accounting_storage/none",
                    "SchedulerType=sched/builtin",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_CPU",
                    "ReturnToService=2",
                    "MpiDefault=none",
                    "SwitchType=switch/none",
                    f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN",
                    f"PartitionName=test Nodes={self.host} Default=YES MaxTime=60 State=UP",
                    "",
                ]
            )
        )
        self._start("slurmctld", "-D", "-c", "-i")
        self._start("slurmd", "-D", "-N", self.host)
        deadline = time.monotonic() + START_SECONDS
        state = ""
        while time.monotonic() < deadline:
            probe = subprocess.run(
                ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=self.env
            )
            state = (probe.stdout + probe.stderr).strip()
            if state == "idle":
                return ""
            if any(p.poll() is not None for p in self.processes):
                break
            time.sleep(0.5)
        return (
            f"the node is not idle after start (sinfo: {state or 'nothing'}); "
            f"slurmctld: {_tail(f / 'log' / 'slurmctld.log', 3)}; "
            f"slurmd: {_tail(f / 'log' / 'slurmd.log', 3)}; "
            f"slurmd output: {_tail(f / 'slurmd.out', 3)}"
        )

    def run(self, *command: str) -> subprocess.CompletedProcess:
        return subprocess.run(command, capture_output=True, text=True, env=self.env, timeout=60)

    def queue_empty(self) -> bool:
        return self.run("squeue", "-h", "-o", "%i").stdout.strip() == ""

    def stop(self) -> None:
        """Cancel every job, shut the daemons down, and kill what is left of them."""
        if any(p.poll() is None for p in self.processes[1:]):
            with contextlib.suppress(Exception):
                self.run("scancel", "--full", "--user", "root")
            with contextlib.suppress(Exception):
                self.run("scontrol", "shutdown")
        deadline = time.monotonic() + 15
        for process in reversed(self.processes):
            while process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            if process.poll() is None:
                with contextlib.suppress(Exception):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(Exception):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def _class(root: Path) -> Path:
    """Six notebooks: solutions, unmodified exercises and one broken file."""
    submissions = root / "submissions"
    for k in range(4):
        folder = submissions / f"student{k}"
        folder.mkdir(parents=True)
        source = "solutions" if k % 2 == 0 else "exercises"
        shutil.copy(REPO / source / "ex04_heteroskedastic.ipynb", folder)
    shutil.copy(REPO / "solutions" / "ex03_limits.ipynb", submissions / "student1")
    (submissions / "student3" / "ex03_limits.ipynb").write_text("{ not a notebook")
    return submissions


@pytest.fixture()
def slurm(tmp_path_factory):  # noqa: ANN001
    missing = [name for name in DAEMONS if shutil.which(name) is None]
    if missing:
        pytest.skip(f"Slurm/munge not installed here ({', '.join(missing)} missing)")
    if os.geteuid() != 0:
        pytest.skip("the single-node Slurm of this test runs its daemons as root")
    folder = Path("/tmp") / f"lhcbnn-slurm-{os.getpid()}"  # short: munge's socket path
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o755)
    cluster = SingleNodeSlurm(folder)
    try:
        reason = cluster.start()
        if reason:
            pytest.skip(f"slurmd cannot run here: {reason}")
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


def test_slurm_array_of_shards_merges_to_the_serial_gradebook(slurm, tmp_path: Path) -> None:  # noqa: ANN001
    submissions = _class(tmp_path)
    serial = tmp_path / "serial.csv"
    grade_class(submissions, serial, jobs=2, progress=False)

    outdir = tmp_path / "slurm-out"
    env = {
        **slurm.env,
        "LHCBNN_PYTHON": sys.executable,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    submitted = subprocess.run(
        ["bash", str(REPO / "slurm" / "submit.sh"), str(submissions), str(outdir), str(N_SHARDS),
         "--cpus-per-task=1", "--mem=0"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    array_id, merge_id = submitted.stdout.split()
    deadline = time.monotonic() + JOB_SECONDS
    while not slurm.queue_empty() and time.monotonic() < deadline:
        time.sleep(1)
    assert slurm.queue_empty(), "the Slurm jobs did not finish in time"

    logs = sorted(outdir.glob("lhcbnn-*.log"))
    assert len(logs) == N_SHARDS + 1, [p.name for p in logs]  # one log per array task + merge
    text = "\n".join(p.read_text(errors="replace") for p in logs)
    for k in range(1, N_SHARDS + 1):
        assert (outdir / f"shard-{k}-of-{N_SHARDS}.csv").is_file(), text
    merged = read_rows(outdir / "grades.csv")
    expected = read_rows(serial)
    assert set(merged) == set(expected), text
    for key in expected:
        picked = [name for name in expected[key] if name in COMPARED or "." in name]
        assert {n: merged[key][n] for n in picked} == {n: expected[key][n] for n in picked}, key
    assert {s for s, _ in merged} == {f"student{k}" for k in range(4)}
    for fmt in ("wide", "moodle", "canvas"):
        assert (outdir / f"grades-{fmt}.csv").is_file()
    assert int(array_id) > 0 and int(merge_id) > int(array_id)
