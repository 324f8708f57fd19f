"""Run folders and cgroups name their grader; the next grader removes a dead one's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lhcbnn.grading import owner, sandbox


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_folder_of_this_process_is_not_abandoned(tmp_path: Path) -> None:
    jobdir, _, _ = sandbox.prepare_workdir(tmp_path)
    assert jobdir.parent.name.startswith(owner.prefix())
    assert not owner.is_abandoned(jobdir.parent.name)
    sandbox.remove_abandoned(tmp_path)
    assert jobdir.parent.exists()


def test_a_dead_graders_folder_is_removed_and_others_are_kept(tmp_path: Path) -> None:
    dead = tmp_path / f"{owner.PREFIX}{_dead_pid()}.12345-abcdef"
    (dead / "scratch").mkdir(parents=True)
    (dead / "scratch" / "file").write_text("x")
    (dead / "scratch").chmod(0o500)  # read-only, as the sandbox may leave it
    reused = tmp_path / f"{owner.PREFIX}{os.getpid()}.1-abcdef"  # our pid, another start time
    reused.mkdir()
    alive, _, _ = sandbox.prepare_workdir(tmp_path)
    older = tmp_path / f"{owner.PREFIX}abc123"  # no owner in the name: never touched
    older.mkdir()
    unrelated = tmp_path / "something-else"
    unrelated.mkdir()
    assert sandbox.remove_abandoned(tmp_path) >= 2
    assert not dead.exists() and not reused.exists()
    assert alive.parent.exists() and older.exists() and unrelated.exists()


def test_start_time_tells_a_reused_pid_apart() -> None:
    tag = owner.prefix()[len(owner.PREFIX) : -1]
    pid, start = tag.split(".")
    assert int(pid) == os.getpid() and int(start) > 0
    assert not owner.is_abandoned(f"{owner.PREFIX}{pid}.{start}-x")
    assert owner.is_abandoned(f"{owner.PREFIX}{pid}.{int(start) + 1}-x")
    assert owner.is_abandoned(f"{owner.PREFIX}{_dead_pid()}.{start}-x")
