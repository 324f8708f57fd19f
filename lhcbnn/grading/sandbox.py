"""Run the runner on one submission in a child process with limits, inside bubblewrap if possible.

The process tree of one run::

    grader (this process, a thread of it)
    └── supervisor.py      trusted; own session; subreaper; wall-time limit; kills leftovers
        └── bwrap ...      own session; own cgroup (memory + task cap of the whole run);
                           rlimits (AS, CPU, FSIZE, NOFILE, no core)
            └── python -s -B runner.py WORKDIR      (drops to an unprivileged uid if root)
                └── the student's code (exec of the notebook's cells)

What bubblewrap adds (``mode="bwrap"``): a new mount namespace in which only the system
directories (``/usr``, ``/etc``, ...), the Python installation, the virtual environment,
the ``lhcbnn`` package and the job folder are visible, all read-only (``lhcbnn/grading`` is
hidden except the runner and its tripwires); the only writable place is a private,
size-limited, memory-backed ``/tmp`` (the student's working folder is ``/tmp/work``);
results leave through inherited file descriptors; new PID, IPC, UTS, network (no network
at all) and cgroup namespaces; ``--die-with-parent``; ``--new-session``.
When the grader runs as root, the runner keeps only CAP_SETUID/CAP_SETGID and drops to a
random unprivileged uid before any student code runs, so the process limit applies and no
root privilege remains.

Bubblewrap is never given up silently: where it cannot run, :func:`sandbox_mode` raises
:class:`SandboxUnavailable` naming the fix. Only an explicit ``mode="none"`` (``--sandbox
none``) grades without it: the child still gets the limits, the cgroup, its own folder as
working directory, a scrubbed environment and, as root, the drop to an unprivileged uid, but
it can read everything that uid can read and reach the network.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from lhcbnn.grading import cgroup, owner

__all__ = ["Limits", "RunResult", "SandboxUnavailable", "sandbox_mode", "run_in_sandbox"]

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # .../lhcbnn
GRADING_DIR = Path(__file__).resolve().parent
RUNNER = GRADING_DIR / "runner.py"
TRIPWIRES = GRADING_DIR / "sandbox_tripwires.py"
SUPERVISOR = GRADING_DIR / "supervisor.py"
GRADER_FAULT_EXIT = 75  # the runner's exit code when the grader's side failed (runner.py)


class SandboxUnavailable(RuntimeError):
    """Bubblewrap cannot run here and nobody accepted grading without it."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed run.

    Attributes:
        timeout: wall-clock seconds before the whole child is killed (hard limit).
        soft_timeout: seconds one cell or one task call may run before the runner interrupts
            it (``None``: a third of ``timeout``), so one endless loop costs one task only.
        memory_mb: address-space limit (RLIMIT_AS) in MiB; ``import torch`` alone needs
            about 0.6 GiB of address space with one thread, so keep at least 1.5 GiB.
        output_mb: the largest file the child may write (RLIMIT_FSIZE) in MiB, which also
            caps its captured stdout and stderr.
        nproc_margin: how many more processes/threads the student's code may start.
        open_files: RLIMIT_NOFILE.
        scratch_mb: size of the student's private, memory-backed working folder (bubblewrap
            only; without it the folder is on disk and only each file's size is capped).
        submission_memory_mb: memory of the whole submission, all its processes together
            (page cache and the private ``/tmp`` included): a cgroup limit where the machine
            offers one (:mod:`lhcbnn.grading.cgroup`); past it the kernel's out-of-memory
            killer ends a process of the submission.
        max_tasks: processes and threads of the whole submission (cgroup ``pids.max``).
    """

    timeout: float = 60.0
    soft_timeout: float | None = None
    memory_mb: int = 3072
    output_mb: int = 16
    nproc_margin: int = 64
    open_files: int = 1024
    scratch_mb: int = 256
    submission_memory_mb: int = 4096
    max_tasks: int = 256

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")
        if self.memory_mb < 256:
            raise ValueError(f"memory_mb must be at least 256, got {self.memory_mb}")
        if self.output_mb < 1:
            raise ValueError(f"output_mb must be at least 1, got {self.output_mb}")
        if self.submission_memory_mb < 256:
            raise ValueError(
                f"submission_memory_mb must be at least 256, got {self.submission_memory_mb}"
            )
        if self.max_tasks < 8:
            raise ValueError(f"max_tasks must be at least 8, got {self.max_tasks}")

    @property
    def soft(self) -> float:
        return self.soft_timeout if self.soft_timeout is not None else self.timeout / 3.0


@dataclass(frozen=True)
class RunResult:
    """What came back from one sandboxed run (its files are in the log folder)."""

    returncode: int | None
    timed_out: bool
    wall_seconds: float
    max_rss_kb: int
    stdout_tail: str
    stderr_tail: str
    stdout_bytes: int
    stderr_bytes: int
    supervisor_ok: bool
    mode: str
    runner_started: bool = True
    grader_fault: str = ""
    memory_peak_bytes: int | None = None
    oom_kills: int = 0
    cgroup: str = "none"


def _python_paths() -> list[str]:
    """Directories the child's Python needs: installation, venv, site-packages."""
    candidates = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        os.path.dirname(os.path.realpath(sys.executable)),
        sysconfig.get_paths()["stdlib"],
        sysconfig.get_paths()["purelib"],
        sysconfig.get_paths()["platlib"],
        *site.getsitepackages(),
    }
    paths = set()
    for path in candidates:
        if path and os.path.isdir(path):
            paths.add(os.path.realpath(path))
            paths.add(os.path.abspath(path))
    # drop paths inside other paths
    kept = sorted(paths, key=len)
    result: list[str] = []
    for path in kept:
        if not any(path == k or path.startswith(k + os.sep) for k in result):
            result.append(path)
    return result


