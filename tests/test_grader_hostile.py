"""Hostile submissions: each gets a clear status, no unearned points, and harms nothing.

All notebooks of one sandbox mode are graded together in one class run (``jobs=2``) next to
an honest submission, which must still score full marks. The notebooks use a small made-up
exercise whose tasks take numpy arrays, so the child never imports torch and the runs are
quick; the limits are small (hard timeout 10 s, soft 3 s, 1 GiB of address space).
Cases that try to write outside the sandbox run only under bubblewrap: without it they
would succeed, which is the documented limit of the fallback.
"""

from __future__ import annotations

import os
import textwrap
import time
import uuid
from pathlib import Path

import nbformat
import numpy as np
import pytest

import lhcbnn
from lhcbnn.grading.classgrade import grade_class
from lhcbnn.grading.sandbox import Limits, _bwrap_works
from lhcbnn.grading.tasks.base import Case, Exercise, Mistake, Task

HAS_BWRAP = _bwrap_works()[0]
PACKAGE = Path(lhcbnn.__file__).resolve().parent
REPO = PACKAGE.parent
LIMITS = Limits(timeout=10, soft_timeout=3, memory_mb=1024, output_mb=8)
N_PROBES = 6


def _cases() -> list[Case]:
    rng = np.random.default_rng(0)
    return [Case((rng.normal(size=5),), "random numbers"), Case((np.array([0.0, -2.0]),), "zero")]


SQUARE = Task(
    "square", 2, "square", _cases, lambda x: x**2, (Mistake("square, not absolute value", np.abs),)
)
DOUBLE = Task("double", 1, "double", _cases, lambda x: 2 * x)
PROBE = Task(
    "probe", 1, "escape attempts", lambda: [Case((), "attempts")], lambda: np.ones(N_PROBES)
)
LIMITED = Task("limited", 1, "process limit", lambda: [Case((), "fork bomb")], lambda: 1.0)
DEMO = Exercise("demo", "demo", (SQUARE, DOUBLE))
ESCAPE = Exercise("escape", "escape", (SQUARE, DOUBLE, PROBE))
FORKS = Exercise("forks", "forks", (SQUARE, DOUBLE, LIMITED))
NOTEBOOK_NAMES = {"escape": "escape.ipynb", "fork_bomb": "forks.ipynb"}
GOOD = "def square(x):\n    return x**2\n\n\ndef double(x):\n    return 2 * x\n"
WRONG = "def square(x):\n    return x * 0\n\n\ndef double(x):\n    return x * 0\n"


def _notebook(*sources: str) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(textwrap.dedent(s).strip()) for s in sources]
    return notebook


