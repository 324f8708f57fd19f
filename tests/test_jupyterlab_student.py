"""The student's path in a real browser: JupyterLab, an exercise, its self-check, the grader.

JupyterLab (pinned in ``requirements.txt``) is started headless on 127.0.0.1 with a random
token, its configuration, data, runtime and settings folders in a temporary folder, serving a
temporary copy of the first exercise notebook. Debian's Chromium (through Playwright, nothing
downloaded; every request that leaves the local server is blocked) then does what a student
does: run the cells down to the first task's self-check, which fails on the stub with
``NotImplementedError``; replace the task cell by the solution (typed into the editor); run
it and the self-check, which now passes; save with Ctrl+S. The saved file is then graded by
the class grader, ``python -m lhcbnn.grading grade``, and earns exactly that task's points.
"""

from __future__ import annotations

import csv
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
# Every cell in the page (no virtual scrolling), no news or update checks over the network.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("headless Chromium is not installed (apt-get install chromium; .ci/run does it)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _first_task() -> tuple[str, str, int, int, str]:
    """(exercise name, task function, index of its cell, index of its self-check cell,
    solution source of the task cell) for the first task of the first exercise."""
    from lhcbnn.grading import EXERCISES
    from lhcbnn.grading.notebook import SELF_CHECK_TAG

    name = sorted(EXERCISES)[0]
    function = EXERCISES[name].tasks[0].function
    exercise = nbformat.read(REPO / "exercises" / f"{name}.ipynb", as_version=4)
    solution = nbformat.read(REPO / "solutions" / f"{name}.ipynb", as_version=4)
    task = next(i for i, c in enumerate(exercise.cells) if c.source.startswith(f"def {function}("))
    check = next(
        i
        for i, c in enumerate(exercise.cells)
        if i > task and SELF_CHECK_TAG in c.metadata.get("tags", [])
    )
    assert solution.cells[task].source.startswith(f"def {function}(")
    return name, function, task, check, solution.cells[task].source


