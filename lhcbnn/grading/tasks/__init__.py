"""The registry of hidden graded checks, loaded from the instructor's folder.

The checks themselves (one module ``exNN_<name>.py`` per exercise: reference answers, the
seeds of the graded cases, tolerances, known mistakes) are **not part of the package**: they
live in the repository under ``tests/grading/tasks/``, which the wheel and the student
distribution (``python -m lhcbnn.grading student-dist``) leave out and the bubblewrap sandbox
never mounts. Only the building blocks (:mod:`lhcbnn.grading.tasks.base`) ship.

Where the checks are found (the first that applies):

1. :func:`set_tasks_dir` (``python -m lhcbnn.grading --tasks DIR ...``);
2. the environment variable ``LHCBNN_GRADING_TASKS``;
3. ``tests/grading/tasks`` of the repository that holds this package (a git checkout or an
   editable install), else of the current directory.

Every ``ex[0-9][0-9]_*.py`` in that folder is imported as ``lhcbnn.grading.tasks.<stem>``
(the folder is appended to this package's ``__path__``), and its ``EXERCISE`` is registered
under ``EXERCISE.name``. An exercise module left inside the package folder (where the wheel
would ship it) is still loaded, with a warning that names the ``git mv`` that moves it;
``tests/test_distribution.py`` and ``student-dist`` refuse it. :data:`EXERCISES` loads on
first use, so importing the grader works without the checks (``release`` and
``student-dist`` need none).
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

from lhcbnn.grading.tasks.base import Exercise

__all__ = [
    "EXERCISES",
    "Exercise",
    "MODULE_PATTERN",
    "TASKS_ENV",
    "HiddenChecksMissing",
    "find_tasks_dir",
    "set_tasks_dir",
    "stray_modules",
]

TASKS_ENV = "LHCBNN_GRADING_TASKS"
MODULE_PATTERN = "ex[0-9][0-9]_*.py"
REPO_TASKS = Path("tests") / "grading" / "tasks"
PACKAGE_TASKS_DIR = Path(__file__).resolve().parent
PACKAGE_DIR = PACKAGE_TASKS_DIR.parents[1]  # .../lhcbnn

_chosen: Path | None = None


class HiddenChecksMissing(FileNotFoundError):
    """No folder with the hidden checks was found (students' installs have none)."""


def set_tasks_dir(path: str | Path | None) -> None:
    """Use the hidden checks in ``path`` (``None``: back to the default search).

    Also sets ``LHCBNN_GRADING_TASKS`` so that grader processes started later agree.
    """
    global _chosen
    if path is None:
        _chosen = None
        os.environ.pop(TASKS_ENV, None)
    else:
        _chosen = Path(path).resolve()
        os.environ[TASKS_ENV] = str(_chosen)
    EXERCISES.reset()


def _forget_loaded() -> None:
    """Drop the exercise modules imported from a previous folder."""
    import sys

    for name in [n for n in sys.modules if n.startswith(__name__ + ".ex")]:
        del sys.modules[name]
    __path__[:] = [str(PACKAGE_TASKS_DIR)]


def find_tasks_dir() -> Path:
    """The folder of hidden checks in use (see the module docstring for the order).

    Raises:
        HiddenChecksMissing: no such folder, with the ways to name one.
        ValueError: the folder lies inside the installed package, which student code can read.
    """
    if _chosen is not None:
        candidates = [("--tasks", _chosen)]
    elif os.environ.get(TASKS_ENV):
        candidates = [(TASKS_ENV, Path(os.environ[TASKS_ENV]).resolve())]
    else:
        candidates = [
            ("the repository of the package", PACKAGE_DIR.parent / REPO_TASKS),
            ("the current directory", Path.cwd() / REPO_TASKS),
        ]
    for origin, folder in candidates:
        if folder.is_dir():
            folder = folder.resolve()
            if folder == PACKAGE_DIR or PACKAGE_DIR in folder.parents:
                raise ValueError(
                    f"the hidden checks {folder} lie inside the lhcbnn package, which graded "
                    "student code can read; keep them outside it (tests/grading/tasks)"
                )
            return folder
        if origin in ("--tasks", TASKS_ENV):
            raise HiddenChecksMissing(f"{origin}: {folder} is not a folder")
    raise HiddenChecksMissing(
        "the hidden checks (tests/grading/tasks/exNN_*.py) were not found: run from the "
        f"instructor's repository, pass --tasks DIR, or set {TASKS_ENV}=DIR"
    )


def stray_modules() -> list[Path]:
    """Exercise modules left inside the package folder, where they would ship to students."""
    return sorted(PACKAGE_TASKS_DIR.glob(MODULE_PATTERN))


def _load(folder: Path) -> dict[str, Exercise]:
    modules = sorted(folder.glob(MODULE_PATTERN))
    strays = stray_modules()
    if strays:
        names = " ".join(str(p.relative_to(PACKAGE_DIR.parent)) for p in strays)
        warnings.warn(
            f"hidden checks inside the package ship to every student: {names}; "
            f"move them with: git mv {names} {REPO_TASKS}/",
            stacklevel=3,
        )
        twice = sorted({p.name for p in strays} & {p.name for p in modules})
        if twice:
            raise ValueError(f"hidden checks both in the package and in {folder}: {twice}")
        modules = sorted([*modules, *strays], key=lambda p: p.name)
    if str(folder) not in __path__:
        __path__.append(str(folder))
    exercises: dict[str, Exercise] = {}
    for path in modules:
        module = importlib.import_module(f"{__name__}.{path.stem}")
        exercise = getattr(module, "EXERCISE", None)
        if not isinstance(exercise, Exercise):
            raise TypeError(f"{path} defines no EXERCISE (an Exercise)")
        if exercise.name in exercises:
            raise ValueError(f"{path}: exercise {exercise.name!r} is defined twice")
        exercises[exercise.name] = exercise
    if not exercises:
        raise HiddenChecksMissing(f"no hidden checks {MODULE_PATTERN} in {folder}")
    return exercises


class _Registry(Mapping[str, Exercise]):
    """``{exercise name: Exercise}``, read from :func:`find_tasks_dir` on first use."""

    def __init__(self) -> None:
        self._exercises: dict[str, Exercise] | None = None

    def _get(self) -> dict[str, Exercise]:
        if self._exercises is None:
            self._exercises = _load(find_tasks_dir())
        return self._exercises

    def reset(self) -> None:
        """Forget what was loaded; the next use reads the folder again."""
        self._exercises = None
        _forget_loaded()

    def __getitem__(self, name: str) -> Exercise:
        return self._get()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __repr__(self) -> str:
        return f"EXERCISES({sorted(self._get())})"


EXERCISES: _Registry = _Registry()
"""The hidden checks by exercise name (``ex02_elbo`` for ``ex02_elbo.ipynb``)."""


def __getattr__(name: str) -> object:
    """``from lhcbnn.grading.tasks import ex02_elbo`` loads the hidden checks first."""
    import sys

    if name.startswith("ex"):
        EXERCISES._get()
        module = sys.modules.get(f"{__name__}.{name}")
        if module is not None:
            return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