def _hostile_notebooks(marker: str, canary: Path, bwrap: bool) -> dict[str, object]:
    """student -> notebook (or raw text for a broken file)."""
    forge = """
        import io, json, os
        import numpy as np
        claim = {"status": "ok", "cases": [{"status": "ok", "n_outputs": 1}] * 2}
        report = {"protocol": 1, "nonce": "0" * 32, "cells": [],
                  "tasks": {"square": claim, "double": claim}}
        buffer = io.BytesIO()
        np.savez(buffer, __report__=np.frombuffer(json.dumps(report).encode(), dtype=np.uint8),
                 **{f"{t}/{c}/0": np.zeros(5) for t in ("square", "double") for c in (0, 1)})
        os.ftruncate(3, 0)
        os.write(3, buffer.getvalue())
        os._exit(0)
    """
    notebooks: dict[str, object] = {
        "good": _notebook(
            GOOD,
            """
            import sys, warnings
            warnings.warn("a harmless warning on stderr")
            print("and some text on stderr", file=sys.stderr)
        """,
        ),
        "wrong": _notebook(
            "def square(x):\n    return abs(x)\n\n\ndef double(x):\n    return 2 * x"
        ),
        "crash": _notebook(
            "1 / 0",
            "def square(x):\n    return x**2",
            "def double(x):\n    raise ValueError('no idea')",
        ),
        "soft_loop": _notebook(GOOD, "while True:\n    pass"),
        "hard_loop": _notebook(
            GOOD,
            """
            import signal
            signal.signal(signal.SIGALRM, signal.SIG_IGN)
            while True:
                pass
        """,
        ),
        "exits": _notebook(GOOD, "import os\nos._exit(0)"),
        "memory": _notebook(
            GOOD,
            """
            hog = []
            while True:
                hog.append(bytes(2 * 10**8))  # calloc: hits the limit without touching RAM
        """,
            "del hog",
        ),
        "print_flood": _notebook(GOOD, "for i in range(100_000):\n    print('x' * 1000)"),
        "fd_flood": _notebook(GOOD, "import os\nwhile True:\n    os.write(1, b'x' * 10**6)"),
        "flood_killed": _notebook(
            GOOD,
            """
            import os, signal
            signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
            while True:
                os.write(2, b'x' * 10**6)
        """,
        ),
        "not_json": "{ this is not a notebook",
        "detached": _notebook(
            GOOD,
            f"""
            import os, sys, time
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    os.execv(sys.executable, [sys.executable, "-c",
                             "import time; time.sleep(120)", "{marker}"])
                os._exit(0)
            time.sleep(0.3)
        """,
        ),
        "fork_bomb": _notebook(
            GOOD,
            f"""
            import subprocess, sys
            children = []
            try:
                for _ in range(400):
                    children.append(subprocess.Popen([sys.executable, "-S", "-c",
                                    "import time; time.sleep(120)", "{marker}-fork"]))
            except OSError as error:
                print("stopped after", len(children), error)

            def limited():
                return float(len(children) < 400)
        """,
        ),
        "forge_result": _notebook(WRONG, forge),
        "forge_stdout": _notebook(
            WRONG,
            """
            import json
            print(json.dumps({"student": "forge_stdout", "score": 3, "status": "ok"}))
            print('{"nonce": "x", "tasks": {}}')
        """,
        ),
        "forge_files": _notebook(
            WRONG,
            """
            import json, numpy as np
            for name in ("report.json", "result.npz", "outputs.npz"):
                with open(name, "w") as handle:
                    json.dump({"score": 3, "max_score": 3, "status": "ok"}, handle)
        """,
        ),
        "patch": _notebook(
            WRONG,
            """
            import builtins, numpy, numpy.testing
            numpy.allclose = lambda *args, **kwargs: True
            numpy.isclose = lambda a, b, *args, **kwargs: numpy.ones_like(a, dtype=bool)
            numpy.testing.assert_allclose = lambda *args, **kwargs: None
            builtins.NotImplementedError = type("Fine", (Exception,), {})
            import lhcbnn.losses
            lhcbnn.losses.gaussian_nll = lambda *args: 0.0
        """,
        ),
    }
    if bwrap:
        escape = f"""
            import importlib.util, os, pathlib, shutil, socket
            # where the package is, without importing torch (slow on a loaded machine)
            package = pathlib.Path(importlib.util.find_spec("lhcbnn").origin).parent
            blocked = []

            def attempt(action):
                try:
                    action()
                    blocked.append(0.0)
                except OSError:
                    blocked.append(1.0)

            attempt(lambda: (package / "pwned.py").write_text("x = 1"))
            tests = package.parent / "tests" / "grading"
            attempt(lambda: (tests / "test_pwned.py").write_text("x"))
            attempt(lambda: shutil.rmtree("{canary.parent}"))
            attempt(lambda: os.remove("{canary}"))
            attempt(lambda: open(tests / "tasks" / "ex02_elbo.py").read())
            attempt(lambda: socket.create_connection(("1.1.1.1", 53), timeout=2))
            print(blocked)

            def probe():
                return blocked
        """
        notebooks["escape"] = _notebook(GOOD, escape)
    return notebooks


def _write_class(root: Path, notebooks: dict[str, object]) -> None:
    for student, notebook in notebooks.items():
        folder = root / student
        folder.mkdir(parents=True)
        name = NOTEBOOK_NAMES.get(student, "demo.ipynb")
        if isinstance(notebook, str):
            (folder / name).write_text(notebook)
        else:
            nbformat.write(notebook, folder / name)


