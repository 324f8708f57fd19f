"""What the grader does when the machine, not the student, is the problem, and what it does
against shortcuts and whole-submission resource abuse (issue 14).

* bubblewrap missing: ``grade`` stops with an error naming the fix instead of grading
  without isolation; an explicit ``--sandbox none`` as root still drops privileges;
* grader faults (the job folder deleted mid-run, a sandbox that does not start, a full disk)
  are ``grader_error``: no grade, no feedback, and the next run grades the file again;
* reference shortcuts (a helper, an alias, ``getattr``, an import inside the function,
  torch's own KL) trip the tripwires and score 0 with a line saying why;
* memory and processes are capped per submission: 32 children of 1 GiB each stay inside
  the cgroup's cap.

Every hostile notebook is graded beside an honest one, which must still score full marks.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from lhcbnn.grading import EXERCISES, cgroup, grade_notebook
from lhcbnn.grading import grade as grade_module
from lhcbnn.grading import sandbox as sandbox_module
from lhcbnn.grading.classgrade import grade_class
from lhcbnn.grading.gradebook import read_long, read_rows
from lhcbnn.grading.sandbox import Limits, SandboxUnavailable, _bwrap_works
from lhcbnn.grading.tasks.base import Case, Exercise, Task

REPO = Path(__file__).resolve().parents[1]
HAS_BWRAP = _bwrap_works()[0]
MODE = "bwrap" if HAS_BWRAP else "none"
LIMITS = Limits(timeout=30, soft_timeout=10, memory_mb=1024, output_mb=8)


def _cases() -> list[Case]:
    return [Case((np.arange(4.0),), "0..3")]


SQUARE = Task("square", 2, "square", _cases, lambda x: x**2)
DOUBLE = Task("double", 1, "double", _cases, lambda x: 2 * x)
DEMO = Exercise("demo", "demo", (SQUARE, DOUBLE))
GOOD = "def square(x):\n    return x**2\n\n\ndef double(x):\n    return 2 * x\n"


def _notebook(*sources: str) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(textwrap.dedent(s).strip()) for s in sources]
    return notebook


def _write(path: Path, notebook: nbformat.NotebookNode) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


# ------------------------------------------------------------------ the sandbox is never lost
def test_missing_bubblewrap_stops_grading_with_the_fix(monkeypatch, tmp_path: Path) -> None:  # noqa: ANN001
    monkeypatch.delenv("LHCBNN_SANDBOX", raising=False)
    monkeypatch.setattr(sandbox_module, "_bwrap_works", lambda: (False, "bwrap is broken here"))
    for requested in ("auto", "bwrap"):
        with pytest.raises(SandboxUnavailable, match="Install bubblewrap") as caught:
            sandbox_module.sandbox_mode(requested)
        assert "--sandbox none" in str(caught.value)
    assert sandbox_module.sandbox_mode("none") == "none"
    notebook = _write(tmp_path / "ann" / "demo.ipynb", _notebook(GOOD))
    with pytest.raises(SandboxUnavailable):
        grade_notebook(notebook, exercise=DEMO, limits=LIMITS)


def test_cli_without_bubblewrap_exits_with_the_fix(tmp_path: Path) -> None:
    _write(tmp_path / "subs" / "ann" / "ex02_elbo.ipynb", _notebook(GOOD))
    env = {**os.environ, "PATH": str(tmp_path)}  # no bwrap on this PATH
    env.pop("LHCBNN_SANDBOX", None)
    command = [sys.executable, "-m", "lhcbnn.grading", "grade", str(tmp_path / "subs")]
    result = subprocess.run(
        [*command, "--out", str(tmp_path / "g.csv"), "--no-progress"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 2
    assert "not installed" in result.stderr and "Install bubblewrap" in result.stderr
    assert "--sandbox none" in result.stderr
    assert not (tmp_path / "g.csv").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="privileges are dropped only when grading as root")
def test_sandbox_none_as_root_still_drops_privileges(tmp_path: Path) -> None:
    whoami = Task("whoami", 1, "uid", lambda: [Case((), "uid")], lambda: np.ones(2))
    exercise = Exercise("demo", "demo", (SQUARE, DOUBLE, whoami))
    probe = """
        import os

        def whoami():
            # 1 = not root: the effective uid, and whether root's /etc refuses a new file
            try:
                with open("/etc/lhcbnn-privilege-probe", "w"):
                    writes_etc = 0.0
                os.remove("/etc/lhcbnn-privilege-probe")
            except OSError:
                writes_etc = 1.0
            return [float(os.geteuid() != 0), writes_etc]
    """
    honest = grade_notebook(
        _write(tmp_path / "good" / "demo.ipynb", _notebook(GOOD)),
        exercise=DEMO,
        limits=LIMITS,
        sandbox="none",
    )
    assert (honest.status, honest.score) == ("ok", 3)
    result = grade_notebook(
        _write(tmp_path / "probe" / "demo.ipynb", _notebook(GOOD, probe)),
        exercise=exercise,
        limits=LIMITS,
        sandbox="none",
    )
    assert result.sandbox == "none"
    assert (result.status, result.score) == ("ok", 4), result.feedback()


# ------------------------------------------------------------------ grader faults
def _wait_and_delete(root: Path, marker: str, stop: threading.Event, deleted: list) -> None:
    """Delete the run folder whose job holds ``marker`` once its cell is running."""
    while not stop.is_set():
        for base in root.glob("lhcbnn-grade-*"):
            try:
                job = (base / "job" / "job.json").read_text()
                progress = (base / "log" / "progress.log").read_text()
            except OSError:
                continue
            if marker in job and "cell 1" in progress:
                shutil.rmtree(base, ignore_errors=True)
                deleted.append(base)
                return
        time.sleep(0.05)


def test_deleted_job_folder_is_a_grader_error_and_regraded(monkeypatch, tmp_path: Path) -> None:  # noqa: ANN001
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(runs))
    marker = "time.sleep(3)  # the victim"
    submissions = tmp_path / "submissions"
    _write(submissions / "good" / "demo.ipynb", _notebook(GOOD))
    _write(submissions / "victim" / "demo.ipynb", _notebook(GOOD, f"import time\n{marker}"))
    out = tmp_path / "grades.csv"
    stop, deleted = threading.Event(), []
    watcher = threading.Thread(target=_wait_and_delete, args=(runs, marker, stop, deleted))
    watcher.start()
    try:
        results = grade_class(
            submissions,
            out,
            jobs=2,
            limits=LIMITS,
            sandbox=MODE,
            progress=False,
            exercises={"demo": DEMO},
        )
    finally:
        stop.set()
        watcher.join()
    assert deleted, "the watcher never saw the victim's run"
    by_student = {r.student: r for r in results}
    assert (by_student["good"].status, by_student["good"].score) == ("ok", 3)
    victim = by_student["victim"]
    assert victim.status == "grader_error", victim.feedback()
    assert any("disappeared" in note for note in victim.notes)
    assert not any("os._exit" in note for note in victim.notes)  # not blamed on the student
    victim_rows = [r for r in read_long(out) if r["student"] == "victim"]
    assert victim_rows and all(r["points"] == "" for r in victim_rows)  # not a grade
    assert read_rows(out)[("victim", "demo")]["score"] == ""
    assert not (tmp_path / "feedback" / "victim").exists()

    again = grade_class(
        submissions, out, jobs=2, limits=LIMITS, sandbox=MODE, progress=False,
        exercises={"demo": DEMO},
    )  # fmt: skip
    assert [(r.student, r.status, r.score) for r in again] == [("victim", "ok", 3)]
    assert read_rows(out)[("victim", "demo")]["score"] == "3"
    assert len(read_long(out)) == 3 * 2  # good, victim's error and victim's grade: all kept
    assert (tmp_path / "feedback" / "victim" / "demo.md").exists()


def test_sandbox_that_does_not_start_is_a_grader_error(monkeypatch, tmp_path: Path) -> None:  # noqa: ANN001
    notebook = _write(tmp_path / "ann" / "demo.ipynb", _notebook(GOOD))
    monkeypatch.setattr(sandbox_module, "RUNNER", tmp_path / "no-such-runner.py")
    result = grade_notebook(notebook, exercise=DEMO, limits=LIMITS, sandbox=MODE)
    assert result.status == "grader_error" and result.score == 0
    assert any("did not start" in note for note in result.notes), result.notes


def test_full_disk_is_a_grader_error(monkeypatch, tmp_path: Path) -> None:  # noqa: ANN001
    notebook = _write(tmp_path / "ann" / "demo.ipynb", _notebook(GOOD))

    def full(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(grade_module, "write_job", full)
    result = grade_notebook(notebook, exercise=DEMO, limits=LIMITS, sandbox=MODE)
    assert result.status == "grader_error"
    assert any("No space left" in note for note in result.notes)


# ------------------------------------------------------------------ reference shortcuts
BYPASSES = {
    "helper": """
        def _helper(*a):
            return lb.losses.kl_gaussian(*a)


        def kl_gaussian(mu_q, sigma_q, mu_p, sigma_p):
            return _helper(mu_q, sigma_q, mu_p, sigma_p)
    """,
    "alias": """
        from lhcbnn import losses as L

        K = getattr(L, "kl_" + "gaussian")


        def kl_gaussian(*args):
            return K(*args)
    """,
    "import_inside": """
        def kl_gaussian(mu_q, sigma_q, mu_p, sigma_p):
            import lhcbnn.losses as L

            return L.kl_gaussian(mu_q, sigma_q, mu_p, sigma_p)
    """,
    "torch_kl": """
        from torch.distributions import Normal, kl_divergence as divergence


        def kl_gaussian(mu_q, sigma_q, mu_p, sigma_p):
            mu_p = torch.as_tensor(mu_p, dtype=mu_q.dtype)
            sigma_p = torch.as_tensor(sigma_p, dtype=sigma_q.dtype)
            return divergence(Normal(mu_q, sigma_q), Normal(mu_p, sigma_p))
    """,
}
EXPECTED_TRIP = {
    "helper": "lhcbnn.losses.kl_gaussian",
    "alias": "lhcbnn.losses.kl_gaussian",
    "import_inside": "lhcbnn.losses.kl_gaussian",
    "torch_kl": "kl_divergence",
}


def _with_kl_cell(source: str) -> nbformat.NotebookNode:
    notebook = nbformat.read(REPO / "solutions" / "ex02_elbo.ipynb", as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code" and "def kl_gaussian" in cell.source:
            cell.source = textwrap.dedent(source).strip()
            return notebook
    raise AssertionError("no kl_gaussian cell in the solution")


@pytest.fixture(scope="module")
def bypasses(tmp_path_factory) -> dict:  # noqa: ANN001
    root = tmp_path_factory.mktemp("bypass") / "submissions"
    shutil.copytree(REPO / "solutions", root / "honest", ignore=_only("ex02_elbo.ipynb"))
    for name, source in BYPASSES.items():
        _write(root / name / "ex02_elbo.ipynb", _with_kl_cell(source))
    results = grade_class(root, root.parent / "grades.csv", jobs=2, sandbox=MODE, progress=False)
    return {r.student: r for r in results}


def _only(name: str):  # noqa: ANN202
    return lambda folder, names: [n for n in names if n != name]


def test_honest_solution_is_not_tripped(bypasses) -> None:  # noqa: ANN001
    honest = bypasses["honest"]
    full = EXERCISES["ex02_elbo"].max_score
    assert (honest.score, honest.max_score) == (full, full), honest.feedback()


@pytest.mark.parametrize("name", sorted(BYPASSES))
def test_reference_shortcut_scores_zero_with_the_reason(bypasses, name: str) -> None:  # noqa: ANN001
    result = bypasses[name]
    kl = next(t for t in result.tasks if t.function == "kl_gaussian")
    assert kl.points == 0 and not kl.passed
    assert "reference implementation" in kl.message and EXPECTED_TRIP[name] in kl.message
    assert "cell 4" in kl.message, kl.message  # the line of the student's code that called it
    # the other tasks are graded as usual
    assert result.score == result.max_score - kl.max_points, result.feedback()
    assert "reference implementation" in result.feedback()


# ------------------------------------------------------------------ memory per submission
FORK_HOGS = """
    import os, time

    children = []
    for _ in range(32):
        pid = os.fork()
        if pid == 0:  # each child fills 1 GiB, 64 MiB at a time, holds it, leaves
            try:
                hog = [b"\\x01" * (64 << 20) for _ in range(16)]
                time.sleep(3)
            finally:
                os._exit(0)
        children.append(pid)
    statuses = [os.waitpid(pid, 0)[1] for pid in children]
    survivors = sum(os.WIFEXITED(s) for s in statuses)


    def survived():
        return float(survivors)