_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")


SCRATCH_IN_BWRAP = "/tmp/work"


def _bwrap_arguments(jobdir: str, as_root: bool, scratch_mb: int = 256) -> list[str]:
    """The bubblewrap command line (without the command)."""
    args = ["bwrap"]
    mounted: list[str] = []

    def inside_mount(path: str) -> bool:
        return any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounted)

    created: set[str] = set()

    def ensure_parents(target: str) -> None:
        parts = Path(target).parts
        for depth in range(2, len(parts)):
            parent = str(Path(*parts[:depth]))
            if parent in created or inside_mount(parent):
                continue
            args.extend(["--perms", "0755", "--dir", parent])
            created.add(parent)

    def bind(source: str, target: str, writable: bool = False) -> None:
        ensure_parents(target)
        args.extend(["--bind" if writable else "--ro-bind", source, target])
        mounted.append(target)

    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            args.extend(["--symlink", os.readlink(path), path])
        elif os.path.isdir(path):
            bind(path, path)
    args.extend(["--dev", "/dev", "--proc", "/proc"])
    args.extend(["--perms", "1777", "--size", str(scratch_mb * 2**20), "--tmpfs", "/tmp"])
    mounted.extend(["/dev", "/proc"])  # not /tmp: an empty tmpfs, things get mounted into it
    created.add("/tmp")
    for path in _python_paths():
        if not inside_mount(path):
            bind(path, path)
    package = str(PACKAGE_DIR)
    if not inside_mount(package):
        bind(package, package)
    # hide the hidden checks; keep the runner
    grading = str(GRADING_DIR)
    args.extend(["--tmpfs", grading, "--ro-bind", str(RUNNER), str(RUNNER)])
    args.extend(["--ro-bind", str(TRIPWIRES), str(TRIPWIRES)])
    bind(jobdir, jobdir)
    args.extend(
        [
            "--chdir",
            "/tmp",
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--hostname",
            "sandbox",
            "--die-with-parent",
            "--new-session",
        ]
    )
    if as_root:
        args.extend(["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"])
    else:
        args.extend(["--unshare-user", "--cap-drop", "ALL"])
    return args


