"""Read a handed-in notebook safely and pick the code the grader executes.

Parsing happens in the grader's process, so it only reads JSON (size-capped), never executes
anything and never trusts the structure: a file that is not a version-4 notebook gets
:class:`InvalidNotebook` with a reason the student can act on. The structure is checked by
``nbformat`` itself (``nbformat.reads`` + ``nbformat.validate`` against the nbformat 4
schema, after ``nbformat``'s own normalisation of harmless omissions such as cell ids).

IPython syntax (``%matplotlib``, ``%%writefile``, ``!pip``, ``x = !ls``) becomes plain Python
through IPython's own ``TransformerManager``, the code Jupyter runs before executing a cell:
each magic turns into a ``get_ipython()`` call, which the sandbox's runner answers by doing
nothing (see :class:`lhcbnn.grading.runner.MagicsNotRun`).
"""

from __future__ import annotations

import ast
import functools
import json
from dataclasses import dataclass
from pathlib import Path

import nbformat

__all__ = [
    "SELF_CHECK_TAG",
    "CodeCell",
    "InvalidNotebook",
    "read_notebook",
    "code_cells",
    "forbidden_uses",
    "python_source",
]

MAX_NOTEBOOK_BYTES = 20 * 2**20
SELF_CHECK_TAG = "self-check"


class InvalidNotebook(ValueError):
    """The file is not a readable Jupyter notebook."""


@dataclass(frozen=True)
class CodeCell:
    """One code cell: its position among all cells, its source and its tags."""

    index: int
    source: str
    tags: tuple[str, ...]

    @property
    def code(self) -> str:
        """The source as plain Python (magics rewritten, see :func:`python_source`)."""
        return python_source(self.source)


@functools.cache
def _transformer():  # noqa: ANN202
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager()


@functools.lru_cache(maxsize=4096)
def python_source(source: str) -> str:
    """A cell's source as Jupyter's IPython kernel would run it: magics, shell escapes and
    help syntax become ``get_ipython()`` calls. Source that does not parse stays as it is
    (the runner reports the syntax error)."""
    try:
        return _transformer().transform_cell(source)
    except (SyntaxError, ValueError, IndexError):
        return source


def _source_text(source: object) -> str:
    if isinstance(source, str):
        return source
    if isinstance(source, list) and all(isinstance(s, str) for s in source):
        return "".join(source)
    raise InvalidNotebook("a cell's source is neither a string nor a list of strings")


def read_notebook(path: str | Path) -> dict:
    """Parse a notebook file (nbformat 4 JSON) without executing anything.

    Raises:
        InvalidNotebook: the file is missing, too large, not UTF-8, not JSON, or not a
            version-4 notebook with a list of cells.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidNotebook(f"cannot read the file: {exc.strerror}") from None
    if size > MAX_NOTEBOOK_BYTES:
        raise InvalidNotebook(
            f"the file has {size / 2**20:.1f} MiB, more than {MAX_NOTEBOOK_BYTES // 2**20} MiB "
            "(clear the outputs before handing in)"
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidNotebook("the file is not UTF-8 text") from None
    try:
        notebook = json.loads(text)
    except RecursionError:
        raise InvalidNotebook("the file is JSON nested too deeply to be a notebook") from None
    except json.JSONDecodeError as exc:
        raise InvalidNotebook(
            f"the file is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "was it edited outside Jupyter?"
        ) from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise InvalidNotebook("the file is JSON but not a Jupyter notebook (no list of cells)")
    if notebook.get("nbformat") != 4:
        raise InvalidNotebook(f"expected notebook format 4, got {notebook.get('nbformat')!r}")
    for cell in notebook["cells"]:
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise InvalidNotebook("a cell has no valid cell_type")
        _source_text(cell.get("source", ""))
    try:
        node = nbformat.reads(text, as_version=4)
        _, node = nbformat.validator.normalize(node, relax_add_props=True)
        nbformat.validate(node, relax_add_props=True)
    except nbformat.ValidationError as exc:
        raise InvalidNotebook(
            f"the file does not follow the notebook format: {str(exc.message)[:200]}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - nbformat's readers raise many kinds
        raise InvalidNotebook(f"nbformat cannot read the file: {str(exc)[:200]}") from None
    return node


def code_cells(notebook: dict, include_self_checks: bool = False) -> list[CodeCell]:
    """The code cells in order; cells tagged ``self-check`` are left out by default."""
    cells = []
    for index, cell in enumerate(notebook["cells"]):
        if cell.get("cell_type") != "code":
            continue
        metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        tags = metadata.get("tags", [])
        tags = tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else ()
        if SELF_CHECK_TAG in tags and not include_self_checks:
            continue
        cells.append(CodeCell(index, _source_text(cell.get("source", "")), tags))
    return cells


def forbidden_uses(cells: list[CodeCell], function: str, forbidden: tuple[str, ...]) -> list[str]:
    """Names from ``forbidden`` that the definition of ``function`` uses as an attribute
    (``lb.losses.kl_gaussian``) or imports (``from lhcbnn.losses import kl_gaussian``).

    A plain name is allowed (the student's own function may share the name). This catches
    honest shortcuts, not a determined cheat (``getattr`` with a built string passes).
    Cells that do not parse are skipped (the runner reports their syntax errors).
    """
    found: set[str] = set()
    wanted = set(forbidden)
    for cell in cells:
        try:
            tree = ast.parse(cell.code)
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.name in wanted and (node.module or "").startswith("lhcbnn"):
                        found.add(alias.name)
        for node in tree.body:
            if _binds(node, function):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Attribute) and inner.attr in wanted:
                        found.add(inner.attr)
                    if isinstance(inner, ast.ImportFrom):
                        found.update(a.name for a in inner.names if a.name in wanted)
    return sorted(found)


def _binds(node: ast.stmt, name: str) -> bool:
    """Whether a top-level statement defines ``name`` (def, or an assignment to it)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return node.name == name
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AnnAssign | ast.AugAssign):
        targets = [node.target]
    return any(isinstance(t, ast.Name) and t.id == name for t in targets)
