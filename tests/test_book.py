"""The structure of the book: configuration, table of contents, executed chapters, lhcbnn.book.

The chapters themselves are re-executed by nbval (pytest collects ``book/``); these tests check
what nbval does not: that the committed notebooks carry their outputs (the book is built from
them), in execution order, with the checked cells nbval compares.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
import yaml

from lhcbnn import _sphinx, book

ROOT = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
CHAPTERS = book.chapter_notebooks(ROOT / "book")


def _toc_files() -> list[str]:
    files = [TOC["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections", []))

    for part in TOC.get("parts", []):
        walk(part.get("chapters", []))
    walk(TOC.get("chapters", []))
    return files


def test_there_are_chapters() -> None:
    assert len(CHAPTERS) >= 4
    assert [path.name[:2] for path in CHAPTERS[:4]] == ["01", "02", "03", "04"]


def test_toc_lists_every_chapter_once_and_in_order() -> None:
    files = _toc_files()
    assert TOC["format"] == "jb-book"
    assert len(files) == len(set(files)), "a page appears twice in _toc.yml"
    listed = [entry for entry in files if entry.startswith("book/")]
    assert listed == [f"book/{path.stem}" for path in CHAPTERS]
    for entry in files:
        assert list(ROOT.glob(entry + ".*")), f"_toc.yml lists {entry}, which does not exist"


def test_config_builds_from_stored_outputs_and_fails_on_errors() -> None:
    execute = CONFIG["execute"]
    assert execute["execute_notebooks"] == "off"  # executed once, by nbval, not by the build
    assert execute["raise_on_error"] is True
    assert execute.get("allow_errors", False) is False
    assert CONFIG["only_build_toc_files"] is True


def test_config_serves_mathjax_offline_and_excludes_environments() -> None:
    extensions = CONFIG["sphinx"]["extra_extensions"]
    assert "sphinx-mathjax-offline" in extensions
    assert "lhcbnn._sphinx" in extensions
    assert "mathjax_path" not in CONFIG["sphinx"].get("config", {})  # no CDN override
    patterns = set(CONFIG["exclude_patterns"])
    for needed in (".venv*", "venv*", "_build", "exercises", "solutions", "benchmarks", "tests"):
        assert needed in patterns, f"{needed} missing from exclude_patterns"


@pytest.fixture(params=CHAPTERS, ids=[path.stem for path in CHAPTERS])
def chapter(request: pytest.FixtureRequest) -> nbformat.NotebookNode:
    return nbformat.read(request.param, as_version=4)


def test_chapter_is_executed_in_order(chapter: nbformat.NotebookNode) -> None:
    code_cells = [cell for cell in chapter.cells if cell.cell_type == "code"]
    assert code_cells, "a chapter without code"
    counts = [cell.execution_count for cell in code_cells]
    assert counts == list(range(1, len(code_cells) + 1)), (
        f"execution counts {counts}: run the chapter top to bottom with "
        "`python -m lhcbnn.book execute`"
    )
    for cell in code_cells:
        for output in cell.outputs:
            assert output.output_type != "error", f"stored error output in: {cell.source[:80]}"
    assert chapter.metadata["kernelspec"]["name"] == "python3"


_FIGURE_MIMES = ("image/png", "application/papermill.record/image/png")


def test_chapter_has_checked_numbers_and_figures(chapter: nbformat.NotebookNode) -> None:
    # Trained numbers are held against their truth by lb.checks.check (bands from the measured
    # seed spread); exact numbers may also be compared as printed (# NBVAL_CHECK_OUTPUT).
    checked = [
        cell
        for cell in chapter.cells
        if cell.cell_type == "code" and cell.source.startswith("# NBVAL_CHECK_OUTPUT")
    ]
    verdicts = [
        line
        for cell in chapter.cells
        if cell.cell_type == "code" and "checks.check(" in cell.source
        for output in cell.outputs
        if output.output_type == "stream"
        for line in "".join(output.get("text", "")).splitlines()
        if line.startswith("check ")
    ]
    assert checked or verdicts, "no number is checked (lb.checks.check or # NBVAL_CHECK_OUTPUT)"
    assert all(line.endswith("PASS") for line in verdicts), "a stored check did not pass"
    for cell in checked:
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        assert re.search(r"\d", text), f"a checked cell prints no number: {cell.source[:80]}"
    images = [  # a figure shown directly, or glued for a {glue:figure} with its caption
        output
        for cell in chapter.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if any(mime in output.get("data", {}) for mime in _FIGURE_MIMES)
    ]
    assert images, "a chapter without figures"


def test_glued_figures_are_placed_with_a_name_and_a_caption(
    chapter: nbformat.NotebookNode,
) -> None:
    """Every figure glued in a code cell appears in a ``{glue:figure}`` directive with a
    ``:name:`` (for ``{numref}``) and a caption that says something."""
    glued = set()
    for cell in chapter.cells:
        if cell.cell_type == "code":
            for output in cell.outputs:
                if "application/papermill.record/image/png" in output.get("data", {}):
                    glued.add(output.get("metadata", {}).get("scrapbook", {}).get("name"))
    markdown = "\n".join(cell.source for cell in chapter.cells if cell.cell_type == "markdown")
    for name in sorted(n for n in glued if n):
        match = re.search(
            r"```\{glue:figure\} " + re.escape(name) + r"\n(.*?)```", markdown, flags=re.S
        )
        assert match, f"glued figure {name!r} is not placed with a {{glue:figure}} directive"
        body = match.group(1)
        assert re.search(r"^:name: \S+", body, flags=re.M), f"figure {name!r} has no :name:"
        caption = "\n".join(line for line in body.splitlines() if not line.startswith(":"))
        assert len(caption.split()) >= 8, f"figure {name!r} has no caption stating its message"


def test_chapter_follows_the_template(chapter: nbformat.NotebookNode) -> None:
    markdown = "\n".join(cell.source for cell in chapter.cells if cell.cell_type == "markdown")
    assert markdown.lstrip().startswith("# "), "the first cell must hold the chapter title"
    for heading in (
        "**What you will learn**",
        "## The idea",
        "## Code",
        "## Check against truth",
        "## What goes wrong",
        "## Summary",
    ):
        assert heading in markdown, f"missing section {heading!r}"
    for name in re.findall(r"exercises/(ex\d\d_\w+\.ipynb)", markdown):
        assert (ROOT / "exercises" / name).exists(), f"the chapter points to a missing {name}"


@pytest.mark.parametrize("path", CHAPTERS[1:], ids=[path.stem for path in CHAPTERS[1:]])
def test_chapters_from_two_on_point_to_their_exercise(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    markdown = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    assert re.search(rf"exercises/ex{path.name[:2]}_\w+\.ipynb", markdown)


def _tiny_notebook(path: Path, source: str) -> None:
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("x = 6 * 7"), nbformat.v4.new_code_cell(source)]
    )
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, path)


def test_book_execute_writes_outputs_in_place(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    notebook_path = tmp_path / "01_tiny.ipynb"
    _tiny_notebook(notebook_path, "print(x)")
    assert book.main(["execute", str(notebook_path), "--json", str(tmp_path / "t.json")]) == 0
    executed = nbformat.read(notebook_path, as_version=4)
    assert [cell.execution_count for cell in executed.cells] == [1, 2]
    assert executed.cells[1].outputs[0].text == "42\n"
    report = capsys.readouterr().out
    assert re.search(r"01_tiny\.ipynb\s+\d+\.\d s\s+ok", report)
    assert '"seconds"' in (tmp_path / "t.json").read_text()


def test_book_execute_reports_a_failing_notebook_and_keeps_it(tmp_path: Path) -> None:
    notebook_path = tmp_path / "02_broken.ipynb"
    _tiny_notebook(notebook_path, "raise ValueError('broken chapter')")
    before = notebook_path.read_text()
    result = book.execute_notebook(notebook_path)
    assert not result.ok
    assert "broken chapter" in result.error
    assert notebook_path.read_text() == before
    assert book.main(["execute", str(notebook_path)]) == 1


def test_book_execute_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ipynb"):
        book.execute_notebook(tmp_path / "missing.ipynb")
    with pytest.raises(ValueError, match="threads"):
        _tiny_notebook(tmp_path / "03_x.ipynb", "pass")
        book.execute_notebook(tmp_path / "03_x.ipynb", threads=0)
    with pytest.raises(ValueError, match="does not exist"):
        book.chapter_notebooks(tmp_path / "nowhere")


def test_sphinx_hook_removes_duplicate_scripts_in_place() -> None:
    def script(filename: str | None, **attributes: str) -> SimpleNamespace:
        return SimpleNamespace(filename=filename, attributes=attributes)

    inline = 'const THEBE_JS_URL = "x"'
    scripts = [
        script("a.js"),
        script(None, body=inline),
        script("", body=inline),
        script("a.js"),
        script("b.js", defer="defer"),
    ]
    context = {"script_files": scripts}
    _sphinx._deduplicate_scripts(None, "page", "page.html", context, None)
    assert context["script_files"] is scripts  # later handlers append to this list
    assert [s.filename for s in scripts] == ["a.js", None, "b.js"]
