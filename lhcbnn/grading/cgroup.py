"""One control group per graded submission: a memory cap and a process cap for all of it.

RLIMIT_AS limits each process on its own; a submission that forks 32 children could still
take 32 times the limit. A control group counts the memory (page cache included) and the
tasks (processes and threads) of everything the submission starts, and the kernel enforces
both: past ``memory`` bytes the out-of-memory killer picks a process of the group, past
``pids`` tasks ``fork`` fails with ``EAGAIN``.

Which interface works depends on the machine, so :func:`support` probes once, in this order:

``v2``  the unified hierarchy (``cgroup2``, systemd machines, Docker with cgroupns): a child
        of the grader's own cgroup (or of ``$LHCBNN_CGROUP_PARENT``, e.g. a delegated systemd
        slice) with ``memory.max``, ``memory.swap.max = 0`` and ``pids.max``. Needs the
        ``memory`` and ``pids`` controllers enabled for children of that parent, which the
        kernel refuses while the parent itself holds processes ("no internal processes").
``v1``  the legacy hierarchies (``memory`` and ``pids`` mounted separately, as in the
        hybrid layout of this project's CI VM): a child in each, with
        ``memory.limit_in_bytes`` (and ``memory.memsw.limit_in_bytes`` where swap is
        accounted) and ``pids.max``.
``none`` neither is writable (unprivileged grader, read-only ``/sys/fs/cgroup``): the
        per-process limits remain (RLIMIT_AS, RLIMIT_NPROC for the sandbox's own uid) and
        the grader says so once.

The supervisor writes the child's pid into :attr:`RunGroup.procs_files` before ``exec``, so
nothing of the submission ever runs outside the group; after the run :meth:`RunGroup.close`
kills whatever is left in it and removes it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from lhcbnn.grading import owner

__all__ = ["Support", "RunGroup", "support"]


@dataclass(frozen=True)
class Support:
    """What this machine offers: ``kind`` is ``"v2"``, ``"v1"`` or ``"none"``."""

    kind: str
    reason: str


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, filesystem type, super options) of every cgroup mount."""
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) >= 5 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
            found.append((fields[4], tail[0], set(tail[2].split(","))))
    return found


def _own_paths() -> dict[str, str]:
    """This process's cgroup path per hierarchy: ``""`` for v2, controller names for v1."""
    paths = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                paths[controller] = parts[2]
    return paths


def _v2_parent() -> Path | None:
    configured = os.environ.get("LHCBNN_CGROUP_PARENT")
    if configured:
        return Path(configured)
    mount = next((m for m, kind, _ in _mounts() if kind == "cgroup2"), None)
    own = _own_paths().get("")
    if mount is None or own is None:
        return None
    return Path(mount) / own.lstrip("/")


def _v1_parents() -> dict[str, Path] | None:
    own = _own_paths()
    parents = {}
    for controller in ("memory", "pids"):
        mount = next(
            (m for m, kind, opts in _mounts() if kind == "cgroup" and controller in opts), None
        )
        if mount is None or controller not in own:
            return None
        parents[controller] = Path(mount) / own[controller].lstrip("/")
    return parents


def _write(path: Path, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)


