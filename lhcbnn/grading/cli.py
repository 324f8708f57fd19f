"""Command line of the grader.

::

    python -m lhcbnn.grading [--tasks DIR] COMMAND ...   # DIR: the hidden checks (default:
                                                     # tests/grading/tasks of the repository)
    python -m lhcbnn.grading release [--solutions solutions] [--exercises exercises] [--check]
    python -m lhcbnn.grading student-dist OUT [--zip]    # exercises + package, nothing secret
    python -m lhcbnn.grading grade SUBMISSIONS --out grades.csv [--feedback DIR] [--jobs N]
                                   [--timeout S] [--memory-mb M] [--shard K/N] [--force]
                                   [--sandbox auto|bwrap|none] [--no-progress]
    python -m lhcbnn.grading merge SHARD.csv [SHARD.csv ...] --out grades.csv
    python -m lhcbnn.grading export grades.csv --format wide|moodle|canvas --out table.csv
    python -m lhcbnn.grading check NOTEBOOK.ipynb      # grade one file, print its feedback
    python -m lhcbnn.grading bench [--students 20] [--jobs 2] [--exercise NAME]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence

from lhcbnn.grading import gradebook
from lhcbnn.grading.classgrade import grade_class, parse_shard
from lhcbnn.grading.grade import grade_notebook
from lhcbnn.grading.release import annotation_diff, release, release_diff
from lhcbnn.grading.sandbox import Limits

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lhcbnn.grading",
        description="Release exercises and grade handed-in notebooks in a sandbox.",
    )
    parser.add_argument(
        "--tasks",
        default=None,
        metavar="DIR",
        help="folder of the hidden checks exNN_*.py (default: $LHCBNN_GRADING_TASKS, else "
        "tests/grading/tasks of the repository)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "release", help="write exercises/ from solutions/ (and nbgrader metadata into solutions/)"
    )
    p.add_argument("--solutions", default="solutions", help="folder of solution notebooks")
    p.add_argument("--exercises", default="exercises", help="folder to write the exercises to")
    p.add_argument(
        "--check", action="store_true", help="only report exercises that are out of date"
    )

    def limit_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--timeout", type=float, default=60.0, help="seconds per notebook")
        p.add_argument("--memory-mb", type=int, default=3072, help="address space per notebook")
        p.add_argument("--sandbox", choices=("auto", "bwrap", "none"), default="auto")

    p = sub.add_parser("grade", help="grade SUBMISSIONS/<student>/<exercise>.ipynb")
    p.add_argument("submissions", help="folder with one sub-folder per student")
    p.add_argument("--out", required=True, help="gradebook CSV (resumed if it exists)")
    p.add_argument("--feedback", default=None, help="feedback folder (default: beside --out)")
    p.add_argument("--jobs", type=int, default=2, help="notebooks graded in parallel")
    p.add_argument("--shard", default=None, help="grade part K of N, e.g. 2/8")
    p.add_argument("--force", action="store_true", help="regrade notebooks already graded")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    limit_options(p)

    p = sub.add_parser(
        "student-dist", help="write what students get: exercises and package, nothing secret"
    )
    p.add_argument("out", help="new folder to write")
    p.add_argument("--zip", action="store_true", help="also write OUT.zip")
    p.add_argument("--repo", default=".", help="the course repository (default: here)")

    p = sub.add_parser("merge", help="combine the gradebooks of several shards")
    p.add_argument("inputs", nargs="+", help="gradebook CSVs")
    p.add_argument("--out", required=True, help="merged gradebook CSV")

    p = sub.add_parser("export", help="a table for people, Moodle or Canvas from a gradebook")
    p.add_argument("gradebook", help="long-format gradebook CSV")
    p.add_argument("--format", choices=("wide", "moodle", "canvas"), default="wide")
    p.add_argument("--out", required=True, help="CSV to write")

    p = sub.add_parser("check", help="grade one notebook and print the feedback")
    p.add_argument("notebook")
    limit_options(p)

    p = sub.add_parser("bench", help="time grading of single notebooks and of a class")
    p.add_argument("--students", type=int, default=20)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--exercise", action="append", default=None, help="only these exercises")
    p.add_argument("--sandbox", choices=("auto", "bwrap", "none"), default="auto")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; problems with the arguments or files (bubblewrap missing included)
    exit with code 2 and a message; ``grade`` exits with 3 when some run was a grader error
    (those notebooks are graded again by the next run)."""
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.tasks is not None:
        from lhcbnn.grading.tasks import set_tasks_dir

        set_tasks_dir(args.tasks)
    if args.command == "release":
        if args.check:
            stale = [
                f"{args.exercises}/{name}" for name in release_diff(args.solutions, args.exercises)
            ]
            stale += [
                f"{args.solutions}/{name} (nbgrader metadata)"
                for name in annotation_diff(args.solutions)
            ]
            for name in stale:
                print(f"out of date: {name}")
            return 1 if stale else 0
        for path in release(args.solutions, args.exercises, annotate_solutions=True):
            print(f"wrote {path}")
        return 0
    if args.command == "student-dist":
        from lhcbnn.grading.distribute import write_student_distribution

        written = write_student_distribution(args.out, args.repo, make_zip=args.zip)
        print(f"wrote {args.out}" + (f" and {written}" if args.zip else ""))
        return 0
    if args.command == "merge":
        n_rows = gradebook.merge(args.inputs, args.out)
        print(f"merged {len(args.inputs)} gradebooks into {args.out}: {n_rows} rows")
        return 0
    if args.command == "export":
        from lhcbnn.grading.export import export

        n_rows = export(args.gradebook, args.format, args.out)
        print(f"wrote {args.out} ({args.format}): {n_rows} rows")
        return 0
    if args.command == "bench":
        from lhcbnn.grading.bench import time_grading

        timing = time_grading(
            args.students,
            args.jobs,
            tuple(args.exercise) if args.exercise else None,
            sandbox=args.sandbox,
        )
        print(json.dumps(timing, indent=2))
        return 0 if timing["scores_ok"] else 1
    limits = Limits(timeout=args.timeout, memory_mb=args.memory_mb)
    if args.command == "check":
        result = grade_notebook(args.notebook, limits=limits, sandbox=args.sandbox)
        print(result.feedback())
        return 0
    shard = parse_shard(args.shard) if args.shard else None
    started = time.monotonic()
    results = grade_class(
        args.submissions,
        args.out,
        feedback_dir=args.feedback,
        jobs=args.jobs,
        limits=limits,
        shard=shard,
        force=args.force,
        sandbox=args.sandbox,
        progress=not args.no_progress,
    )
    statuses = Counter(r.status for r in results)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items())) or "nothing new"
    print(
        f"graded {len(results)} notebooks in {time.monotonic() - started:.1f} s ({summary}); "
        f"gradebook: {args.out}",
        file=sys.stderr,
    )
    return 3 if statuses.get("grader_error") else 0