@pytest.fixture()
def lab(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """JupyterLab serving ``tmp_path/work``; yields (URL with token, that folder)."""
    if importlib_missing("jupyterlab"):
        pytest.skip("JupyterLab is not installed (pip install -r requirements.txt)")
    work = tmp_path / "work"
    work.mkdir()
    settings = tmp_path / "settings"
    for relative, values in LAB_SETTINGS.items():
        path = settings / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    token, port = secrets.token_hex(16), _free_port()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "IPYTHONDIR": str(tmp_path / "ipython"),
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
    }
    log = (tmp_path / "lab.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={work}",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
            "--LabApp.news_url=",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                pytest.fail("JupyterLab exited:\n" + (tmp_path / "lab.log").read_text()[-3000:])
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not answer within 120 s")
                time.sleep(0.5)
        yield f"{base}/lab/tree/{{path}}?token={token}", work
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def importlib_missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


def _wait_idle(page: object, timeout_ms: int = 180_000) -> None:
    """Wait until the kernel has started and finished every queued cell."""
    page.wait_for_selector(
        ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=timeout_ms
    )


def _prompt(cell: object) -> str:
    return cell.locator(".jp-InputPrompt").inner_text().strip()


def _wait_ran(page: object, cell: object, before: str, timeout_s: float = 180) -> None:
    """Wait until ``cell`` has run again: its prompt went from ``before`` to a new ``[n]:``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        prompt = _prompt(cell)
        if prompt != before and re.fullmatch(r"\[\d+\]:", prompt):
            _wait_idle(page)
            return
        page.wait_for_timeout(200)
    pytest.fail(f"the cell did not run within {timeout_s} s (prompt {_prompt(cell)!r})")


def _run(page: object, cell: object, is_code: bool) -> None:
    """Select ``cell`` by its prompt (command mode), press Shift+Enter, wait until it ran."""
    before = _prompt(cell) if is_code else ""
    cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Escape")
    page.keyboard.press("Shift+Enter")
    if is_code:
        _wait_ran(page, cell, before)


def _output_text(cell: object) -> str:
    outputs = cell.locator(".jp-OutputArea-output")
    return "\n".join(outputs.nth(i).inner_text() for i in range(outputs.count()))


def _read_when_complete(path: Path) -> nbformat.NotebookNode | None:
    """The notebook on disk, or None while the server is still writing it.

    Jupyter's save rewrites the file in place, so a read can meet an empty or
    half-written file; the caller polls again.
    """
    try:
        return nbformat.read(path, as_version=4)
    except (nbformat.reader.NotJSONError, ValueError, OSError):
        return None


def test_student_runs_self_check_fixes_task_saves_and_is_graded(
    lab: tuple[str, Path], tmp_path: Path
) -> None:
    url, work = lab
    name, function, task_index, check_index, solution_source = _first_task()
    shutil.copy(REPO / "exercises" / f"{name}.ipynb", work / f"{name}.ipynb")
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        host = urlparse(url).netloc

        def route(request_route: object) -> None:
            parsed = urlparse(request_route.request.url)
            if parsed.scheme in ("data", "blob", "about", "ws") or parsed.netloc == host:
                request_route.continue_()
            else:
                problems.append(f"blocked external request {request_route.request.url}")
                request_route.abort()

        context.route("**/*", route)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.goto(url.format(path=f"{name}.ipynb"), wait_until="load")
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
        _wait_idle(page)
        cells = page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell")
        n_cells = len(nbformat.read(work / f"{name}.ipynb", as_version=4).cells)
        try:  # cells are rendered progressively
            page.wait_for_function(
                "n => document.querySelectorAll("
                "'.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell').length === n",
                arg=n_cells,
                timeout=60_000,
            )
        finally:
            page.screenshot(path=str(tmp_path / "opened.png"))

        # 1. run everything down to the self-check: it fails on the stub
        check = cells.nth(check_index)
        notebook = nbformat.read(work / f"{name}.ipynb", as_version=4)
        for index in range(check_index + 1):
            _run(page, cells.nth(index), notebook.cells[index].cell_type == "code")
        failed = _output_text(check)
        assert "NotImplementedError" in failed, failed

        # 2. type the solution into the task cell, run it and the self-check
        task = cells.nth(task_index)
        before_task = _prompt(task)
        task.locator(".cm-content").click()
        page.keyboard.press("Control+A")
        page.keyboard.insert_text(solution_source)
        page.keyboard.press("Shift+Enter")  # runs the task cell (edit mode), selects the next
        _wait_ran(page, task, before_task)
        _run(page, check, True)
        passed = _output_text(check)
        assert "Error" not in passed and "Traceback" not in passed, passed
        assert "passed" in passed, passed

        # 3. save (Ctrl+S; pressed again if the first press came too early), wait for the file
        saved_file = work / f"{name}.ipynb"
        saved = notebook
        for _attempt in range(3):
            page.keyboard.press("Control+S")
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                saved = _read_when_complete(saved_file) or saved
                if saved.cells[task_index].source == solution_source:
                    break
                time.sleep(0.3)
            else:
                continue
            break
        else:
            page.screenshot(path=str(tmp_path / "not-saved.png"))
            pytest.fail(
                "the edited notebook was not saved with the typed solution; on disk:\n"
                + saved.cells[task_index].source
            )
        context.close()
        browser.close()
    assert not problems, "\n".join(problems)

    # 4. the class grader gives exactly that task's points
    submissions = tmp_path / "submissions" / "student1"
    submissions.mkdir(parents=True)
    nbformat.write(saved, submissions / f"{name}.ipynb")  # the copy read whole, not mid-write
    out = tmp_path / "grades.csv"
    graded = subprocess.run(
        [
            sys.executable,
            "-m",
            "lhcbnn.grading",
            "grade",
            str(submissions.parent),
            "--out",
            str(out),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert graded.returncode == 0, graded.stderr[-3000:]
    from lhcbnn.grading import EXERCISES

    exercise = EXERCISES[name]
    expected = exercise.task(function).points
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if rows and "task" in rows[0]:  # long format: one row per task
        points = {r["task"]: float(r["points"]) for r in rows if r["exercise"] == name}
    else:  # wide format: one column per task
        (row,) = [r for r in rows if r["exercise"] == name]
        points = {t.function: float(row[f"{name}.{t.function}"]) for t in exercise.tasks}
    assert points[function] == expected, points
    assert sum(points.values()) == expected, points
