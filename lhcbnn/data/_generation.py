"""What the two Pythia samples share: argument checks, silenced C++ banners, chunked runs.

Both generators (:mod:`lhcbnn.data.jets`, :mod:`lhcbnn.data.zjets`) split a run into chunks
of events, each with its own Pythia seed, and run the chunks inline or in worker processes,
so the output depends on the run seed and the chunk size but never on the number of
workers.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np

__all__ = ["check_count", "require_pythia_and_fastjet", "run_chunks", "stdout_silenced"]


def check_count(name: str, value: int) -> int:
    """``value`` as a Python int >= 0; TypeError for a non-integer, ValueError below 0."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


@contextlib.contextmanager
def stdout_silenced() -> Iterator[None]:
    """Send file descriptor 1 to /dev/null: Pythia and FastJet print banners from C++."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def require_pythia_and_fastjet(what: str) -> None:
    """Raise ImportError with the install hint when pythia8mc or fastjet is missing."""
    try:
        import fastjet  # noqa: F401
        import pythia8mc  # noqa: F401
    except ImportError as error:
        raise ImportError(
            f"the {what} needs pythia8mc and fastjet: pip install 'lhcbnn[physics]' "
            "(Linux or macOS)"
        ) from error


def run_chunks(
    function: Callable[[tuple], dict],
    tasks: Sequence[tuple],
    n_workers: int,
    on_result: Callable[[dict], int],
    *,
    total: int,
    unit: str,
    desc: str,
    progress: bool,
) -> float:
    """Run ``function`` on every task, inline (``n_workers == 1``) or in worker processes.

    ``on_result(result)`` is called in the parent as each chunk finishes (in completion
    order: the caller sorts by chunk index) and returns how many units to add to the tqdm
    bar of ``total`` units. Workers are forked on Linux (no re-import of the caller's
    script) and spawned elsewhere, where a calling script needs the usual
    ``if __name__ == "__main__":`` guard; a crashed worker raises BrokenProcessPool instead
    of hanging.

    Returns:
        The wall seconds of the run.
    """
    from tqdm import tqdm

    start = time.perf_counter()
    with tqdm(total=total, unit=unit, disable=not progress, desc=desc) as bar:
        if n_workers == 1:
            for result in map(function, tasks):
                bar.update(on_result(result))
        else:
            method = "fork" if sys.platform.startswith("linux") else "spawn"
            context = multiprocessing.get_context(method)
            with ProcessPoolExecutor(max_workers=n_workers, mp_context=context) as pool:
                futures = [pool.submit(function, task) for task in tasks]
                for future in as_completed(futures):
                    bar.update(on_result(future.result()))
    return time.perf_counter() - start