@functools.cache
def _bwrap_works() -> tuple[bool, str]:
    """Probe bubblewrap once: (works, reason)."""
    if shutil.which("bwrap") is None:
        return False, "bubblewrap (bwrap) is not installed"
    with tempfile.TemporaryDirectory(prefix="lhcbnn-probe-") as jobdir:
        command = [
            *_bwrap_arguments(jobdir, os.geteuid() == 0),
            sys.executable,
            "-s",
            "-B",
            "-c",
            "import numpy",
        ]
        try:
            probe = subprocess.run(command, capture_output=True, timeout=60, env=_child_env(""))
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"bwrap failed to start: {exc}"
    if probe.returncode != 0:
        return False, f"bwrap does not work here: {probe.stderr.decode(errors='replace')[:300]}"
    return True, "bubblewrap works"


def sandbox_mode(requested: str = "auto") -> str:
    """``"bwrap"`` or ``"none"``; never falls back on its own.

    ``requested``: ``"auto"`` or ``"bwrap"`` (bubblewrap, or :class:`SandboxUnavailable`
    naming the fix when it cannot run here) or ``"none"`` (no isolation: the instructor
    accepts that student code can read and write what the grader's user can; as root the
    runner still drops to an unprivileged uid). The environment variable ``LHCBNN_SANDBOX``
    overrides ``"auto"``.
    """
    if requested == "auto":
        requested = os.environ.get("LHCBNN_SANDBOX", "auto")
    if requested not in ("auto", "bwrap", "none"):
        raise ValueError(f"sandbox must be 'auto', 'bwrap' or 'none', got {requested!r}")
    if requested == "none":
        return "none"
    works, reason = _bwrap_works()
    if works:
        return "bwrap"
    raise SandboxUnavailable(
        f"{reason}, so student code cannot be isolated. Install bubblewrap "
        "(Debian/Ubuntu: apt-get install bubblewrap; it needs user namespaces, or root) and "
        "grade again, or pass --sandbox none (sandbox='none') to grade WITHOUT isolation: "
        "student code can then read and write every file the grader's user can (solutions, "
        "hidden checks, other students' work) and reach the network."
    )


@functools.cache
def cgroup_support() -> cgroup.Support:
    """Which per-submission memory/process cap works here; warns once where none does."""
    found = cgroup.support()
    if found.kind == "none":
        warnings.warn(
            "no cgroup can be created here (" + found.reason + "): memory and processes are "
            "capped per process only (RLIMIT_AS, RLIMIT_NPROC), not per submission",
            RuntimeWarning,
            stacklevel=2,
        )
    return found


