"""The built book in a real browser: math typeset, images loaded, no errors, navigation.

A session fixture builds the book with ``jupyter-book build -W`` into ``_build/`` (the
chapters are stored executed and ``execute_notebooks`` is off, so this takes seconds)
unless the build there is newer than every source. The pages are served from
127.0.0.1 and opened in Debian's headless Chromium through Playwright (no browser is
downloaded; ``.ci/run`` installs ``chromium`` when it is missing). Every request that
leaves the local server is blocked and reported, so the test also proves that the book
(MathJax included) works offline. Screenshots go to ``_build/screenshots/``.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / "_build"
HTML_DIR = BUILD_DIR / "html"
SCREENSHOT_DIR = BUILD_DIR / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _toc_pages() -> list[str]:
    """Pages of the book in reading order (root first), as paths without suffix."""
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections", []))

    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    walk(toc.get("chapters", []))
    return [str(Path(page).with_suffix("")) for page in pages]


def _source_files(pages: list[str]) -> list[Path]:
    files = [ROOT / "_config.yml", ROOT / "_toc.yml"]
    for page in pages:
        files.extend(ROOT.glob(page + ".*"))
    return files


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("headless Chromium is not installed (apt-get install chromium; .ci/run does it)")


@pytest.fixture(scope="session")
def pages() -> list[str]:
    return _toc_pages()


@pytest.fixture(scope="session")
def html_dir(pages: list[str]) -> Path:
    """The built HTML book; rebuilt with ``-W`` when missing or older than a source."""
    index = HTML_DIR / "index.html"
    newest_source = max(path.stat().st_mtime for path in _source_files(pages))
    outputs = [HTML_DIR / (page + ".html") for page in pages]
    stale = not index.exists() or any(
        not path.exists() or path.stat().st_mtime < newest_source for path in outputs
    )
    if stale:
        jupyter_book = Path(sys.executable).with_name("jupyter-book")
        command = [
            str(jupyter_book) if jupyter_book.exists() else "jupyter-book",
            "build",
            "-W",
            "--path-output",
            str(ROOT),
            str(ROOT),
        ]
        result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        if result.returncode != 0:
            pytest.fail(
                "jupyter-book build -W failed:\n" + result.stdout[-4000:] + result.stderr[-4000:]
            )
    return HTML_DIR


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files, no request log. The browser asks every site for ``/favicon.ico``;
    the book has none, so the server answers "no content" instead of a 404 that would
    show up as a console error unrelated to the book."""

    def do_GET(self) -> None:
        if self.path == "/favicon.ico":
            self.send_response(204)
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="session")
def server(html_dir: Path) -> Iterator[str]:
    """Serve the built book on 127.0.0.1 (a free port) for the whole session."""
    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


class _PageLog:
    """Console errors, page errors, failed and external requests seen by one page."""

    def __init__(self, base_url: str) -> None:
        self.base_host = urlparse(base_url).netloc
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.failed_requests: list[str] = []
        self.external_requests: list[str] = []

    def problems(self) -> list[str]:
        return (
            [f"console error: {message}" for message in self.console_errors]
            + [f"page error: {message}" for message in self.page_errors]
            + [f"failed request: {url}" for url in self.failed_requests]
            + [f"blocked external request: {url}" for url in self.external_requests]
        )


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    # Module scope: Playwright's sync API runs an event loop while it is open, and another
    # sync_playwright() in the same process (the JupyterLab test) refuses to start inside it.
    executable = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture()
def open_page(browser: object, server: str) -> Iterator[object]:
    """A function ``open_page(path) -> (page, log)`` in a fresh browser context."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    logs: list[_PageLog] = []
    server_host = urlparse(server).netloc

    def route(route_request: object) -> None:
        url = route_request.request.url
        parsed = urlparse(url)
        if parsed.scheme in ("data", "blob", "about") or parsed.netloc == server_host:
            route_request.continue_()
        else:
            if logs:
                logs[-1].external_requests.append(url)
            route_request.abort()

    context.route("**/*", route)

    def opener(path: str) -> tuple[object, _PageLog]:
        log = _PageLog(server)
        logs.append(log)
        page = context.new_page()
        page.on(
            "console",
            lambda message: (
                log.console_errors.append(message.text) if message.type == "error" else None
            ),
        )
        page.on("pageerror", lambda error: log.page_errors.append(str(error)))
        page.on(
            "requestfailed",
            lambda request: (
                None
                if urlparse(request.url).netloc != log.base_host
                else log.failed_requests.append(request.url)
            ),
        )
        page.on(
            "response",
            lambda response: (
                log.failed_requests.append(f"{response.url} ({response.status})")
                if response.status >= 400
                else None
            ),
        )
        page.goto(f"{server}/{path}", wait_until="load")
        return page, log

    yield opener
    context.close()


def _wait_for_mathjax(page: object) -> None:
    page.wait_for_function(
        "() => Boolean(window.MathJax && MathJax.startup && MathJax.startup.promise)",
        timeout=30_000,
    )
    page.evaluate("() => MathJax.startup.promise.then(() => true)")


# Text of the article with code (inputs, source listings) and typeset math removed: what is
# left is prose and printed outputs, where no TeX source may survive.
_PROSE_JS = """
() => {
  const article = document.querySelector('article') || document.body;
  const copy = article.cloneNode(true);
  copy.querySelectorAll('pre, code, .cell_input, mjx-container, script, style')
      .forEach(node => node.remove());
  return copy.innerText;
}
"""

_IMAGES_JS = """
() => Array.from(document.images).map(img => ({
  src: img.currentSrc || img.src, complete: img.complete, width: img.naturalWidth}))
