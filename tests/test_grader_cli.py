"""Class grading from the command line: gradebook, feedback, resume, --force, shards, merge."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest

from lhcbnn.grading import EXERCISES
from lhcbnn.grading.gradebook import COLUMNS, read_long, read_rows

REPO = Path(__file__).resolve().parents[1]
WRONG_L2 = """
def l2_coefficient(prior_sigma, n_train):
    return 1.0 / (2.0 * prior_sigma**2)
"""
MAX = {
    name: EXERCISES[name].max_score for name in ("ex02_elbo", "ex03_limits", "ex04_heteroskedastic")
}
L2_POINTS = EXERCISES["ex03_limits"].task("l2_coefficient").points
EXPECTED = {  # (student, exercise): (score, max_score, status)
    ("alice", "ex02_elbo"): (MAX["ex02_elbo"], MAX["ex02_elbo"], "ok"),
    ("alice", "ex04_heteroskedastic"): (MAX["ex04_heteroskedastic"],) * 2 + ("ok",),
    ("bob", "ex02_elbo"): (0, MAX["ex02_elbo"], "ok"),
    ("bob", "ex03_limits"): (MAX["ex03_limits"] - L2_POINTS, MAX["ex03_limits"], "ok"),
    ("carol", "ex02_elbo"): (0, MAX["ex02_elbo"], "invalid_notebook"),
    ("carol", "notes"): (0, 0, "unknown_exercise"),
}


def _make_class(root: Path) -> Path:
    submissions = root / "submissions"
    for student in ("alice", "bob", "carol"):
        (submissions / student).mkdir(parents=True)
    for name in ("ex02_elbo", "ex04_heteroskedastic"):
        shutil.copy(REPO / "solutions" / f"{name}.ipynb", submissions / "alice")
    shutil.copy(REPO / "exercises" / "ex02_elbo.ipynb", submissions / "bob")
    notebook = nbformat.read(REPO / "solutions" / "ex03_limits.ipynb", as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(textwrap.dedent(WRONG_L2).strip()))
    nbformat.write(notebook, submissions / "bob" / "ex03_limits.ipynb")
    (submissions / "carol" / "ex02_elbo.ipynb").write_text('{"cells": [')
    nbformat.write(nbformat.v4.new_notebook(), submissions / "carol" / "notes.ipynb")
    return submissions


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lhcbnn.grading", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )


def _grade(
    submissions: Path, out: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    result = _cli(
        "grade",
        str(submissions),
        "--out",
        str(out),
        "--jobs",
        "2",
        "--timeout",
        "60",
        "--no-progress",
        *extra,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return result


def _summary(path: Path) -> dict[tuple[str, str], tuple[int, int, str]]:
    return {
        key: (int(row["score"]), int(row["max_score"]), row["status"])
        for key, row in read_rows(path).items()
    }


def test_grade_a_class_then_resume_and_force(tmp_path: Path) -> None:
    submissions = _make_class(tmp_path)
    out = tmp_path / "grades.csv"
    first = _grade(submissions, out)
    assert "graded 6 notebooks" in first.stderr
    assert _summary(out) == EXPECTED

    with open(out, newline="") as handle:
        header = next(csv.reader(handle))
    assert tuple(header) == COLUMNS
    assert header[:7] == [
        "student",
        "exercise",
        "task",
        "points",
        "max_points",
        "status",
        "graded_at",
    ]
    rows = read_rows(out)
    assert rows[("bob", "ex03_limits")]["ex03_limits.l2_coefficient"] == "0"
    assert rows[("bob", "ex03_limits")]["ex03_limits.mc_dropout_predictive"] == "4"
    assert rows[("alice", "ex02_elbo")]["ex02_elbo.mc_elbo"] == "3"

    feedback = tmp_path / "feedback"
    for student, exercise in EXPECTED:
        text = (feedback / student / f"{exercise}.md").read_text()
        assert "Score:" in text
        assert "def " not in text and "import " not in text and "np." not in text
    bob = (feedback / "bob" / "ex03_limits.md").read_text()
    assert f"{MAX['ex03_limits'] - L2_POINTS} / {MAX['ex03_limits']}" in bob and "1/N" in bob
    assert "not valid JSON" in (feedback / "carol" / "ex02_elbo.md").read_text()

    stamps = {key: row["graded_at"] for key, row in read_rows(out).items()}
    time.sleep(1.1)  # graded_at has one-second resolution
    again = _grade(submissions, out)
    assert "graded 0 notebooks" in again.stderr
    assert {key: row["graded_at"] for key, row in read_rows(out).items()} == stamps

    changed = submissions / "bob" / "ex03_limits.ipynb"
    notebook = nbformat.read(changed, as_version=4)
    notebook.cells.pop()  # bob fixes his answer
    nbformat.write(notebook, changed)
    fixed = _grade(submissions, out)
    assert "graded 1 notebooks" in fixed.stderr
    assert _summary(out)[("bob", "ex03_limits")] == (MAX["ex03_limits"],) * 2 + ("ok",)

    stamps = {key: row["graded_at"] for key, row in read_rows(out).items()}
    time.sleep(1.1)
    forced = _grade(submissions, out, "--force")
    assert "graded 6 notebooks" in forced.stderr
    new_stamps = {key: row["graded_at"] for key, row in read_rows(out).items()}
    assert all(new_stamps[key] > stamps[key] for key in stamps)
    # every grading stays in the long gradebook: 6 + 1 (bob's fix) + 6 (forced) gradings
    gradings = {(r["student"], r["exercise"], r["graded_at"]) for r in read_long(out)}
    assert len(gradings) == 2 * len(EXPECTED) + 1


def test_shards_partition_the_class_and_merge(tmp_path: Path) -> None:
    submissions = _make_class(tmp_path)
    shards = [tmp_path / "shard1.csv", tmp_path / "shard2.csv"]
    for k, out in enumerate(shards, start=1):
        _grade(submissions, out, "--shard", f"{k}/2")
    parts = [set(read_rows(out)) for out in shards]
    assert parts[0] and parts[1], "both shards should get work with this class"
    assert parts[0].isdisjoint(parts[1]) and parts[0] | parts[1] == set(EXPECTED)
    merged = tmp_path / "grades.csv"
    result = _cli("merge", *map(str, shards), "--out", str(merged))
    assert result.returncode == 0, result.stderr
    expected_rows = {**read_rows(shards[0]), **read_rows(shards[1])}
    assert read_rows(merged) == expected_rows
    assert _summary(merged) == EXPECTED
    bad = _cli("grade", str(submissions), "--out", str(merged), "--shard", "3/2")
    assert bad.returncode == 2 and "1 <= K <= N" in bad.stderr


def _sandbox_processes(marker: str = "") -> set[int]:
    """Supervisors and runners (whose command line holds ``marker``: other graders may run
    on the same machine)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if b"lhcbnn/grading/supervisor.py" in cmdline or b"lhcbnn/grading/runner.py" in cmdline:
            if marker.encode() in cmdline:
                found.add(int(entry))
    return found


