"""Instructor secrets stay with the instructor: neither the wheel nor the student distribution
holds a hidden check (reference answers, case seeds, tolerances) or a solution.

What counts as a leak (:func:`_leaks`), searched in every text file of what students get:

* a file named like a hidden-check module (``exNN_*.py``) or a notebook with a solution marker;
* a top-level definition of a hidden-check module (``def kl_gaussian_reference``,
  ``def _kl_cases``, ``EXERCISE = ...``);
* the source of a solution cell (the function with its answer), or a solution region of two
  or more lines. A single answer line may equal a line of the package (the package implements
  the formulas the book teaches), so single lines alone do not count.

The detector is itself tested on the solutions and the hidden checks, where it must fire.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from lhcbnn.grading.release import BEGIN, END
from lhcbnn.grading.tasks import MODULE_PATTERN, REPO_TASKS, stray_modules

REPO = Path(__file__).resolve().parents[1]
TASKS = REPO / REPO_TASKS
SOLUTIONS = REPO / "solutions"
COPY_IGNORE = shutil.ignore_patterns(
    ".git", "_build", ".venv*", "venv*", "build", "dist", "*.egg-info", "__pycache__"
)


def _normalise(text: str) -> str:
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def _secrets() -> dict[str, str]:
    """``{what: normalised text}`` that must never reach a student."""
    secrets: dict[str, str] = {}
    for module in sorted(TASKS.glob(MODULE_PATTERN)):
        for node in ast.parse(module.read_text()).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                keyword = "def" if isinstance(node, ast.FunctionDef) else "class"
                secrets[f"{module.name}: {node.name}"] = f"{keyword} {node.name}("
        secrets[f"{module.name}: EXERCISE"] = "EXERCISE = Exercise("
    for path in sorted(SOLUTIONS.glob("ex*.ipynb")):
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if BEGIN not in cell.source:
                continue
            secrets[f"{path.name} cell {index + 1}"] = _normalise(cell.source)
            region: list[str] = []
            for line in cell.source.split("\n"):
                if line.strip() == BEGIN:
                    region = []
                elif line.strip() == END:
                    if len(_normalise("\n".join(region)).splitlines()) >= 2:
                        secrets[f"{path.name} cell {index + 1} region"] = _normalise(
                            "\n".join(region)
                        )
                else:
                    region.append(line)
    return secrets


def _leaks(files: dict[str, str]) -> list[str]:
    """Leaks in ``{relative path: text}``."""
    found = []
    secrets = _secrets()
    for name, text in files.items():
        base = Path(name).name
        if Path(base).match(MODULE_PATTERN):
            found.append(f"{name}: a hidden-check module")
        if name.endswith(".ipynb") and BEGIN in text:
            found.append(f"{name}: a notebook with a solution")
        normalised = _normalise(text)
        if name.endswith(".ipynb"):
            notebook = nbformat.reads(text, as_version=4)
            normalised = _normalise("\n".join(cell.source for cell in notebook.cells))
        for what, secret in secrets.items():
            if secret in normalised:
                found.append(f"{name}: {what}")
    return found


def _texts(root: Path) -> dict[str, str]:
    texts = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".ipynb", ".md", ".txt", ".toml", ".cfg"):
            texts[str(path.relative_to(root))] = path.read_text(errors="replace")
    return texts


def _wheel_texts(wheel: Path) -> dict[str, str]:
    with zipfile.ZipFile(wheel) as archive:
        return {
            name: archive.read(name).decode(errors="replace")
            for name in archive.namelist()
            if not name.endswith((".npz", ".png"))
        }


def test_no_hidden_check_is_left_inside_the_package() -> None:
    assert stray_modules() == [], (
        "hidden checks inside lhcbnn/grading/tasks ship to every student: "
        f"git mv {' '.join(map(str, stray_modules()))} {REPO_TASKS}/"
    )


def test_the_leak_detector_fires_on_the_secrets() -> None:
    """The search below can fail: it finds every hidden check and every solution."""
    tasks = _texts(TASKS)
    solutions = _texts(SOLUTIONS)
    assert tasks and solutions
    found = _leaks({**{f"tasks/{k}": v for k, v in tasks.items()}, **solutions})
    for name in tasks:
        if Path(name).match(MODULE_PATTERN):
            assert f"tasks/{name}: {name}: EXERCISE" in found
            assert f"tasks/{name}: a hidden-check module" in found
    for name in solutions:
        assert f"{name}: a notebook with a solution" in found
        assert any(f.startswith(f"{name}: {name} cell") for f in found), name
    # an answer pasted into a package module is caught without any marker around it
    answer = next(s for w, s in _secrets().items() if w.endswith("region"))
    assert _leaks({"lhcbnn/helper.py": "x = 1\n" + answer.replace("\n", "\n    ")})


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip wheel --no-deps`` of a copy of the working tree (so no build files land here)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    shutil.copytree(REPO, source, ignore=COPY_IGNORE)
    started = time.monotonic()
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(root / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (wheel,) = (root / "dist").glob("lhcbnn-*.whl")
    print(
        f"wheel {wheel.name}: {wheel.stat().st_size / 1e6:.2f} MB, "
        f"built in {time.monotonic() - started:.1f} s"
    )
    return wheel


def test_the_wheel_holds_no_hidden_check_and_no_solution(wheel: Path) -> None:
    texts = _wheel_texts(wheel)
    assert "lhcbnn/grading/tasks/base.py" in texts and "lhcbnn/grading/release.py" in texts
    assert "lhcbnn/data/jets_sample.npz" in zipfile.ZipFile(wheel).namelist()
    assert _leaks(texts) == []


def test_student_distribution(tmp_path: Path) -> None:
    out = tmp_path / "course"
    result = subprocess.run(
        [sys.executable, "-m", "lhcbnn.grading", "student-dist", str(out), "--zip"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    exercises = sorted(p.name for p in (REPO / "exercises").glob("ex*.ipynb"))
    assert sorted(p.name for p in (out / "exercises").iterdir()) == exercises
    for name in exercises:
        assert (out / "exercises" / name).read_bytes() == (REPO / "exercises" / name).read_bytes()
    assert not (out / "solutions").exists() and not (out / "tests").exists()
    texts = _texts(out)
    assert _leaks(texts) == []
    with zipfile.ZipFile(tmp_path / "course.zip") as archive:
        names = archive.namelist()
    assert "course/exercises/" + exercises[0] in names
    assert not [n for n in names if "/solutions/" in n or "/tests/" in n]
    requirements = (out / "requirements.txt").read_text()
    assert "jupyterlab==" in requirements and "torch==2.13.0" in requirements
    assert "-e ." in requirements.splitlines()
    assert "nbgrader" not in requirements and "pytest" not in requirements
    # the package imports from the distribution, and the grader finds no hidden checks there
    env = {**os.environ, "PYTHONPATH": str(out)}
    env.pop("LHCBNN_GRADING_TASKS", None)
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import lhcbnn, lhcbnn.grading as g; print(lhcbnn.__file__)\n"
            "try:\n    len(g.EXERCISES)\nexcept FileNotFoundError as e:\n    print('missing:', e)",
        ],
        capture_output=True,
        text=True,
        cwd=out,
        env=env,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.startswith(str(out / "lhcbnn")), probe.stdout
    assert "missing: the hidden checks" in probe.stdout


def test_student_distribution_refuses_stale_exercises(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(REPO, repo, ignore=COPY_IGNORE)
    stale = repo / "exercises" / sorted(p.name for p in (repo / "exercises").iterdir())[0]
    stale.write_text(stale.read_text().replace("Task 1", "Task one"))
    result = subprocess.run(
        [sys.executable, "-m", "lhcbnn.grading", "student-dist", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=repo,
        timeout=300,
    )
    assert result.returncode == 2 and "out of date" in result.stderr, result.stderr


def test_tasks_option_chooses_the_hidden_checks(tmp_path: Path) -> None:
    """``--tasks DIR`` grades with the checks in DIR only (here: just exercise 3)."""
    (tmp_path / "tasks").mkdir()
    shutil.copy(TASKS / "ex03_limits.py", tmp_path / "tasks" / "ex03_limits.py")

    def check(name: str) -> str:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "lhcbnn.grading",
                "--tasks",
                str(tmp_path / "tasks"),
                "check",
                str(SOLUTIONS / f"{name}.ipynb"),
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr
        return run.stdout

    assert "unknown" in check("ex02_elbo").lower()
    graded = check("ex03_limits")
    assert "ex03_limits" in graded and "unknown" not in graded.lower()
    missing = subprocess.run(
        [sys.executable, "-m", "lhcbnn.grading", "--tasks", str(tmp_path / "none"), "check", "x"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert missing.returncode == 2 and "is not a folder" in missing.stderr


def test_sandboxed_code_cannot_read_the_hidden_checks(tmp_path: Path) -> None:
    """The first task of the first exercise, solved correctly but reading a hidden-check
    module first: under bubblewrap the read fails, so that task scores zero, the others full."""
    from lhcbnn.grading import EXERCISES, grade_notebook
    from lhcbnn.grading.sandbox import _bwrap_works

    if not _bwrap_works()[0]:
        pytest.skip("bubblewrap does not work here: " + _bwrap_works()[1])
    name = sorted(EXERCISES)[0]
    exercise = EXERCISES[name]
    function = exercise.tasks[0].function
    hidden = TASKS / f"{name}.py"
    assert hidden.is_file() and os.access(hidden, os.R_OK)  # readable outside the sandbox
    notebook = nbformat.read(SOLUTIONS / f"{name}.ipynb", as_version=4)
    (cell,) = [c for c in notebook.cells if c.source.startswith(f"def {function}(")]
    assert BEGIN in cell.source
    cell.source = cell.source.replace(BEGIN, f"open({str(hidden)!r}).read()\n    {BEGIN}", 1)
    nbformat.write(notebook, tmp_path / f"{name}.ipynb")
    result = grade_notebook(tmp_path / f"{name}.ipynb", sandbox="bwrap")
    points = {t.function: t.points for t in result.tasks}
    message = next(t.message for t in result.tasks if t.function == function)
    assert points[function] == 0, message
    assert "No such file" in message or "FileNotFoundError" in message, message
    assert result.score == exercise.max_score - exercise.task(function).points, result.feedback()
