"""The data that crosses the sandbox boundary, and its validation.

Into the sandbox: ``job.json`` (cells, task names, argument specs) and ``inputs.npz``.
Out of it: ``result.npz``, one bundle of numeric arrays with the report as JSON bytes under
``__report__``. Everything the grader reads back is treated as hostile: sizes are capped
before parsing, the nonce must match, every field is type-checked, arrays are loaded with
``allow_pickle=False`` and must be numeric. Anything else makes the report invalid, which
scores zero.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from lhcbnn.grading.notebook import CodeCell
from lhcbnn.grading.tasks.base import Case, CaseOutcome, Tensor, TensorList

__all__ = ["InvalidReport", "write_job", "read_report", "CellReport", "Report"]

MAX_REPORT_BYTES = 2 * 2**20
MAX_OUTPUT_BYTES = 64 * 2**20
MAX_ARRAY_ELEMENTS = 1_000_000
PROTOCOL = 1
CASE_STATUSES = {"ok", "error", "timeout", "not_implemented"}
TASK_STATUSES = {"ok", "missing", "not_callable"}
CELL_STATUSES = {"ok", "error", "timeout"}


class InvalidReport(ValueError):
    """The child's report is missing, malformed or does not carry this run's nonce."""


def _encode_arg(arg: object, key: str, arrays: dict[str, np.ndarray]) -> dict:
    if isinstance(arg, Tensor):
        arrays[key] = np.asarray(arg.array, dtype=np.float64)
        return {"kind": "tensor", "key": key}
    if isinstance(arg, TensorList):
        keys = []
        for k, array in enumerate(arg.arrays):
            arrays[f"{key}_{k}"] = np.asarray(array, dtype=np.float64)
            keys.append(f"{key}_{k}")
        return {"kind": "tensor_list", "keys": keys}
    if isinstance(arg, np.ndarray):
        arrays[key] = np.asarray(arg, dtype=np.float64)
        return {"kind": "array", "key": key}
    if isinstance(arg, bool | int | float | str) or arg is None:
        return {"kind": "value", "value": arg}
    raise TypeError(f"cannot pass an argument of type {type(arg).__name__} to the sandbox")


def write_job(
    workdir: Path,
    cells: Sequence[CodeCell],
    tasks: Sequence[tuple[str, Sequence[Case], int]],
    soft_timeout: float,
    drop_to_uid: int | None,
    nproc_margin: int,
    forbidden: Mapping[str, Sequence[str]] | None = None,
    keep_read_access: bool = False,
) -> None:
    """Write ``job.json`` and ``inputs.npz`` for the runner.

    ``forbidden``: per task function, the names the runner sets tripwires on while that
    task's cases run (:attr:`~lhcbnn.grading.tasks.base.Task.forbidden`).
    ``keep_read_access``: the runner keeps read access after dropping root (no bubblewrap).
    """
    forbidden = forbidden or {}
    arrays: dict[str, np.ndarray] = {}
    job_tasks = []
    for function, cases, n_outputs in tasks:
        job_cases = []
        for c, case in enumerate(cases):
            args = [
                _encode_arg(arg, f"{function}__{c}__{a}", arrays) for a, arg in enumerate(case.args)
            ]
            job_cases.append({"args": args})
        job_tasks.append(
            {
                "function": function,
                "cases": job_cases,
                "outputs": n_outputs,
                "forbidden": list(forbidden.get(function, ())),
            }
        )
    job = {
        "protocol": PROTOCOL,
        "cells": [{"index": cell.index, "source": cell.code} for cell in cells],
        "tasks": job_tasks,
        "soft_timeout": soft_timeout,
        "drop_to_uid": drop_to_uid,
        "nproc_margin": nproc_margin,
        "keep_read_access": keep_read_access,
    }
    (workdir / "job.json").write_text(json.dumps(job))
    np.savez(workdir / "inputs.npz", **arrays)


class CellReport:
    """Status of one executed cell."""

    def __init__(self, index: int, status: str, error: str, seconds: float) -> None:
        self.index, self.status, self.error, self.seconds = index, status, error, seconds


class Report:
    """A validated report: cell statuses and, per task, one :class:`CaseOutcome` per case."""

    def __init__(
        self,
        cells: list[CellReport],
        outcomes: dict[str, list[CaseOutcome]],
        stdout_truncated: bool,
        tripped: dict[str, list[str]] | None = None,
    ) -> None:
        self.cells = cells
        self.outcomes = outcomes
        self.stdout_truncated = stdout_truncated
        # per task: "lhcbnn.losses.kl_gaussian (cell 3, line 2)" for each forbidden call seen
        self.tripped = tripped or {}

    def errors_of_type(self, *names: str) -> bool:
        texts = [c.error for c in self.cells] + [
            o.error for outs in self.outcomes.values() for o in outs
        ]
        return any(text.startswith(name) for text in texts for name in names)


def _error_text(error: object) -> str:
    if not isinstance(error, dict):
        return "an error"
    kind = str(error.get("type", "Error"))[:80]
    message = str(error.get("message", ""))[:600]
    where = str(error.get("where", ""))[:300]
    text = f"{kind}: {message}" if message else kind
    return f"{text} ({where})" if where else text


def _read_bundle(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file() or path.stat().st_size == 0:
        raise InvalidReport("no report was written")
    if path.stat().st_size > MAX_OUTPUT_BYTES:
        raise InvalidReport("the result file is too large")
    try:
        with zipfile.ZipFile(path) as archive:
            total = 0
            for info in archive.infolist():
                total += info.file_size
                if info.file_size > 8 * MAX_ARRAY_ELEMENTS + 4096 or total > 4 * MAX_OUTPUT_BYTES:
                    raise InvalidReport("the result file holds an array that is too large")
        arrays = {}
        with np.load(path, allow_pickle=False) as data:
            for key in data.files:
                array = data[key]
                if key == "__report__":
                    if array.dtype != np.uint8 or array.ndim != 1 or array.size > MAX_REPORT_BYTES:
                        raise InvalidReport("the report is not JSON bytes")
                    arrays[key] = array
                    continue
                if array.dtype.kind not in "biuf" or array.size > MAX_ARRAY_ELEMENTS:
                    raise InvalidReport(f"output {key!r} is not a numeric array")
                arrays[key] = array.astype(np.float64)
        return arrays
    except InvalidReport:
        raise
    except Exception as exc:  # noqa: BLE001 - zip/npy parsing of a hostile file
        raise InvalidReport(f"the result file cannot be read: {type(exc).__name__}") from None


def read_report(
    path: Path, nonce: str, tasks: Sequence[tuple[str, Sequence[Case], int]], n_cells: int
) -> Report:
    """Load and validate the runner's result bundle; raise :class:`InvalidReport` when
    anything is off."""
    outputs = _read_bundle(Path(path))
    if "__report__" not in outputs:
        raise InvalidReport("the result file holds no report")
    try:
        raw = json.loads(outputs.pop("__report__").tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidReport("the report is not valid JSON") from None
    if not isinstance(raw, dict) or raw.get("nonce") != nonce:
        raise InvalidReport("the report does not carry this run's token (forged or stale)")
    if raw.get("protocol") != PROTOCOL:
        raise InvalidReport("the report has the wrong protocol version")
    cells_raw = raw.get("cells")
    if not isinstance(cells_raw, list) or len(cells_raw) > n_cells:
        raise InvalidReport("the report has a bad list of cells")
    cells = []
    for entry in cells_raw:
        if not isinstance(entry, dict) or entry.get("status") not in CELL_STATUSES:
            raise InvalidReport("the report has a bad cell entry")
        seconds = entry.get("seconds", 0.0)
        cells.append(
            CellReport(
                int(entry.get("index", -1)) if isinstance(entry.get("index"), int) else -1,
                entry["status"],
                _error_text(entry.get("error")) if entry["status"] != "ok" else "",
                float(seconds) if isinstance(seconds, int | float) else 0.0,
            )
        )
    tasks_raw = raw.get("tasks")
    if not isinstance(tasks_raw, dict):
        raise InvalidReport("the report has no task results")
    outcomes: dict[str, list[CaseOutcome]] = {}
    tripped: dict[str, list[str]] = {}
    for function, cases, n_outputs in tasks:
        entry = tasks_raw.get(function)
        if not isinstance(entry, dict) or entry.get("status") not in TASK_STATUSES:
            raise InvalidReport(f"the report has no valid result for {function}")
        tripped[function] = _tripped(entry.get("tripped", []), function)
        if entry["status"] != "ok":
            outcomes[function] = [CaseOutcome(entry["status"])] * len(cases)
            continue
        case_entries = entry.get("cases")
        if not isinstance(case_entries, list) or len(case_entries) != len(cases):
            raise InvalidReport(f"the report has the wrong number of cases for {function}")
        results = []
        for c, case_entry in enumerate(case_entries):
            if not isinstance(case_entry, dict) or case_entry.get("status") not in CASE_STATUSES:
                raise InvalidReport(f"the report has a bad case entry for {function}")
            status = case_entry["status"]
            if status != "ok":
                results.append(CaseOutcome(status, error=_error_text(case_entry.get("error"))))
                continue
            if case_entry.get("n_outputs") != n_outputs:
                raise InvalidReport(f"the report has a bad output count for {function}")
            keys = [f"{function}/{c}/{k}" for k in range(n_outputs)]
            if any(key not in outputs for key in keys):
                raise InvalidReport(f"the result file lacks results of {function}")
            results.append(CaseOutcome("ok", tuple(outputs[key] for key in keys)))
        outcomes[function] = results
    truncated = bool(raw.get("stdout_truncated")) or bool(raw.get("stderr_truncated"))
    return Report(cells, outcomes, truncated, tripped)


def _tripped(entries: object, function: str) -> list[str]:
    """The forbidden calls the runner saw during one task, as short texts."""
    if not isinstance(entries, list) or len(entries) > 100:
        raise InvalidReport(f"the report has a bad list of forbidden calls for {function}")
    texts = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise InvalidReport(f"the report has a bad forbidden call for {function}")
        name = str(entry.get("function", "?"))[:120]
        where = str(entry.get("where", ""))[:120]
        texts.append(f"{name} ({where})" if where else name)
    return texts