"""


@pytest.mark.skipif(
    cgroup.support().kind == "none",
    reason=f"no cgroup can be created here: {cgroup.support().reason}",
)
def test_32_children_of_1_gib_stay_inside_the_memory_cap(tmp_path: Path) -> None:
    cap_mb = 1536
    limits = Limits(timeout=180, soft_timeout=170, memory_mb=2048, submission_memory_mb=cap_mb)
    # at most one child can hold its GiB under the cap: the task wants the honest answer 1
    survived = Task("survived", 1, "survivors", lambda: [Case((), "32 x 1 GiB")], lambda: 1.0)
    exercise = Exercise("demo", "demo", (SQUARE, DOUBLE, survived))
    submissions = tmp_path / "submissions"
    _write(submissions / "good" / "demo.ipynb", _notebook(GOOD, "def survived():\n    return 1.0"))
    _write(submissions / "hog" / "demo.ipynb", _notebook(GOOD, FORK_HOGS))
    peaks: dict[str, int | None] = {}
    original = sandbox_module.run_in_sandbox

    def measured(jobdir, nonce, limits, mode, logdir):  # noqa: ANN001, ANN202
        run = original(jobdir, nonce, limits, mode, logdir)
        job = (Path(jobdir) / "job.json").read_text()
        peaks["hog" if "fork" in job else "good"] = run.memory_peak_bytes
        return run

    sandbox_module.run_in_sandbox = measured
    try:
        results = grade_class(
            submissions,
            tmp_path / "grades.csv",
            jobs=1,
            limits=limits,
            sandbox=MODE,
            progress=False,
            exercises={"demo": exercise},
        )
    finally:
        sandbox_module.run_in_sandbox = original
    by_student = {r.student: r for r in results}
    assert (by_student["good"].status, by_student["good"].score) == ("ok", 4)
    hog = by_student["hog"]
    assert hog.status == "memory_limit", hog.feedback()
    assert any(f"more than {cap_mb} MiB" in note for note in hog.notes)
    assert hog.score in (3, 4)  # square and double still graded; survivors: 1 (or 0)
    assert peaks["hog"] is not None and peaks["hog"] <= cap_mb * 2**20
    assert peaks["hog"] > (cap_mb - 512) * 2**20  # the children really pushed against the cap


TRIPWIRE_PROBE = """
import json, torch
import lhcbnn as lb
from lhcbnn.grading.sandbox_tripwires import Tripwires

