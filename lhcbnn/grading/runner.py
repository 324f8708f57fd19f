"""The code that runs INSIDE the sandbox, in the child process, next to the student's code.

Run as ``python -s -B runner.py JOBDIR SCRATCH`` by :mod:`lhcbnn.grading.sandbox`; it
imports only the standard library, numpy and :mod:`sandbox_tripwires` beside it (torch when
a task's inputs are tensors, ``lhcbnn`` when a task forbids names), never the rest of
``lhcbnn.grading``, so the hidden checks need not be visible in the sandbox.

Protocol:

* stdin: one line, the per-run nonce; it is echoed in the result so that a file written by
  the student's code without it is rejected;
* ``JOBDIR/job.json``: the code cells to execute, the soft time limit per cell and per call,
  the uid to drop to (when started as root), and for every task the function name and its
  cases (arguments: JSON scalars or keys into ``JOBDIR/inputs.npz``, float64 arrays read with
  ``allow_pickle=False``);
* ``SCRATCH``: the student's working folder (``HOME`` too), created after dropping privileges;
* file descriptor 3: where the result goes, one ``.npz`` bundle (numeric arrays only, plus the
  report as UTF-8 JSON bytes under ``__report__``); fd 4: a progress log (cell/task started).
  Both are files outside the sandbox, size-capped by RLIMIT_FSIZE.

Steps: note ``started`` in the progress log (a run without it failed on the grader's side:
the sandbox did not start or the job folder was gone), drop privileges, cap the number of
processes, set tripwires on every name a task forbids (:mod:`sandbox_tripwires`), execute each
code cell in one fresh namespace (errors are recorded and the next cell runs; magics arrive
already rewritten by IPython's ``TransformerManager`` into ``get_ipython()`` calls, which do
nothing here), then call every task function on every case with that task's tripwires armed,
converting returns to float64 arrays, write the bundle and end with ``os._exit`` so that no
atexit hook or thread of the student's code runs afterwards. When the grader's own files fail
(disk full, folder deleted), the runner exits with :data:`GRADER_FAULT_EXIT`.

The report carries values, never points: pass/fail is decided in the grader's process, so a
forged report can at most deliver forged values, which the grader checks like any answer.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import linecache
import os
import random
import resource
import signal
import sys
import time
import traceback
import zipfile  # noqa: F401 - np.savez needs it; imported before any student code

import numpy as np

if __package__:  # imported as lhcbnn.grading.runner (tests)
    from lhcbnn.grading.sandbox_tripwires import Tripwires
else:  # run as a script, also inside bubblewrap: the file beside this one
    from sandbox_tripwires import Tripwires

PROTOCOL = 1
MAX_MESSAGE = 600
MAX_OUTPUT_ELEMENTS = 1_000_000
PYTHON_OUTPUT_CAP = 1_000_000  # characters of print() output kept per stream

_savez = np.savez
_asarray = np.asarray
_json_dumps = json.dumps
# bound now: the student's code may rebind the builtins (the except clauses below use these)
_BaseException = BaseException
_NotImplementedError = NotImplementedError
_exit = os._exit
_open = builtins.open


class SoftTimeout(BaseException):
    """Raised inside the student's code when a cell or a call exceeds its time budget."""


class CappedStream(io.TextIOBase):
    """A text stream that forwards at most ``cap`` characters, then drops the rest."""

    def __init__(self, target: io.TextIOBase, cap: int) -> None:
        self.target = target
        self.cap = cap
        self.written = 0
        self.truncated = False

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        room = self.cap - self.written
        if room > 0:
            with contextlib.suppress(Exception):
                self.target.write(text[:room])
        if len(text) > room:
            self.truncated = True
        self.written += min(len(text), max(room, 0))
        return len(text)

    def flush(self) -> None:
        with contextlib.suppress(Exception):
            self.target.flush()


def _on_alarm(signum: int, frame: object) -> None:
    raise SoftTimeout()


@contextlib.contextmanager
def time_budget(seconds: float):
    """Interrupt Python code after ``seconds`` with :class:`SoftTimeout` (SIGALRM)."""
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


PR_SET_KEEPCAPS = 8
CAP_DAC_READ_SEARCH = 2
_CAPABILITY_VERSION_3 = 0x20080522


