"""Write what students receive: the exercises and the package, nothing secret.

``python -m lhcbnn.grading student-dist OUT [--zip]`` writes the folder ``OUT``::

    OUT/README.md          how to install and open the exercises (one command)
    OUT/requirements.txt   the pinned packages a student needs (torch, JupyterLab, ...)
    OUT/pyproject.toml     so that ``pip install -e .`` installs the package below
    OUT/lhcbnn/            the package source, data included
    OUT/exercises/         exNN_*.ipynb, exactly as ``release`` generated them

and with ``--zip`` also ``OUT.zip``. It leaves out ``solutions/`` and the hidden checks
(``tests/grading/tasks``; the package itself holds only their building blocks), the book's
sources, the tests and the benchmarks. It refuses to run when the committed exercises are
out of date with ``solutions/`` or when an exercise module of the hidden checks was left
inside the package, so what it writes cannot be stale or leak the references.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from lhcbnn.grading.release import release_diff
from lhcbnn.grading.tasks import MODULE_PATTERN

__all__ = ["STUDENT_PACKAGES", "student_requirements", "write_student_distribution"]

REPO = Path(__file__).resolve().parents[2]

STUDENT_PACKAGES = (
    "torch",
    "numpy",
    "scipy",
    "matplotlib",
    "tqdm",
    "nbformat",
    "ipykernel",
    "jupyterlab",
)
"""The pinned requirements a student needs to run the exercises (the rest is for the book,
the tests and the grader)."""

_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".ipynb_checkpoints")

STUDENT_README = """\
# Exercises: Bayesian networks and uncertainties for LHC physics

These are the exercise notebooks of the book, with the `lhcbnn` package they use.
Each task is a function you fill in between the marked lines; the self-check cell below it
says whether it behaves. Hand in the notebook file itself (`exercises/exNN_*.ipynb`).

## Install and open (Linux or macOS, Python 3.11)

```bash
python3.11 -m venv .venv && source .venv/bin/activate && \\
  pip install -r requirements.txt && jupyter lab exercises/
```

Later sessions only need `source .venv/bin/activate && jupyter lab exercises/`.
On Windows use `.venv\\Scripts\\activate` instead of `source .venv/bin/activate`.
A GPU is not needed; every exercise runs on a laptop CPU.

## What is graded

Your instructor grades the notebook with hidden checks: the same functions, called on other
inputs and compared with the exact answers, with hints for known mistakes. A function passes
when its self-check passes *and* it is right in general: do not hard-code the self-check's
numbers, and do not call the package's own implementation of the function you are asked to
write (the grader gives zero for that).
"""


def student_requirements(requirements: str) -> str:
    """The lines of ``requirements.txt`` a student needs, plus ``-e .`` for the package.

    Keeps comments out; raises ``ValueError`` if a needed package has no pinned line.
    """
    pins: dict[str, str] = {}
    for line in requirements.splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.match(r"^([A-Za-z0-9_.\-]+)\s*(==|>=|<=|~=|<|>)", line)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = line
    missing = [name for name in STUDENT_PACKAGES if name not in pins]
    if missing:
        raise ValueError(f"requirements.txt has no line for {', '.join(missing)}")
    lines = [
        "# The packages the exercises need, pinned as in the course repository.",
        *(pins[name] for name in STUDENT_PACKAGES),
        "-e .",
    ]
    return "\n".join(lines) + "\n"


def write_student_distribution(
    out: str | Path, repo: str | Path = REPO, make_zip: bool = False
) -> Path:
    """Write the student distribution of the repository ``repo`` into the new folder ``out``.

    Returns ``out`` (or the ``.zip`` beside it when ``make_zip``).

    Raises:
        FileExistsError: ``out`` exists and is not empty.
        ValueError: the exercises are out of date, or hidden checks sit in the package.
    """
    out, repo = Path(out), Path(repo)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty")
    strays = sorted((repo / "lhcbnn" / "grading" / "tasks").glob(MODULE_PATTERN))
    if strays:
        raise ValueError(f"hidden checks inside the package: {', '.join(map(str, strays))}")
    solutions, exercises = repo / "solutions", repo / "exercises"
    if not sorted(exercises.glob("ex*.ipynb")):
        raise FileNotFoundError(f"no exercise notebooks in {exercises}")
    if solutions.is_dir():
        stale = release_diff(solutions, exercises)
        if stale:
            raise ValueError(
                f"exercises out of date with solutions/: {', '.join(stale)}; "
                "run python -m lhcbnn.grading release"
            )
    out.mkdir(parents=True, exist_ok=True)
    (out / "exercises").mkdir()
    for notebook in sorted(exercises.glob("ex*.ipynb")):
        shutil.copy2(notebook, out / "exercises" / notebook.name)
    shutil.copytree(repo / "lhcbnn", out / "lhcbnn", ignore=_IGNORED)
    shutil.copy2(repo / "pyproject.toml", out / "pyproject.toml")
    (out / "README.md").write_text(STUDENT_README, encoding="utf-8")
    requirements = (repo / "requirements.txt").read_text(encoding="utf-8")
    (out / "requirements.txt").write_text(student_requirements(requirements), encoding="utf-8")
    if make_zip:
        archive = shutil.make_archive(str(out), "zip", root_dir=out.parent, base_dir=out.name)
        return Path(archive)
    return out