def _child_env(workdir: str) -> dict[str, str]:
    """A scrubbed environment: no secrets, no user paths, one thread."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": workdir or "/nonexistent",
        "TMPDIR": workdir or "/tmp",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": os.path.join(workdir, ".matplotlib") if workdir else "/tmp",
        "LHCBNN_DEVICE": "cpu",
        "LHCBNN_IN_SANDBOX": "1",
    }
    # The package must be importable; if it is not installed, point at its parent folder
    # (inside bwrap only the package itself is mounted there).
    parent = str(PACKAGE_DIR.parent)
    if (
        not any(os.path.realpath(p) == os.path.realpath(parent) for p in site.getsitepackages())
        and not _installed_via_site()
    ):
        env["PYTHONPATH"] = parent
    return env


@functools.cache
def _installed_via_site() -> bool:
    """True when ``import lhcbnn`` works in a fresh interpreter without PYTHONPATH."""
    probe = subprocess.run(
        [
            sys.executable,
            "-s",
            "-c",
            "import importlib.util as u; print(u.find_spec('lhcbnn').origin)",
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        cwd="/",
    )
    origin = probe.stdout.strip()
    return probe.returncode == 0 and origin.startswith(str(PACKAGE_DIR))


def _tail(path: Path, size: int = 4000) -> tuple[str, int]:
    try:
        total = path.stat().st_size
        with open(path, "rb") as handle:
            handle.seek(max(0, total - size))
            return handle.read().decode("utf-8", errors="replace"), total
    except OSError:
        return "", 0


def run_in_sandbox(jobdir: Path, nonce: str, limits: Limits, mode: str, logdir: Path) -> RunResult:
    """Run the runner on the job in ``jobdir``; everything it writes back lands in ``logdir``.

    ``jobdir`` holds ``job.json`` and ``inputs.npz`` (read-only for the child under bwrap);
    ``logdir`` receives ``stdout.txt``, ``stderr.txt``, ``result.npz`` (fd 3) and
    ``progress.log`` (fd 4), files the child writes through inherited descriptors only.
    The whole run is one cgroup where the machine allows (memory and task caps of
    ``limits``). Blocks until the child and everything it started are gone (at most
    ``limits.timeout`` plus a few seconds). ``grader_fault`` of the result is set when the
    failure is on the grader's side (the sandbox did not start, the job folder vanished).
    """
    jobdir = Path(jobdir).resolve()
    logdir = Path(logdir).resolve()
    if mode == "bwrap":
        scratch = SCRATCH_IN_BWRAP
        prefix = [shutil.which("bwrap") or "bwrap"]
        prefix += _bwrap_arguments(str(jobdir), os.geteuid() == 0, limits.scratch_mb)[1:]
    else:
        scratch = str(jobdir.parent / "scratch")
        prefix = []
    # sys.executable, not its real path: the venv is found from the path Python is started by
    command = [*prefix, sys.executable, "-s", "-B", str(RUNNER), str(jobdir), scratch]
    kind = cgroup_support().kind
    try:
        group = cgroup.RunGroup.create(
            limits.submission_memory_mb * 2**20, limits.max_tasks, kind=kind
        )
    except OSError as exc:
        return _grader_fault(mode, f"cannot create the run's cgroup: {exc}")
    config = {
        "cmd": command,
        "cwd": str(jobdir) if mode == "none" else "/",
        "env": _child_env(scratch),
        "timeout": limits.timeout,
        "stdout": str(logdir / "stdout.txt"),
        "stderr": str(logdir / "stderr.txt"),
        "result": str(logdir / "result.npz"),
        "progress": str(logdir / "progress.log"),
        "cleanup": str(logdir.parent),
        "cgroup_procs": group.procs_files if group else [],
        "grader_pid": os.getpid(),
        "limits": {
            "address_space": limits.memory_mb * 2**20,
            "cpu_seconds": int(limits.timeout) + 5,
            "file_size": limits.output_mb * 2**20,
            "open_files": limits.open_files,
        },
    }
    try:
        supervisor = subprocess.Popen(
            [sys.executable, "-I", "-S", str(SUPERVISOR), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env={"PATH": "/usr/bin:/bin"},
            cwd=str(logdir),
        )
        try:
            out, err = supervisor.communicate((nonce + "\n").encode(), timeout=limits.timeout + 30)
        except subprocess.TimeoutExpired:  # the supervisor itself hangs: should never happen
            os.killpg(supervisor.pid, 9)
            out, err = supervisor.communicate()
    except OSError as exc:  # the log folder vanished, no processes left, ...
        if group is not None:
            group.close()
        return _grader_fault(mode, f"cannot start the supervisor: {exc}")
    peak, oom_kills = (group.peak_bytes(), group.oom_kills()) if group else (None, 0)
    if group is not None:
        group.close()
    info: dict = {}
    for line in out.decode(errors="replace").splitlines():
        try:
            info = json.loads(line)
        except json.JSONDecodeError:
            continue
    stdout_tail, stdout_bytes = _tail(logdir / "stdout.txt")
    stderr_tail, stderr_bytes = _tail(logdir / "stderr.txt")
    if not info:
        stderr_tail += "\n[supervisor] " + err.decode(errors="replace")[-1000:]
    started = _runner_started(logdir)
    fault = ""
    if not (jobdir.is_dir() and logdir.is_dir()):
        fault = f"the grader's work folder {jobdir.parent} disappeared during the run"
    elif not info:
        fault = "the supervisor failed: " + err.decode(errors="replace")[-300:]
    elif info.get("returncode") == GRADER_FAULT_EXIT and "grader fault" in stderr_tail:
        fault = stderr_tail[stderr_tail.rfind("grader fault") :][:300].strip()
    elif not started:  # "started" is written before any student code runs
        fault = "the sandbox did not start: " + stderr_tail.strip()[-300:]
    return RunResult(
        returncode=info.get("returncode"),
        timed_out=bool(info.get("timed_out", False)),
        wall_seconds=float(info.get("wall_seconds", 0.0)),
        max_rss_kb=int(info.get("max_rss_kb", 0)),
        stdout_tail=stdout_tail,
        stderr_tail=stderr_tail,
        stdout_bytes=stdout_bytes,
        stderr_bytes=stderr_bytes,
        supervisor_ok=bool(info),
        mode=mode,
        runner_started=started,
        grader_fault=fault,
        memory_peak_bytes=peak,
        oom_kills=oom_kills,
        cgroup=group.kind if group else "none",
    )


def _runner_started(logdir: Path) -> bool:
    """Whether the runner got as far as its first line in the progress log."""
    try:
        with open(logdir / "progress.log", "rb") as handle:
            return handle.read(64).startswith(b"started")
    except OSError:
        return False


def _grader_fault(mode: str, reason: str) -> RunResult:
    return RunResult(None, False, 0.0, 0, "", "", 0, 0, False, mode, False, reason)


def new_nonce() -> str:
    """A fresh random token for one run."""
    return secrets.token_hex(16)


def remove_workdir(path: Path) -> None:
    """Remove a run's folder, including what the sandbox left read-only."""

    def make_writable(function, target, _exc):  # noqa: ANN001
        try:
            Path(target).chmod(0o700)
            Path(target).parent.chmod(0o700)
            function(target)
        except OSError:
            pass

    shutil.rmtree(path, onerror=make_writable)


