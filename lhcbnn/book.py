"""Re-execute the chapter notebooks of the book in place and report how long each took.

Usage::

    python -m lhcbnn.book execute                      # every book/NN_*.ipynb
    python -m lhcbnn.book execute book/02_elbo.ipynb   # some chapters
    python -m lhcbnn.book execute --threads 2 --json times.json

The Sphinx extension of the book's HTML build lives apart, in :mod:`lhcbnn._sphinx`.

The chapters are committed with their outputs: the book is built from them
(``execute_notebooks: off`` in ``_config.yml``) and pytest checks them once with nbval.
This tool is how those outputs are produced. Each notebook runs in a fresh kernel, from
the notebook's own folder, cells in order; the executed notebook replaces the file only
when every cell succeeded. ``--threads N`` sets ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS``
for the kernel, which PyTorch reads at start-up (the benchmark runs use 2).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["ExecutionResult", "chapter_notebooks", "execute_notebook", "main"]

BOOK_DIR = Path(__file__).resolve().parent.parent / "book"


@dataclass(frozen=True)
class ExecutionResult:
    """What executing one notebook gave: its path, wall time in seconds, success, error."""

    notebook: str
    seconds: float
    ok: bool
    error: str = ""


def chapter_notebooks(book_dir: Path | str = BOOK_DIR) -> list[Path]:
    """The chapter notebooks ``NN_*.ipynb`` of ``book_dir``, sorted by chapter number."""
    folder = Path(book_dir)
    if not folder.is_dir():
        raise ValueError(f"book folder {folder} does not exist")
    return sorted(
        path for path in folder.glob("[0-9][0-9]_*.ipynb") if ".ipynb_checkpoints" not in path.parts
    )


def execute_notebook(
    path: Path | str,
    timeout: int = 600,
    kernel_name: str = "python3",
    threads: int | None = None,
) -> ExecutionResult:
    """Execute one notebook with nbclient in a fresh kernel and write it back in place.

    Args:
        path: the ``.ipynb`` file.
        timeout: seconds allowed per cell.
        kernel_name: the Jupyter kernel to start.
        threads: if given, ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` for the kernel.

    Returns:
        An :class:`ExecutionResult`; on a failing cell the file is left unchanged and
        ``ok`` is False with the error message.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    notebook_path = Path(path)
    if notebook_path.suffix != ".ipynb" or not notebook_path.is_file():
        raise ValueError(f"{notebook_path} is not an existing .ipynb file")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    notebook = nbformat.read(notebook_path, as_version=4)
    env_backup = {name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        os.environ["MKL_NUM_THREADS"] = str(threads)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(notebook_path.parent.resolve())}},
        record_timing=False,
    )
    start = time.perf_counter()
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
        seconds = time.perf_counter() - start
        message = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip().splitlines()  # no colours
        return ExecutionResult(str(notebook_path), seconds, False, message[-1] if message else "")
    finally:
        for name, value in env_backup.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    seconds = time.perf_counter() - start
    nbformat.write(notebook, notebook_path)
    return ExecutionResult(str(notebook_path), seconds, True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lhcbnn.book", description="Tools for the chapter notebooks."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    execute = commands.add_parser(
        "execute", help="re-execute chapter notebooks in place and report seconds per chapter"
    )
    execute.add_argument(
        "notebooks", nargs="*", type=Path, help="notebooks to run (default: all of book/)"
    )
    execute.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell")
    execute.add_argument("--kernel", default="python3", help="Jupyter kernel name")
    execute.add_argument("--threads", type=int, default=None, help="OMP/MKL threads for the kernel")
    execute.add_argument("--json", type=Path, default=None, help="also write the times here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (1 if a notebook failed)."""
    args = _parser().parse_args(argv)
    notebooks = list(args.notebooks) or chapter_notebooks()
    if not notebooks:
        print("no notebooks to execute", file=sys.stderr)
        return 1
    results: list[ExecutionResult] = []
    for notebook in notebooks:
        result = execute_notebook(notebook, args.timeout, args.kernel, args.threads)
        status = "ok" if result.ok else f"FAILED: {result.error}"
        print(f"{Path(result.notebook).name:40s} {result.seconds:8.1f} s  {status}", flush=True)
        results.append(result)
    total = sum(result.seconds for result in results)
    print(f"{'total':40s} {total:8.1f} s")
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {"threads": args.threads, "results": [asdict(result) for result in results]},
                indent=2,
            )
            + "\n"
        )
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