def _keep_only_read_access() -> None:
    """After the uid change: effective = permitted = {CAP_DAC_READ_SEARCH} (capset(2)).

    Without bubblewrap the Python installation may sit where only root can read (a pyenv
    under ``/root``); this capability lets the runner read it, and nothing else of root's
    remains: no writing, no signals to other users' processes, no other capability. It is
    not inherited across ``exec`` by a non-root process."""
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [(name, ctypes.c_uint32) for name in ("effective", "permitted", "inherit")]

    libc = ctypes.CDLL(None, use_errno=True)
    data = (Data * 2)()
    data[0].effective = data[0].permitted = 1 << CAP_DAC_READ_SEARCH
    if libc.capset(ctypes.byref(Header(_CAPABILITY_VERSION_3, 0)), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def drop_privileges(uid: int | None, keep_read_access: bool = False) -> None:
    """Become ``uid`` when started as root (under bubblewrap, and without it).

    ``keep_read_access`` (no bubblewrap): keep only CAP_DAC_READ_SEARCH, see
    :func:`_keep_only_read_access`."""
    if uid is None or os.geteuid() != 0:
        return
    if keep_read_access:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if keep_read_access:
        _keep_only_read_access()
    if os.geteuid() == 0 or os.getuid() == 0:  # pragma: no cover - defensive
        raise RuntimeError("could not drop root privileges")


def count_own_tasks() -> int:
    """Threads of processes of this uid that this process can see in /proc."""
    uid = os.getuid()
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with _open(f"/proc/{entry}/status") as handle:
                status = handle.read()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        try:
            if int(fields["Uid"].split()[0]) == uid:
                total += int(fields["Threads"])
        except (KeyError, ValueError, IndexError):
            continue
    return total


def limit_processes(margin: int) -> None:
    """Cap new processes and threads of this uid at the current count plus ``margin``."""
    if margin <= 0:
        return
    limit = count_own_tasks() + margin
    soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))


class MagicsNotRun:
    """``get_ipython()`` for code whose magics the grader turned into calls (IPython's
    ``TransformerManager``, in the grader): shell escapes and magics do nothing, except
    ``%time``/``%timeit``/``%%time``/``%%capture``, whose statement runs once."""

    RUNS_ITS_CODE = ("time", "timeit", "capture")

    def __init__(self, namespace: dict) -> None:
        self.namespace = namespace
        self.user_ns = namespace

    def run_line_magic(self, name: str, line: str, *args: object) -> None:
        if name in self.RUNS_ITS_CODE and line.strip():
            exec(compile(line, "<magic>", "exec"), self.namespace)

    def run_cell_magic(self, name: str, line: str, cell: str) -> None:
        if name in self.RUNS_ITS_CODE:
            exec(compile(cell, "<magic>", "exec"), self.namespace)

    def system(self, command: str) -> None:
        return None

    def getoutput(self, command: str, *args: object) -> list[str]:
        return []

    def __getattr__(self, name: str) -> object:
        return lambda *args, **kwargs: None


def short(text: object) -> str:
    text = str(text)
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def describe_error(exc: BaseException, current: str = "") -> dict:
    """Exception type, message and the innermost line of the student's code.

    ``current`` is the label of the cell being executed: its name is left out of ``where``.
    """
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    if isinstance(exc, SyntaxError) and exc.filename and exc.filename.startswith("<cell"):
        frames = [traceback.FrameSummary(exc.filename, exc.lineno or 0, "", line=exc.text)]
    for frame in reversed(frames):
        if frame.filename.startswith("<cell"):
            cell = "" if frame.filename == current else f"{frame.filename[1:-1]}, "
            code = (frame.line or "").strip()
            where = f"{cell}line {frame.lineno}" + (f": {short(code)[:120]}" if code else "")
            break
    return {"type": type(exc).__name__, "message": short(exc), "where": where}


