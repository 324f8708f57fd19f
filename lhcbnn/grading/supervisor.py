"""Trusted supervisor between the grader and one sandboxed child (standard library only).

Started by :mod:`lhcbnn.grading.sandbox` as ``python -I -S supervisor.py CONFIG_JSON`` in a
session of its own. It

0. asks for SIGTERM when the grader dies (``PR_SET_PDEATHSIG``) and then cleans up as below
   and removes the run's folder;
1. marks itself a child subreaper (``PR_SET_CHILD_SUBREAPER``), so that processes the
   student's code detaches (``setsid`` + double fork) are re-parented to it, not to init;
2. forks the child: new session, ``PR_SET_PDEATHSIG``, joins the run's cgroup (memory and
   task caps of the whole submission, when the grader made one), resource limits (address
   space, CPU time, file size, open files, no core dumps), stdout/stderr and the
   result/progress fds 3/4 opened on files of the grader's log folder, then ``exec`` of
   the command (bubblewrap + Python runner, or the runner alone);
3. waits for the child with a wall-time limit; on expiry kills the child's process group;
4. kills every remaining descendant (they are all its children by then) and reaps them;
5. prints one JSON line: return code, signal, timed out, wall seconds, peak RSS, orphans killed.

The grader reads that line; nothing the sandboxed code prints reaches the supervisor's stdout.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import select
import shutil
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (scan of /proc/*/stat)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        # the command name may contain spaces and parentheses: split after the last ')'
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _kill_descendants() -> int:
    """SIGKILL and reap all children (orphans land here, we are a subreaper)."""
    killed = 0
    me = os.getpid()
    for _ in range(200):
        children = _children(me)
        if not children:
            break
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.01)
    return killed


def _start_child(config: dict) -> int:
    pid = os.fork()
    if pid:
        return pid
    try:  # in the child: nothing here may return
        os.setsid()
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        for procs in config.get("cgroup_procs", []):  # before exec: nothing runs outside
            with open(procs, "w") as handle:
                handle.write(str(os.getpid()))
        limits = config["limits"]
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_AS, (limits["address_space"],) * 2)
        resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu_seconds"], limits["cpu_seconds"] + 2))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_size"],) * 2)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits["open_files"],) * 2)
        # fds 1-4: stdout, stderr, result bundle, progress log (files the sandbox cannot name)
        for fd, key in ((1, "stdout"), (2, "stderr"), (3, "result"), (4, "progress")):
            opened = os.open(config[key], os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
            if opened != fd:
                os.dup2(opened, fd)  # dup2 makes fd inheritable
                os.close(opened)
            else:
                os.set_inheritable(fd, True)  # os.open gives close-on-exec descriptors
        os.closerange(5, 65536)
        os.chdir(config["cwd"])
        os.execve(config["cmd"][0], config["cmd"], config["env"])
    except BaseException as exc:  # noqa: BLE001
        try:
            os.write(2, f"supervisor: cannot start the sandbox: {exc!r}\n".encode())
        finally:
            os._exit(127)
    os._exit(127)


def _kill_child(pid: int) -> None:
    """SIGKILL the child's process group and the child itself (either may be gone)."""
    for target in (
        lambda: os.killpg(pid, signal.SIGKILL),
        lambda: os.kill(pid, signal.SIGKILL),
    ):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass


def _wait(pid: int, timeout: float) -> tuple[int | None, object, bool]:
    """Wait for ``pid`` at most ``timeout`` seconds: (status, rusage, timed_out)."""
    fd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
    timed_out = not ready
    if timed_out:
        _kill_child(pid)
    _, status, usage = os.wait4(pid, 0)
    return status, usage, timed_out


def _clean_up(config: dict) -> None:
    """The grader is gone: remove the run's folder and its cgroups (nobody else will)."""
    if config.get("cleanup"):
        shutil.rmtree(config["cleanup"], ignore_errors=True)
    for procs in config.get("cgroup_procs", []):
        folder = os.path.dirname(procs)
        for _ in range(100):
            try:
                with open(procs) as handle:
                    for pid in handle.read().split():
                        _kill_child(int(pid))
                os.rmdir(folder)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)


class _GraderGone(Exception):
    """The grader died (PR_SET_PDEATHSIG sent SIGTERM): clean up and leave."""


def _on_term(signum: int, frame: object) -> None:
    raise _GraderGone()


def main() -> None:
    config = json.loads(sys.argv[1])
    parent = int(config.get("grader_pid", os.getppid()))  # not getppid(): it may be gone
    child: list[int] = []
    signal.signal(signal.SIGTERM, _on_term)
    try:  # the grader may die at any moment from here on
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # it died before prctl took effect
            raise _GraderGone()
        subreaper = _prctl(PR_SET_CHILD_SUBREAPER, 1)
        started = time.monotonic()
        child.append(_start_child(config))
        status, usage, timed_out = _wait(child[0], float(config["timeout"]))
    except _GraderGone:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if child:
            _kill_child(child[0])
        _kill_descendants()
        _clean_up(config)
        return
    wall = time.monotonic() - started
    try:
        os.killpg(child[0], signal.SIGKILL)  # whatever is left in the child's own session
    except (ProcessLookupError, PermissionError):
        pass
    orphans = _kill_descendants()
    result = {
        "returncode": os.waitstatus_to_exitcode(status),
        "timed_out": timed_out,
        "wall_seconds": round(wall, 3),
        "max_rss_kb": int(usage.ru_maxrss),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
        "orphans_killed": orphans,
        "subreaper": subreaper,
    }
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