def test_an_interrupted_run_loses_nothing(tmp_path: Path) -> None:
    submissions = _make_class(tmp_path)
    out = tmp_path / "grades.csv"
    runs = tmp_path / "runs"  # the grader's own temporary folder: others may grade meanwhile
    runs.mkdir()
    before = _sandbox_processes(str(runs))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lhcbnn.grading",
            "grade",
            str(submissions),
            "--out",
            str(out),
            "--jobs",
            "1",
            "--no-progress",
        ],
        cwd=REPO,
        env={**os.environ, "TMPDIR": str(runs)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(read_rows(out)) < 3:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    saved = read_rows(out)
    assert 3 <= len(saved) < len(EXPECTED), "the run should be cut in the middle"
    deadline = time.monotonic() + 10
    while _sandbox_processes(str(runs)) - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _sandbox_processes(str(runs)) - before, "sandboxes outlived the killed grader"
    # The run in flight left its folder if the kill came between making it and starting
    # its supervisor; the next run removes it (a killed process cannot clean up).
    resumed = _grade(submissions, out, env={"TMPDIR": str(runs)})
    assert not list(runs.glob("lhcbnn-grade-*")), "the resumed run left the killed one's folder"
    assert f"graded {len(EXPECTED) - len(saved)} notebooks" in resumed.stderr
    rows = read_rows(out)
    assert _summary(out) == EXPECTED
    for key, row in saved.items():
        assert rows[key]["graded_at"] == row["graded_at"], f"{key} was graded twice"


@pytest.mark.parametrize(
    "command, message",
    [
        (["merge", "missing.csv", "--out", "x.csv"], "missing.csv"),
        (["grade", "no-such-folder", "--out", "x.csv"], "no-such-folder"),
        (["release", "--solutions", "nowhere"], "nowhere"),
    ],
)
def test_cli_errors_are_reported(command: list[str], message: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lhcbnn.grading", *command],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