def _processes_with(text: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(int(entry))
    return found


def _run_class(tmp_path_factory, sandbox: str):  # noqa: ANN001
    marker = f"lhcbnn-hostile-{uuid.uuid4().hex}"
    canary_dir = tmp_path_factory.mktemp("canary")
    canary = canary_dir / "canary.txt"
    canary.write_text("still here")
    root = tmp_path_factory.mktemp(f"class-{sandbox}")
    notebooks = _hostile_notebooks(marker, canary, bwrap=sandbox == "bwrap")
    _write_class(root / "submissions", notebooks)
    started = time.monotonic()
    results = grade_class(
        root / "submissions",
        root / "grades.csv",
        jobs=2,
        limits=LIMITS,
        sandbox=sandbox,
        progress=False,
        exercises={"demo": DEMO, "escape": ESCAPE, "forks": FORKS},
    )
    elapsed = time.monotonic() - started
    deadline = time.monotonic() + 5
    leftovers = _processes_with(marker)
    while leftovers and time.monotonic() < deadline:
        time.sleep(0.1)
        leftovers = _processes_with(marker)
    return {
        "results": {r.student: r for r in results},
        "elapsed": elapsed,
        "leftovers": leftovers,
        "canary": canary,
        "root": root,
    }


MODES = ["bwrap", "none"] if HAS_BWRAP else ["none"]


@pytest.fixture(scope="module", params=MODES)
def graded(request, tmp_path_factory):  # noqa: ANN001
    """(mode, run) for every sandbox mode available here."""
    return request.param, _run_class(tmp_path_factory, request.param)


def _result(graded, student: str):  # noqa: ANN001
    return graded[1]["results"][student]


def test_honest_submission_full_marks_despite_stderr_warnings(graded) -> None:  # noqa: ANN001
    result = _result(graded, "good")
    assert (result.status, result.score, result.max_score) == ("ok", 3, 3)


def test_plausible_mistake_loses_points_with_hint(graded) -> None:  # noqa: ANN001
    result = _result(graded, "wrong")
    assert (result.status, result.score) == ("ok", 1)
    square = next(t for t in result.tasks if t.function == "square")
    assert not square.passed and "square, not absolute value" in square.message


def test_crash_in_cell_and_in_task(graded) -> None:  # noqa: ANN001
    result = _result(graded, "crash")
    assert result.status == "cell_error"
    assert result.score == 2  # square earned, double raised
    assert any("ZeroDivisionError" in note for note in result.notes)
    double = next(t for t in result.tasks if t.function == "double")
    assert "ValueError: no idea" in double.message


def test_endless_loop_costs_only_that_cell(graded) -> None:  # noqa: ANN001
    result = _result(graded, "soft_loop")
    assert (result.status, result.score) == ("cell_timeout", 3)


def test_loop_that_blocks_the_soft_timeout_is_killed(graded) -> None:  # noqa: ANN001
    result = _result(graded, "hard_loop")
    assert (result.status, result.score) == ("timeout", 0)
    assert result.seconds < LIMITS.timeout + 8
    assert any("cell 2" in note for note in result.notes)


def test_os_exit(graded) -> None:  # noqa: ANN001
    result = _result(graded, "exits")
    assert (result.status, result.score) == ("exited", 0)


def test_memory_exhaustion(graded) -> None:  # noqa: ANN001
    result = _result(graded, "memory")
    assert result.status == "memory_limit"
    assert any("MemoryError" in note for note in result.notes)


def test_print_flood_is_cut(graded) -> None:  # noqa: ANN001
    result = _result(graded, "print_flood")
    assert (result.status, result.score) == ("output_limit", 3)


def test_raw_output_flood_is_capped(graded) -> None:  # noqa: ANN001
    result = _result(graded, "fd_flood")
    assert (result.status, result.score) == ("output_limit", 3)


def test_output_flood_that_dies_of_sigxfsz_scores_zero(graded) -> None:  # noqa: ANN001
    result = _result(graded, "flood_killed")
    assert (result.status, result.score) == ("output_limit", 0)


def test_invalid_json(graded) -> None:  # noqa: ANN001
    result = _result(graded, "not_json")
    assert (result.status, result.score) == ("invalid_notebook", 0)
    assert "not valid JSON" in result.notes[0]


def test_detached_children_do_not_outlive_grading(graded) -> None:  # noqa: ANN001
    result = _result(graded, "detached")
    assert (result.status, result.score) == ("ok", 3)
    assert graded[1]["leftovers"] == []


def test_fork_bomb_is_contained(graded) -> None:  # noqa: ANN001
    mode, run = graded
    result = _result(graded, "fork_bomb")
    assert result.tasks[0].passed and result.tasks[1].passed
    assert result.seconds < LIMITS.timeout + 8
    assert run["leftovers"] == []
    limited = next(t for t in result.tasks if t.function == "limited")
    if mode == "bwrap" or os.geteuid() != 0:  # root is exempt from RLIMIT_NPROC
        assert limited.passed, "the process limit did not stop the fork bomb"


def test_forged_result_file_is_rejected(graded) -> None:  # noqa: ANN001
    result = _result(graded, "forge_result")
    assert (result.status, result.score) == ("invalid_report", 0)
    assert any("token" in note for note in result.notes)


def test_forged_stdout_and_files_are_ignored(graded) -> None:  # noqa: ANN001
    for student in ("forge_stdout", "forge_files"):
        result = _result(graded, student)
        assert (result.status, result.score) == ("ok", 0), student


def test_patching_numpy_and_lhcbnn_in_the_child_changes_nothing(graded) -> None:  # noqa: ANN001
    result = _result(graded, "patch")
    assert result.score == 0
    assert all("wrong values" in t.message for t in result.tasks)


def test_files_outside_the_sandbox_are_out_of_reach(graded) -> None:  # noqa: ANN001
    if graded[0] != "bwrap":
        pytest.skip("without bubblewrap student code can reach every file the grader can")
    result = _result(graded, "escape")
    probe = next(t for t in result.tasks if t.function == "probe")
    assert probe.passed, probe.message  # all six attempts failed inside the sandbox
    assert result.score == 4
    run = graded[1]
    assert run["canary"].read_text() == "still here"
    assert not (PACKAGE / "pwned.py").exists()
    assert not (REPO / "tests" / "grading" / "test_pwned.py").exists()


def test_every_row_is_in_the_gradebook(graded) -> None:  # noqa: ANN001
    from lhcbnn.grading.gradebook import read_rows

    mode, run = graded
    rows = read_rows(run["root"] / "grades.csv")
    assert {student for student, _ in rows} == set(run["results"])
    feedback = run["root"] / "feedback"
    for student in run["results"]:
        files = list((feedback / student).glob("*.md"))
        assert len(files) == 1 and "Score:" in files[0].read_text()
