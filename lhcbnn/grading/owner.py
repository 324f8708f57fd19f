"""Which grader process owns a run's folder or cgroup, and which ones nobody owns any more.

A grader killed with SIGKILL cannot clean up. Its supervisors do (``PR_SET_PDEATHSIG``), but
a folder made a moment before a supervisor starts, or after one has finished, has no
supervisor to remove it. So every run folder and cgroup carries its grader in its name,
``lhcbnn-grade-<pid>.<start time>-<random>``, where the start time (field 22 of
``/proc/<pid>/stat``, clock ticks since boot) tells a living grader from a new process that
was given the dead one's pid. The next grader removes what belongs to a dead one
(:func:`is_abandoned`).
"""

from __future__ import annotations

import functools
import os
import re

PREFIX = "lhcbnn-grade-"
_NAME = re.compile(re.escape(PREFIX) + r"(\d+)\.(\d+)-")


def _start_time(pid: int) -> str | None:
    """Start time of process ``pid`` in clock ticks since boot, or ``None`` if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # the name may hold spaces and ')'
    return fields[19] if len(fields) > 19 else None


@functools.cache
def _own_prefix(pid: int) -> str:
    start = _start_time(pid)
    # without a readable start time no owner is named, so the folder is never taken for abandoned
    return f"{PREFIX}{pid}.{start}-" if start is not None else PREFIX


def prefix() -> str:
    """The name prefix of this process's folders and cgroups: ``lhcbnn-grade-<pid>.<start>-``."""
    return _own_prefix(os.getpid())


def is_abandoned(name: str) -> bool:
    """True if ``name`` was made by a grader that is no longer running.

    Names without an owner (an older grader's, or not ours) are never called abandoned.
    """
    match = _NAME.match(name)
    if match is None:
        return False
    pid, start = int(match.group(1)), match.group(2)
    return _start_time(pid) != start