early_alias = lb.losses.kl_gaussian  # taken before the tripwires are set
x = torch.tensor([0.5, 1.0], dtype=torch.float64)
before = lb.losses.kl_gaussian(x, x, 0.0, 1.0)
wires = Tripwires({"kl_gaussian", "log_prob", "MCDropoutMLP"})
source = '''
def via_alias(x):
    return early_alias(x, x, 0.0, 1.0)
def via_method(x):
    return torch.distributions.Normal(x, 1.0).log_prob(x)
def via_class():
    return lb.MCDropoutMLP(1, 1)
def honest(x):
    return torch.log(1.0 / x) + (x**2 + x**2) / 2 - 0.5
'''
namespace = {"torch": torch, "lb": lb, "early_alias": early_alias}
exec(compile(source, "<cell 7>", "exec"), namespace)
seen = {}
for name, args in [("via_alias", (x,)), ("via_method", (x,)), ("via_class", ()), ("honest", (x,))]:
    wires.arm({"kl_gaussian", "log_prob", "MCDropoutMLP"})
    namespace[name](*args)
    seen[name] = wires.disarm()
wires.arm(set())  # armed for another task: nothing is recorded
namespace["via_alias"](x)
seen["other_task"] = wires.disarm()
same = bool(torch.equal(lb.losses.kl_gaussian(x, x, 0.0, 1.0), before))
print(json.dumps({"seen": seen, "same": same}))
"""


def test_tripwires_catch_aliases_methods_and_classes_and_change_nothing() -> None:
    import json

    probe = subprocess.run(
        [sys.executable, "-c", TRIPWIRE_PROBE],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert probe.returncode == 0, probe.stderr
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    seen = result["seen"]
    assert seen["via_alias"] == [["lhcbnn.losses.kl_gaussian", "cell 7, line 3"]]
    assert seen["via_method"] == [["torch.distributions.normal.Normal.log_prob", "cell 7, line 5"]]
    assert seen["via_class"] == [["lhcbnn.baselines.MCDropoutMLP", "cell 7, line 7"]]
    assert seen["honest"] == [] and seen["other_task"] == []
    assert result["same"]  # a trapped function still computes what it did