"""


def test_every_page_renders(open_page: object, pages: list[str]) -> None:
    """Math typeset, no raw TeX, all images loaded, no errors; screenshot every page."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    problems: dict[str, list[str]] = {}
    for path in pages:
        page, log = open_page(path + ".html")
        _wait_for_mathjax(page)
        page_problems = log.problems()
        n_math = page.locator("mjx-container").count()
        if n_math == 0:
            page_problems.append("no typeset math (mjx-container) on the page")
        if page.locator("mjx-merror, .mjx-merror").count():
            page_problems.append("MathJax reported a TeX error on the page")
        prose = page.evaluate(_PROSE_JS)
        for raw in ("$$", "\\(", "\\[", "\\begin{", "\\frac", "\\sigma", "\\mu"):
            if raw in prose:
                start = prose.index(raw)
                page_problems.append(
                    f"raw TeX {raw!r} in the text: {prose[start - 40 : start + 40]!r}"
                )
        images = page.evaluate(_IMAGES_JS)
        for image in images:
            if not image["complete"] or image["width"] == 0:
                page_problems.append(f"image not loaded: {image['src']}")
        if path.startswith("book/") and not images:
            page_problems.append("a chapter page without any figure")
        page.screenshot(
            path=str(SCREENSHOT_DIR / (path.replace("/", "_") + ".png")), full_page=True
        )
        page.close()
        if page_problems:
            problems[path] = page_problems
    assert not problems, "\n".join(
        f"{path}:\n  " + "\n  ".join(messages) for path, messages in problems.items()
    )


# Display equations wider than the text column: MathJax either lets them run past the column's
# right edge or the theme gives them a scroll bar; either way the reader cannot see them whole.
_WIDE_EQUATIONS_JS = """
() => {
  const wide = [];
  const items = MathJax.startup.document.getMathItemsWithin(document.body);
  for (const item of items) {
    if (!item.display) continue;
    const container = item.typesetRoot;
    if (!container || !container.isConnected || container.offsetParent === null) continue;
    const math = container.querySelector('mjx-math') || container;
    const column = container.closest('.bd-article') || container.closest('article')
        || document.body;
    const style = getComputedStyle(column);
    const columnRect = column.getBoundingClientRect();
    const left = columnRect.left + parseFloat(style.paddingLeft);
    const right = columnRect.right - parseFloat(style.paddingRight);
    const rect = math.getBoundingClientRect();
    let scroller = container.parentElement;
    let clipped = false;
    while (scroller && scroller !== column) {
      if (scroller.scrollWidth > scroller.clientWidth + 1
          && getComputedStyle(scroller).overflowX !== 'visible') { clipped = true; break; }
      scroller = scroller.parentElement;
    }
    if (rect.width > right - left + 1 || rect.right > right + 1 || rect.left < left - 1
        || clipped) {
      const block = container.closest('[id^="equation-"], div.math');
      const number = block && block.querySelector('.eqno');
      wide.push({
        label: (block && block.id) || (number && number.innerText.trim()) || 'unlabelled',
        tex: item.math.replace(/\\s+/g, ' ').trim().slice(0, 90),
        width: Math.round(rect.width),
        column: Math.round(right - left),
      });
    }
  }
  return wide;
}
"""


@pytest.mark.parametrize("width", [1200, 800])
def test_no_equation_wider_than_its_column(
    browser: object, server: str, pages: list[str], width: int
) -> None:
    """Every display equation fits its text column at a desktop and a narrow window width."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    server_host = urlparse(server).netloc
    context.route(
        "**/*",
        lambda route: (
            route.continue_()
            if urlparse(route.request.url).netloc == server_host
            or urlparse(route.request.url).scheme in ("data", "blob", "about")
            else route.abort()
        ),
    )
    problems = []
    try:
        for path in pages:
            page = context.new_page()
            page.goto(f"{server}/{path}.html", wait_until="load")
            _wait_for_mathjax(page)
            for equation in page.evaluate(_WIDE_EQUATIONS_JS):
                problems.append(
                    f"{path}.html at {width} px: equation {equation['label']} is "
                    f"{equation['width']} px wide in a {equation['column']} px column "
                    f"(split it over more lines): {equation['tex']}"
                )
            page.close()
    finally:
        context.close()
    assert not problems, "\n".join(problems)


def test_previous_next_navigation(open_page: object, pages: list[str], server: str) -> None:
    """Clicking 'next' from the introduction visits every page in order, 'previous' back."""
    page, log = open_page(pages[0] + ".html")
    visited = [urlparse(page.url).path]
    for _ in pages[1:]:
        link = page.locator("a.right-next")
        assert link.count() == 1, f"no 'next' link on {page.url}"
        with page.expect_navigation(wait_until="load"):
            link.click()
        visited.append(urlparse(page.url).path)
    assert page.locator("a.right-next").count() == 0, (
        f"a 'next' link after the last page {page.url}"
    )
    expected = ["/" + path + ".html" for path in pages]
    assert visited == expected
    for index in range(len(pages) - 1, 0, -1):
        link = page.locator("a.left-prev")
        assert link.count() == 1, f"no 'previous' link on {page.url}"
        with page.expect_navigation(wait_until="load"):
            link.click()
        assert urlparse(page.url).path == expected[index - 1]
    assert not log.problems(), "\n".join(log.problems())