def load_inputs(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def build_argument(spec: object, arrays: dict[str, np.ndarray]) -> object:
    """Turn one JSON argument spec into a Python value (fresh copy for every call)."""
    if not isinstance(spec, dict):
        raise ValueError("bad argument spec")
    kind = spec.get("kind")
    if kind == "value":
        return spec["value"]
    if kind == "array":
        return arrays[spec["key"]].copy()
    if kind == "tensor":
        import torch

        return torch.from_numpy(arrays[spec["key"]].copy())
    if kind == "tensor_list":
        import torch

        return [torch.from_numpy(arrays[key].copy()) for key in spec["keys"]]
    raise ValueError(f"unknown argument kind {kind!r}")


def to_float_arrays(value: object, n_outputs: int) -> list[np.ndarray]:
    """A returned value as ``n_outputs`` float64 arrays (several: a tuple or list of them)."""
    if n_outputs == 1:
        items = [value]
    elif isinstance(value, tuple | list) and len(value) == n_outputs:
        items = list(value)
    else:
        raise TypeError(f"expected a tuple of {n_outputs} values, got {type(value).__name__}")
    arrays = []
    for item in items:
        if hasattr(item, "detach") and hasattr(item, "cpu"):  # a torch tensor
            item = item.detach().cpu().double().numpy()
        elif isinstance(item, tuple | list):  # e.g. a list of numbers or of 0-d tensors
            item = [x.detach().cpu().double().numpy() if hasattr(x, "detach") else x for x in item]
        array = _asarray(item)
        if array.dtype == object or array.dtype.kind not in "biuf":
            raise TypeError(f"returned a value of type {type(item).__name__}, not a number/array")
        if array.size > MAX_OUTPUT_ELEMENTS:
            raise ValueError(f"returned an array with {array.size} elements")
        arrays.append(np.array(array, dtype=np.float64))
    return arrays


def reseed() -> None:
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 - the student's code may use the legacy global generator
    torch = sys.modules.get("torch")
    if torch is not None:
        with contextlib.suppress(Exception):
            torch.manual_seed(0)


RESULT_FD = 3
PROGRESS_FD = 4


def note_progress(progress: io.TextIOBase, text: str) -> None:
    """One line in the progress log (which cell or task runs now), for timeout feedback."""
    with contextlib.suppress(Exception):
        progress.write(text + "\n")


def write_bundle(report: dict, outputs: dict[str, np.ndarray]) -> None:
    """Replace the content of fd 3 with the npz bundle of outputs and report."""
    buffer = io.BytesIO()
    payload = _json_dumps(report).encode("utf-8")
    _savez(buffer, __report__=np.frombuffer(payload, dtype=np.uint8), **outputs)
    data = buffer.getvalue()
    os.ftruncate(RESULT_FD, 0)
    os.lseek(RESULT_FD, 0, os.SEEK_SET)
    view = memoryview(data)
    while view:
        written = os.write(RESULT_FD, view)
        view = view[written:]


GRADER_FAULT_EXIT = 75  # EX_TEMPFAIL: the grader's side failed (disk full, folder gone)
_GRADER_FAULTS = (28, 122, 5, 2)  # ENOSPC, EDQUOT, EIO, ENOENT on the grader's own files


def grader_fault(what: str, exc: OSError) -> None:
    """Leave with the exit code that tells the grader it was not the student's fault."""
    with contextlib.suppress(Exception):
        os.write(2, f"lhcbnn-runner: grader fault: {what}: {exc}\n".encode())
    _exit(GRADER_FAULT_EXIT)


def set_tripwires(tasks: list[dict]) -> Tripwires | None:
    """Traps on every name some task forbids (imports ``lhcbnn``, which holds most of them)."""
    names = {name for task in tasks for name in task.get("forbidden", [])}
    if not names:
        return None
    with contextlib.suppress(Exception):
        import lhcbnn  # noqa: F401
    return Tripwires(names)


def run_cells(cells: list[dict], namespace: dict, soft: float, progress, report: dict) -> None:
    for cell in cells:
        label = f"<cell {cell['index'] + 1}>"  # 1-based position in the notebook
        entry: dict = {"index": cell["index"], "status": "ok"}
        note_progress(progress, f"cell {cell['index']}")
        tick = time.monotonic()
        try:
            source = cell["source"]
            linecache.cache[label] = (len(source), None, source.splitlines(True), label)
            code = compile(source, label, "exec")
            with time_budget(soft):
                exec(code, namespace)
        except SoftTimeout:
            entry.update(
                status="timeout",
                error={
                    "type": "Timeout",
                    "message": f"ran longer than {soft:.0f} s and was interrupted",
                    "where": "",
                },
            )
        except _BaseException as exc:  # SystemExit and KeyboardInterrupt too
            entry.update(status="error", error=describe_error(exc, label))
        entry["seconds"] = round(time.monotonic() - tick, 3)
        report["cells"].append(entry)


def run_task(task, namespace, arrays, soft, tripwires, outputs) -> dict:  # noqa: ANN001
    """Call the task's function on each case; returns the task's entry of the report."""
    name = task["function"]
    function = namespace.get(name)
    result: dict = {"status": "ok", "cases": []}
    if function is None:
        result["status"] = "missing"
        return result
    if not callable(function):
        result["status"] = "not_callable"
        return result
    if tripwires is not None:
        tripwires.arm(set(task.get("forbidden", [])))
    for case_index, case in enumerate(task["cases"]):
        outcome: dict = {"status": "ok"}
        tick = time.monotonic()
        try:
            args = [build_argument(spec, arrays) for spec in case["args"]]
            reseed()
            with time_budget(soft):  # the conversion may run the student's code too
                values = to_float_arrays(function(*args), int(task.get("outputs", 1)))
            for k, array in enumerate(values):
                outputs[f"{name}/{case_index}/{k}"] = array
            outcome["n_outputs"] = len(values)
        except SoftTimeout:
            outcome.update(
                status="timeout",
                error={
                    "type": "Timeout",
                    "message": f"took longer than {soft:.0f} s and was interrupted",
                    "where": "",
                },
            )
        except _NotImplementedError as exc:
            outcome.update(status="not_implemented", error=describe_error(exc))
        except _BaseException as exc:
            outcome.update(status="error", error=describe_error(exc))
        outcome["seconds"] = round(time.monotonic() - tick, 3)
        result["cases"].append(outcome)
    if tripwires is not None:
        result["tripped"] = [
            {"function": qualified, "where": where} for qualified, where in tripwires.disarm()
        ]
    return result


def main(jobdir: str, scratch: str) -> None:
    nonce = sys.stdin.readline().strip()
    sys.stdin.close()
    progress = _open(PROGRESS_FD, "w", buffering=1, closefd=False)
    try:
        with _open(os.path.join(jobdir, "job.json")) as handle:
            job = json.load(handle)
        arrays = load_inputs(os.path.join(jobdir, "inputs.npz"))
    except OSError as exc:  # the grader's job folder is gone or unreadable
        grader_fault("cannot read the job", exc)
    note_progress(progress, "started")  # from here on, a failure may be the student's
    drop_privileges(job.get("drop_to_uid"), bool(job.get("keep_read_access")))
    os.makedirs(scratch, exist_ok=True)
    os.chdir(scratch)
    limit_processes(int(job.get("nproc_margin", 0)))
    soft = float(job["soft_timeout"])
    started = time.monotonic()
    tripwires = set_tripwires(job["tasks"])

    stdout = CappedStream(sys.stdout, PYTHON_OUTPUT_CAP)
    stderr = CappedStream(sys.stderr, PYTHON_OUTPUT_CAP)
    sys.stdout, sys.stderr = stdout, stderr
    namespace: dict = {"__name__": "__main__", "__builtins__": builtins}
    namespace["display"] = lambda *objects, **kw: print(*objects)
    magics = MagicsNotRun(namespace)
    namespace["get_ipython"] = lambda: magics

    report: dict = {"protocol": PROTOCOL, "cells": [], "tasks": {}}
    run_cells(job["cells"], namespace, soft, progress, report)
    outputs: dict[str, np.ndarray] = {}
    for task in job["tasks"]:
        note_progress(progress, f"task {task['function']}")
        report["tasks"][task["function"]] = run_task(
            task, namespace, arrays, soft, tripwires, outputs
        )

    report["stdout_truncated"] = stdout.truncated
    report["stderr_truncated"] = stderr.truncated
    report["seconds"] = round(time.monotonic() - started, 3)
    report["nonce"] = nonce
    signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        write_bundle(report, outputs)
    except OSError as exc:
        if exc.errno in _GRADER_FAULTS:
            grader_fault("cannot write the result", exc)
        raise
    with contextlib.suppress(Exception):
        sys.__stdout__.flush()
        sys.__stderr__.flush()
    _exit(0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