class RunGroup:
    """The control group(s) of one run; create with :meth:`create`, end with :meth:`close`."""

    def __init__(self, kind: str, folders: dict[str, Path], memory_bytes: int) -> None:
        self.kind = kind
        self.folders = folders  # {"": dir} for v2, {"memory": dir, "pids": dir} for v1
        self.memory_bytes = memory_bytes

    @classmethod
    def create(cls, memory_bytes: int, pids: int, kind: str | None = None) -> RunGroup | None:
        """A fresh group with the two caps, or ``None`` where cgroups are not available."""
        kind = kind or support().kind
        name = owner.prefix() + secrets.token_hex(6)
        if kind == "v2":
            parent = _v2_parent()
            if parent is None:
                return None
            with contextlib.suppress(OSError):  # refused while the parent holds processes
                enabled = (parent / "cgroup.subtree_control").read_text().split()
                if not {"memory", "pids"} <= set(enabled):
                    _write(parent / "cgroup.subtree_control", "+memory +pids")
            folder = parent / name
            folder.mkdir()
            group = cls("v2", {"": folder}, memory_bytes)
            try:
                _write(folder / "memory.max", str(memory_bytes))
                with contextlib.suppress(OSError):  # absent without swap accounting
                    _write(folder / "memory.swap.max", "0")
                _write(folder / "pids.max", str(pids))
            except OSError:
                group.close()
                raise
            return group
        if kind == "v1":
            parents = _v1_parents()
            if parents is None:
                return None
            folders = {c: p / name for c, p in parents.items()}
            group = cls("v1", {}, memory_bytes)
            try:
                for controller, folder in folders.items():
                    folder.mkdir()
                    group.folders[controller] = folder
                memory = folders["memory"]
                _write(memory / "memory.limit_in_bytes", str(memory_bytes))
                if (memory / "memory.memsw.limit_in_bytes").exists():
                    with contextlib.suppress(OSError):  # swap accounting may be off
                        _write(memory / "memory.memsw.limit_in_bytes", str(memory_bytes))
                _write(folders["pids"] / "pids.max", str(pids))
            except OSError:
                group.close()
                raise
            return group
        return None

    @classmethod
    def remove_abandoned(cls, kind: str | None = None) -> int:
        """Kill and remove the groups of graders that died (see :mod:`.owner`); returns how many."""
        kind = kind or support().kind
        if kind == "v2":
            parent = _v2_parent()
            parents = {"": parent} if parent is not None else {}
        elif kind == "v1":
            parents = _v1_parents() or {}
        else:
            parents = {}
        names: set[str] = set()
        for parent in parents.values():
            with contextlib.suppress(OSError):
                names.update(p.name for p in parent.iterdir() if owner.is_abandoned(p.name))
        for name in names:
            folders = {c: p / name for c, p in parents.items() if (p / name).is_dir()}
            cls(kind, folders, 0).close(timeout=2.0)
        return len(names)

    @property
    def procs_files(self) -> list[str]:
        """The files a process writes its pid into to join every part of the group."""
        return [str(folder / "cgroup.procs") for folder in self.folders.values()]

    def _read(self, controller: str, name: str) -> str:
        folder = self.folders.get(controller)
        if folder is None:
            return ""
        try:
            return (folder / name).read_text()
        except OSError:
            return ""

    def peak_bytes(self) -> int | None:
        """Highest memory use of the whole group (``None`` where the kernel does not say)."""
        text = (
            self._read("", "memory.peak")
            if self.kind == "v2"
            else self._read("memory", "memory.max_usage_in_bytes")
        )
        return int(text) if text.strip().isdigit() else None

    def oom_kills(self) -> int:
        """How many processes of the group the out-of-memory killer ended."""
        text = (
            self._read("", "memory.events")
            if self.kind == "v2"
            else self._read("memory", "memory.oom_control")
        )
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return 0

    def pids(self) -> set[int]:
        found = set()
        for path in self.procs_files:
            with contextlib.suppress(OSError, ValueError):
                found.update(int(x) for x in Path(path).read_text().split())
        return found

    def close(self, timeout: float = 10.0) -> None:
        """Kill every process left in the group and remove it."""
        deadline = time.monotonic() + timeout
        if self.kind == "v2" and "" in self.folders:
            with contextlib.suppress(OSError):  # cgroup.kill: Linux 5.14 and later
                _write(self.folders[""] / "cgroup.kill", "1")
        while True:
            left = self.pids()
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            removed = True
            for folder in self.folders.values():
                try:
                    folder.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:
                    removed = False
            if removed or time.monotonic() > deadline:
                return
            time.sleep(0.02)


@functools.cache
def support() -> Support:
    """Probe once which cgroup interface can cap a run here (creates and removes a group)."""
    if os.environ.get("LHCBNN_CGROUP", "") == "none":
        return Support("none", "disabled by LHCBNN_CGROUP=none")
    reasons = []
    for kind in ("v2", "v1"):
        try:
            group = RunGroup.create(2**30, 64, kind=kind)
        except OSError as exc:
            reasons.append(f"{kind}: {exc.strerror or exc} ({getattr(exc, 'filename', '')})")
            continue
        if group is None:
            reasons.append(f"{kind}: no such hierarchy mounted for this process")
            continue
        try:
            _check_controllers(group)
        except OSError as exc:
            reasons.append(f"{kind}: {exc}")
            continue
        finally:
            group.close()
        return Support(kind, f"cgroup {kind}: memory and pids limits per submission")
    return Support("none", "; ".join(reasons))


def _check_controllers(group: RunGroup) -> None:
    """The caps must be real files of enabled controllers, not just a directory."""
    for path in group.procs_files:
        if not Path(path).exists():
            raise OSError(f"{path} missing")
    if group.kind == "v2":
        folder = group.folders[""]
        if not (folder / "memory.max").exists() or not (folder / "pids.max").exists():
            raise OSError(f"memory/pids controllers not enabled below {folder.parent}")