def remove_abandoned(parent: Path | None = None) -> int:
    """Remove the run folders and cgroups of graders that were killed (see :mod:`.owner`).

    A grader killed by SIGKILL between making a run's folder and starting its supervisor (or
    after the supervisor finished) leaves the folder behind; the next grader calls this.
    ``parent`` is the temporary folder (default :func:`tempfile.gettempdir`). Returns the
    number of folders and groups removed.
    """
    root = Path(parent or tempfile.gettempdir())
    removed = 0
    try:
        folders = [p for p in root.iterdir() if owner.is_abandoned(p.name) and p.is_dir()]
    except OSError:
        folders = []
    for folder in folders:
        remove_workdir(folder)
        removed += not folder.exists()
    try:
        removed += cgroup.RunGroup.remove_abandoned(cgroup_support().kind)
    except OSError:
        pass
    return removed


def prepare_workdir(parent: Path | None = None) -> tuple[Path, Path, int | None]:
    """A fresh folder for one run: ``job/`` (inputs), ``log/`` (outputs), ``scratch/``.

    Returns ``(jobdir, logdir, uid)``; ``uid`` is a random unprivileged uid for the runner
    to drop to when the grader runs as root (in both sandbox modes), which then owns
    ``scratch/`` (the working folder without bubblewrap).
    """
    base = Path(tempfile.mkdtemp(prefix=owner.prefix(), dir=parent))
    base.chmod(0o755)
    jobdir, logdir = base / "job", base / "log"
    jobdir.mkdir(mode=0o755)
    logdir.mkdir(mode=0o700)
    (base / "scratch").mkdir(mode=0o700)
    uid = 200_000 + secrets.randbelow(1_000_000_000) if os.geteuid() == 0 else None
    if uid is not None:
        os.chown(base / "scratch", uid, uid)
    return jobdir, logdir, uid
