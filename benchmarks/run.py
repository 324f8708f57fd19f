"""Benchmarks of lhcbnn: cost, quality against truth, and the peer libraries side by side.

Usage::

    python benchmarks/run.py                 # full run (about 10-15 minutes on 2 cores)
    python benchmarks/run.py --quick         # smoke run (small sizes, under a minute)
    python benchmarks/run.py --threads 1     # another thread count (default 2)
    python benchmarks/run.py --readme        # also put the table into benchmarks/README.md
    python benchmarks/run.py --only convergence   # one part; updates its keys in results.json

Prints a table with the goals beside the figures and writes a JSON file (default
``benchmarks/results.json``; with ``--quick`` a file in the temporary folder). Every key
of :data:`KEYS` is written; a figure that cannot be measured (a peer library not
installed, no notebooks yet, ``--quick`` skipping the book) is ``null`` and
``reasons[key]`` says why. The peers are installed by ``benchmarks/requirements.txt``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_convergence  # noqa: E402
import bench_flows  # noqa: E402
import bench_notebooks  # noqa: E402
import bench_peers  # noqa: E402
import bench_quality  # noqa: E402
import bench_steps  # noqa: E402
import torch  # noqa: E402

import lhcbnn as lb  # noqa: E402

KEYS = (
    "vblinear_step_ratio",
    "peer_step_ratio_bayesian_torch",
    "peer_step_ratio_torchbnn",
    "time_to_nll_ratio_bayesian_torch",
    "time_to_nll_ratio_torchbnn",
    "sigma_stoch_rel_error",
    "pull_std",
    "sigma_pred_slope",
    "book_seconds",
    "chapter_seconds",
    "grade_seconds_per_submission",
    *(f"flow_nll_gap_{toy}_{model}" for toy in bench_flows.TOYS for model in bench_flows.MODELS),
)
"""Keys every results file holds: a number, a mapping for ``chapter_seconds``, a censored
value ``{"value": x, "censored": true, "bound": "<=" or ">="}`` for a time-to-NLL ratio
whose median run never reached the target, or null."""

NOT_INSTALLED = "{name} is not installed: pip install --no-deps -r benchmarks/requirements.txt"

GOALS = {
    "vblinear_step_ratio": "<= 2.0",
    "vblinear_step_ratio_1_thread": "<= 2.0",
    "peer_step_ratio_bayesian_torch": "(none: < 1 is faster per step)",
    "peer_step_ratio_torchbnn": "(none: < 1 is faster per step)",
    "time_to_nll_ratio_bayesian_torch": "< 1",
    "time_to_nll_ratio_torchbnn": "< 1",
    "sigma_stoch_rel_error": "<= 0.05",
    "sigma_stoch_rel_error_max": "(reported)",
    "pull_std": "1 +- 0.05",
    "sigma_pred_slope": "-0.5 +- 0.1",
    "book_seconds": "<= 600",
    "chapter_seconds": "each <= 120",
    "grade_seconds_per_submission": "<= 15",
    **{
        f"flow_nll_gap_{toy}_{model}": "(peer: reported)"
        for toy in bench_flows.TOYS
        for model in bench_flows.MODELS
    },
    "flow_nll_gap_wedge_lhcbnn": "<= 0.005, below every peer",
    "flow_nll_gap_ring_lhcbnn": "<= 0.01, below every peer",
    "flow_nll_gap_wedge_bayesian": "<= 0.02",
    "flow_nll_gap_ring_bayesian": "(reported)",
    **{
        f"flow_seconds_to_0.02_{toy}_{model}": "(reported; ours first)"
        for toy in bench_flows.TOYS
        for model in bench_flows.MODELS
    },
}

FLOW_PEERS = ("zuko_nsf", "zuko_realnvp", "freia")


def goal_met(key: str, value: object) -> bool | None:
    """Whether ``value`` meets the goal of ``key`` (None: no goal, no value, or a censored
    value on the wrong side of the goal, which can then not be judged)."""
    if value is None:
        return None
    if isinstance(value, dict) and value.get("censored"):
        bound, number = value["bound"], float(value["value"])
        met = goal_met(key, number)
        # "<= x" settles a "< 1" goal only when x meets it; ">= x" only when x misses it.
        return met if (bound == "<=" and met) or (bound == ">=" and met is False) else None
    checks = {
        "vblinear_step_ratio": lambda v: v <= 2.0,
        "vblinear_step_ratio_1_thread": lambda v: v <= 2.0,
        "time_to_nll_ratio_bayesian_torch": lambda v: v < 1.0,
        "time_to_nll_ratio_torchbnn": lambda v: v < 1.0,
        "sigma_stoch_rel_error": lambda v: v <= 0.05,
        "pull_std": lambda v: abs(v - 1.0) <= 0.05,
        "sigma_pred_slope": lambda v: abs(v + 0.5) <= 0.1,
        "book_seconds": lambda v: v <= 600.0,
        "chapter_seconds": lambda v: max(v.values()) <= 120.0,
        "grade_seconds_per_submission": lambda v: v <= 15.0,
        "flow_nll_gap_wedge_bayesian": lambda v: v <= 0.02,
    }
    if key in checks:
        return checks[key](value)
    if key in CHAPTER_GOALS:
        return CHAPTER_GOALS[key](value)
    for toy, limit in (("wedge", 0.005), ("ring", 0.01)):
        if key == f"flow_nll_gap_{toy}_lhcbnn":
            return value <= limit
    return None


def flow_goals_met(values: dict[str, object]) -> dict[str, bool | None]:
    """The flow goals that compare with the peers of the same run: ours below every peer."""
    met: dict[str, bool | None] = {}
    for toy, limit in (("wedge", 0.005), ("ring", 0.01)):
        ours = values.get(f"flow_nll_gap_{toy}_lhcbnn")
        peers = [values.get(f"flow_nll_gap_{toy}_{peer}") for peer in FLOW_PEERS]
        if ours is None:
            met[f"flow_nll_gap_{toy}_lhcbnn"] = None
            continue
        ahead = all(peer is None or ours < peer for peer in peers)
        met[f"flow_nll_gap_{toy}_lhcbnn"] = ours <= limit and ahead
    return met


def machine_info(threads: int, argv: list[str]) -> dict[str, object]:
    """CPU model, cores, versions, threads, date, command and load of this run."""
    cpu_model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=HERE,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=HERE,
            check=False,
        ).stdout.strip()
        if commit and dirty:
            commit += " (with uncommitted changes)"
    except OSError:
        commit = ""
    return {
        "cpu_model": cpu_model,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "threads_requested": threads,
        "device": str(lb.device()),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", *argv]),
        "git_commit": commit or None,
        "load_average_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "peers": {name: bench_peers.peer_version(name) for name in bench_peers.PEERS},
    }


class Results:
    """The figures, the reasons for missing ones, and the details behind them."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {key: None for key in KEYS}
        self.reasons: dict[str, str] = {}
        self.details: dict[str, object] = {}
        self.extra: dict[str, object] = {}
        self.spread: dict[str, dict[str, float]] = {}

    def set(self, key: str, value: object) -> None:
        self.values[key] = value
        self.reasons.pop(key, None)

    def missing(self, key: str, reason: str) -> None:
        self.values[key] = None
        self.reasons[key] = reason


def _log(message: str) -> None:
    print(message, flush=True)


def run_steps(results: Results, quick: bool) -> None:
    """``vblinear_step_ratio`` (headline network), the sweep, and the peer step ratios."""
    peers = [name for name in bench_peers.PEERS if bench_peers.peer_version(name)]
    rounds = 5 if quick else 31
    round_seconds = 0.02 if quick else 0.1
    networks = (bench_steps.HEADLINE,) if quick else bench_steps.SWEEP
    by_network = {}
    for network in networks:
        _log(f"  step time: {network.describe()}")
        with_peers = peers if network == bench_steps.HEADLINE else []
        by_network[network.name] = bench_steps.measure_network(
            network, rounds, with_peers, round_seconds
        )
    headline = by_network[bench_steps.HEADLINE.name]
    results.details["steps"] = {
        "headline_network": bench_steps.HEADLINE.describe(),
        "step": "forward, heteroskedastic Gaussian NLL, KL (Bayesian), backward, Adam step",
        "by_network": by_network,
    }
    results.set("vblinear_step_ratio", headline["ratios"]["ours/linear"]["median"])
    results.spread["vblinear_step_ratio"] = headline["ratios"]["ours/linear"]
    results.extra["vblinear_step_ratio_by_network"] = {
        name: entry["ratios"]["ours/linear"]["median"] for name, entry in by_network.items()
    }
    threads = torch.get_num_threads()
    if threads != 1:
        # A second method: one thread, where no OpenMP team waits for a core another
        # process holds (on a shared machine that wait dominates the two-thread spread).
        torch.set_num_threads(1)
        _log(f"  step time, 1 thread: {bench_steps.HEADLINE.describe()}")
        one_thread = bench_steps.measure_network(bench_steps.HEADLINE, rounds, (), round_seconds)
        torch.set_num_threads(threads)
        results.details["steps"]["headline_1_thread"] = one_thread
        results.extra["vblinear_step_ratio_1_thread"] = one_thread["ratios"]["ours/linear"][
            "median"
        ]
        results.spread["vblinear_step_ratio_1_thread"] = one_thread["ratios"]["ours/linear"]
    for name, key in (
        ("bayesian-torch", "peer_step_ratio_bayesian_torch"),
        ("torchbnn", "peer_step_ratio_torchbnn"),
    ):
        if name in peers:
            results.set(key, headline["ratios"][f"ours/{name}"]["median"])
            results.spread[key] = headline["ratios"][f"ours/{name}"]
        else:
            results.missing(key, NOT_INSTALLED.format(name=name))


PEER_KEYS = {"bayesian-torch": "bayesian_torch", "torchbnn": "torchbnn"}


def run_convergence(results: Results, quick: bool) -> None:
    """``time_to_nll_ratio_<peer>``: ratio of the median wall times over seeds, every peer
    in the same run, interleaved with ours; capped by steps, censored runs reported so."""
    peers = tuple(name for name in bench_peers.PEERS if bench_peers.peer_version(name))
    for name in bench_peers.PEERS:
        if name not in peers:
            results.missing(f"time_to_nll_ratio_{PEER_KEYS[name]}", NOT_INSTALLED.format(name=name))
    if not peers:
        return
    if quick:
        setup = bench_convergence.ConvergenceSetup(
            n_train=5_000, n_val=2_000, eval_every=20, n_draws=5, margin=0.5, max_steps=400
        )
        seeds: tuple[int, ...] = (0,)
    else:
        setup = bench_convergence.ConvergenceSetup(margin=0.02, max_steps=10_000)
        seeds = (0, 1, 2)
    comparison = bench_convergence.compare(setup, seeds, peers)
    results.details["time_to_nll"] = comparison
    summary = {}
    for library in ("ours", *peers):
        runs = [run for run in comparison["runs"] if run["library"] == library]
        reached = [run["reached"] for run in runs]
        summary[library] = {
            "median_seconds": bench_convergence.censored_median(
                [run["seconds"] for run in runs], reached
            ),
            "median_steps": bench_convergence.censored_median(
                [float(run["steps"]) for run in runs], reached
            ),
            "reached": sum(reached),
            "runs": len(runs),
        }
    comparison["summary"] = summary
    for peer in peers:
        key = f"time_to_nll_ratio_{PEER_KEYS[peer]}"
        ours, theirs = summary["ours"], summary[peer]
        ratio = bench_convergence.time_ratio(ours["median_seconds"], theirs["median_seconds"])
        if ratio is None:
            results.missing(key, f"neither ours nor {peer} reached the target NLL")
            continue
        results.set(key, ratio)
        steps = bench_convergence.time_ratio(ours["median_steps"], theirs["median_steps"])
        results.extra[f"time_to_nll_steps_ratio_{PEER_KEYS[peer]}"] = steps


def run_quality(results: Results, quick: bool) -> None:
    """``sigma_stoch_rel_error`` (and its max), ``pull_std``, ``sigma_pred_slope``."""
    if quick:
        setup = bench_quality.QualitySetup(
            n_train=4_000,
            n_train_sweep=(1_000, 2_000, 4_000),
            n_epochs=15,
            n_samples=20,
            n_grid=51,
            n_heldout=2_000,
        )
    else:
        setup = bench_quality.QualitySetup()
    quality = bench_quality.measure(setup)
    results.details["quality"] = quality
    results.set("sigma_stoch_rel_error", quality["sigma_stoch_rel_error"]["mean"])
    results.extra["sigma_stoch_rel_error_max"] = quality["sigma_stoch_rel_error"]["max"]
    results.set("pull_std", quality["pulls"]["std"])
    results.set("sigma_pred_slope", quality["sigma_pred_slope"])


def run_book(results: Results, quick: bool, threads: int) -> None:
    """``book_seconds`` and ``chapter_seconds`` from executing copies of the chapters."""
    if quick:
        reason = "--quick does not execute the book (it takes minutes); run without --quick"
        results.missing("book_seconds", reason)
        results.missing("chapter_seconds", reason)
        return
    total, chapters, details = bench_notebooks.execute_book(threads)
    results.details["book"] = details
    if total is None:
        results.missing("book_seconds", str(details["reason"]))
        results.missing("chapter_seconds", str(details["reason"]))
        return
    results.set("book_seconds", total)
    results.set("chapter_seconds", chapters)
    if details["failures"]:
        results.details["book"]["note"] = "some chapters failed; their time is up to the failure"


def run_grading(results: Results) -> None:
    """``grade_seconds_per_submission``: one student, one solution notebook, whole command."""
    seconds, details = bench_notebooks.grade_one_submission()
    results.details["grading"] = details
    if seconds is None:
        results.missing("grade_seconds_per_submission", str(details["reason"]))
    else:
        results.set("grade_seconds_per_submission", seconds)


def run_flows(
    results: Results,
    quick: bool,
    threads: int,
    clock: str = "wall",
    measured: list[Path] | None = None,
) -> None:
    """``flow_nll_gap_*`` and ``flow_seconds_to_0.02_*``: every flow, same budget, one run.

    With ``measured`` (output files of ``bench_flows.py``, one per toy or one for both) the
    figures are taken from those runs instead of measuring again.
    """
    seconds = 1.0 if quick else 60.0
    if measured:
        comparison: dict[str, object] = {}
        for path in measured:
            document = json.loads(Path(path).read_text())
            seconds, clock, threads = document["seconds"], document["clock"], document["threads"]
            for toy, entries in document["toys"].items():
                comparison.setdefault(toy, {}).update(entries)
            results.details.setdefault("flows_runs", []).append(
                {key: value for key, value in document.items() if key != "toys"}
            )
    else:
        n_val = 5_000 if quick else 100_000
        comparison = bench_flows.compare(seconds, log=_log, clock=clock, n_val=n_val)
    results.details["flows"] = {
        "budget_seconds": seconds,
        "clock": clock,
        "threads": threads,
        "setup": bench_flows.__doc__.split("\n\n")[1],
        "toys": comparison,
    }
    for toy, entries in comparison.items():
        for model in bench_flows.MODELS:
            entry = entries[model]
            key = f"flow_nll_gap_{toy}_{model}"
            if entry["gap"] is None:
                results.missing(key, f"{model}: {entry['status']}")
            else:
                results.set(key, entry["gap"])
            results.extra[f"flow_seconds_to_0.02_{toy}_{model}"] = entry.get("seconds_to_target")
            results.extra[f"flow_steps_{toy}_{model}"] = entry.get("steps")


CHAPTER_BENCHES = {
    "jets": "bench_jets",
    "amplitudes": "bench_amplitudes",
    "tagging": "bench_tagging",
    "reweight": "bench_reweight",
    "integration": "bench_integration",
    "unfolding": "bench_unfolding",
    "theory": "bench_theory",
}
"""The figures of chapters 5-7 and 9-11: section name -> module with ``measure(quick)`` and
``GOALS`` (and ``RUNS_IN_QUICK = True`` if its quick mode is part of a plain ``--quick`` run)."""

CHAPTER_GOALS = {
    "jet_pt_resolution_bnn": lambda v: v <= 0.030,
    "amplitude_within_1pct": lambda v: v >= 0.90,
    "toy_auc_gap_to_optimum": lambda v: v <= 0.005,
    "tagging_auc_bnn": lambda v: v >= 0.95,
    "reweight_log_w_error_good": lambda v: v <= 0.1,
    "reweight_log_w_error_no_bump": lambda v: v <= 0.1,
    "reweight_log_w_error_no_cut": lambda v: v <= 0.1,
    "reweight_chi2_ndf_no_bump": lambda v: v <= 5.0,
    "integration_gluons_var_ratio_vegas": lambda v: v < 1.0,
    "integration_camel2_var_ratio_vegas": lambda v: v < 1.0,
    "integration_camel4_var_ratio_vegas": lambda v: v < 1.0,
    "unfolding_width_ratio": lambda v: abs(v - 1.0) <= 0.05,
    "unfolding_rank_chi2_per_ndf": lambda v: v <= 3.3,
    **{f"theory_chi2_pt_a{a}": (lambda v: v <= 3.0) for a in (0, 10, 30)},
    "theory_mean_pt_a30": lambda v: abs(v) <= 0.03,
    "theory_band_width_ratio_last_bin": lambda v: 0.7 <= v <= 1.3,
}
"""Goals of the chapter figures that can be judged from the figure alone."""


def run_chapter_figures(
    results: Results, name: str, module_name: str, quick: bool, asked: bool
) -> None:
    """The figures a chapter's benchmark module measures (``measure(quick)``), with its goals.

    A plain ``--quick`` smoke run skips them (each trains the chapter's networks); ask for them
    with ``--only NAME``.
    """
    import importlib

    module = importlib.import_module(module_name)
    GOALS.update(getattr(module, "GOALS", {}))
    if quick and not asked and not getattr(module, "RUNS_IN_QUICK", False):
        results.extra[f"{name}_figures"] = f"not run in --quick; python benchmarks/{module_name}.py"
        return
    _log(f"chapter figures: {module_name}.measure(quick={quick})")
    for key, value in module.measure(quick=quick).items():
        results.set(key, value)


SECTIONS = (
    "steps",
    "convergence",
    "quality",
    "book",
    "grading",
    "flows",
    *CHAPTER_BENCHES,
)
"""Sections of a run, in order; ``--only`` picks some and updates just their keys."""


def _format(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict) and "censored" in value:
        shown = _format(float(value["value"]))
        return f"{value['bound']} {shown} (censored)" if value["censored"] else shown
    if isinstance(value, dict):
        return ", ".join(f"{name} {seconds:.0f}" for name, seconds in value.items())
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def table(results: Results, quick: bool = False) -> str:
    """Markdown table: figure, value, goal, met (not judged for a quick run)."""
    rows = ["| figure | value | goal | met |", "| --- | --- | --- | --- |"]
    flow_met = flow_goals_met({**results.values, **results.extra})
    ordered = list(KEYS)
    ordered.insert(ordered.index("pull_std"), "sigma_stoch_rel_error_max")
    ordered += [key for key in GOALS if key.startswith("flow_seconds") and key in results.extra]
    if "vblinear_step_ratio_1_thread" in results.extra:
        ordered.insert(1, "vblinear_step_ratio_1_thread")
    ordered += [key for key in results.values if key not in ordered]  # the chapters' figures
    for key in ordered:
        value = results.extra.get(key) if key not in results.values else results.values[key]
        met = goal_met(key, value)
        if key in flow_met:
            met = flow_met[key]
        mark = {True: "yes", False: "**no**", None: ""}[met]
        if quick and met is not None:
            mark = "(quick run: not judged)"
        elif met is None and isinstance(value, dict) and value.get("censored"):
            mark = "(censored: cannot be judged)"
        shown = _format(value)
        if key in results.spread:
            spread = results.spread[key]
            shown += f" (quartiles {spread['q1']:.2f}-{spread['q3']:.2f})"
        if value is None and key in results.reasons:
            shown = f"null ({results.reasons[key]})"
        rows.append(f"| `{key}` | {shown} | {GOALS.get(key, '')} | {mark} |")
    return "\n".join(rows)


def update_readme(text: str, readme: Path) -> None:
    """Replace the part of ``readme`` between the results markers with ``text``."""
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    content = readme.read_text()
    if start not in content or end not in content:
        raise ValueError(f"{readme} has no {start} ... {end} markers")
    before = content.split(start)[0]
    after = content.split(end, 1)[1]
    readme.write_text(f"{before}{start}\n{text}\n{end}{after}")


SECTION_PREFIXES = {
    "steps": ("vblinear_step_ratio", "peer_step_ratio"),
    "convergence": ("time_to_nll",),
    "quality": ("sigma_stoch", "pull_std", "sigma_pred_slope"),
    "book": ("book_seconds", "chapter_seconds"),
    "grading": ("grade_seconds",),
    "flows": ("flow_",),
    "jets": ("jet_pt_", "jet_coverage", "jet_pull", "jet_train", "jet_ensemble"),
    "amplitudes": ("amplitude_",),
    "tagging": (
        "tagging_",
        "toy_",
        "jet_auc",
        "jet_logit",
        "jet_reliability",
        "jet_sigma_pred",
        "jet_spread",
        "scan_",
    ),
    "reweight": ("reweight_",),
    "integration": ("integration_",),
    "unfolding": ("unfolding_",),
    "theory": ("theory_",),
}
"""The key prefixes each section writes, so that ``--only`` replaces just those keys."""
DETAIL_NAMES = {
    "steps": "steps",
    "convergence": "time_to_nll",
    "quality": "quality",
    "book": "book",
    "grading": "grading",
    "flows": "flows",
    "reweight": "reweight",
}


def _merge_previous(results: Results, out: Path, sections: tuple[str, ...]) -> None:
    """``--only``: keep every figure of the previous results file outside ``sections``."""
    if not out.exists():
        return
    previous = json.loads(out.read_text())
    mine = tuple(prefix for name in sections for prefix in SECTION_PREFIXES[name])
    for key in KEYS:
        if not key.startswith(mine) and key in previous:
            results.values[key] = previous[key]
            if key in previous.get("reasons", {}):
                results.reasons[key] = previous["reasons"][key]
    for key, value in previous.items():
        if (
            key in KEYS
            or key.startswith(mine)
            or key in ("goals", "goals_met", "reasons", "spread", "machine", "details", "mode")
        ):
            continue
        results.extra.setdefault(key, value)
    for key, value in previous.get("spread", {}).items():
        if not key.startswith(mine):
            results.spread.setdefault(key, value)
    for name, detail in previous.get("details", {}).items():
        if name not in (DETAIL_NAMES.get(section) for section in sections):
            results.details.setdefault(name, detail)


def _check_finite(results: Results) -> None:
    for key in KEYS:
        value = results.values[key]
        if isinstance(value, dict) and "censored" in value:
            numbers = [value["value"]]
        else:
            numbers = value.values() if isinstance(value, dict) else [value]
        if value is not None and not all(math.isfinite(float(v)) for v in numbers):
            raise FloatingPointError(f"{key} is not finite: {value!r}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, < 1 min")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--out", type=Path, default=None, help="results JSON file")
    parser.add_argument("--readme", action="store_true", help="write the table into README.md")
    parser.add_argument("--skip-book", action="store_true", help="do not execute the book")
    parser.add_argument(
        "--only",
        default=None,
        help=f"comma-separated sections ({', '.join(SECTIONS)}): run just these and update "
        "only their keys in the existing results file",
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="flows: budget in wall time (default) or this process's CPU time (shared machine)",
    )
    parser.add_argument(
        "--flows-from",
        nargs="+",
        type=Path,
        default=None,
        help="take the flows figures from these bench_flows.py output files",
    )
    args = parser.parse_args(argv)
    sections = SECTIONS if args.only is None else tuple(args.only.split(","))
    unknown = [name for name in sections if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    if args.only and args.readme:
        parser.error("--readme needs a full run (no --only)")
    out = args.out
    if out is None:  # a quick run's figures say nothing; --only updates the real file
        out = (
            Path(tempfile.gettempdir()) / "lhcbnn-benchmarks-quick.json"
            if args.quick
            else HERE / "results.json"
        )
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    raw_argv = sys.argv if argv is None else ["benchmarks/run.py", *argv]
    machine = machine_info(args.threads, raw_argv)
    mode = "quick" if args.quick else "partial" if args.only else "full"
    _log(
        f"lhcbnn benchmarks ({mode}): torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {machine['cpu_model']} x {machine['cores']} cores, "
        f"load {machine['load_average_start']}"
    )
    results = Results()
    if "steps" in sections:
        _log("step time (VBLinear vs nn.Linear and the peers)")
        run_steps(results, args.quick)
    if "convergence" in sections:
        _log("time to a held-out NLL (ours vs each peer)")
        run_convergence(results, args.quick)
    if "quality" in sections:
        _log("quality against truth on the regression toy")
        run_quality(results, args.quick)
    if "book" in sections:
        if args.skip_book:
            for key in ("book_seconds", "chapter_seconds"):
                results.missing(key, "--skip-book")
        else:
            _log("executing the book")
            run_book(results, args.quick, args.threads)
    if "grading" in sections:
        _log("grading one submission")
        run_grading(results)
    if "flows" in sections:
        _log("flows side by side (ours, Bayesian, zuko NSF and RealNVP, FrEIA)")
        run_flows(results, args.quick, args.threads, args.clock, args.flows_from)
    for name, module_name in CHAPTER_BENCHES.items():
        if name in sections:
            run_chapter_figures(results, name, module_name, args.quick, args.only is not None)
    if args.only is not None:
        _merge_previous(results, out, sections)
    _check_finite(results)
    machine["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    machine["total_seconds"] = time.perf_counter() - started
    document = {
        "mode": mode,
        **results.values,
        **results.extra,
        "goals": GOALS,
        "goals_met": {
            **{
                key: goal_met(key, results.values.get(key, results.extra.get(key))) for key in GOALS
            },
            **flow_goals_met({**results.values, **results.extra}),
        },
        "reasons": results.reasons,
        "spread": results.spread,
        "machine": machine,
        "details": results.details,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    text = table(results, args.quick)
    print()
    print(text)
    print(
        f"\nthreads {torch.get_num_threads()}, {machine['total_seconds']:.0f} s, "
        f"load {machine['load_average_start']} -> {machine['load_average_end']}; "
        f"results written to {out}"
    )
    if args.readme:
        summary = (
            f"{text}\n\nMachine: {machine['cpu_model']}, {machine['cores']} cores, torch "
            f"{machine['torch']}, {machine['torch_threads']} threads, {machine['date']}, "
            f"load average {machine['load_average_start']} at the start and "
            f"{machine['load_average_end']} at the end. Command: `{machine['command']}`."
        )
        update_readme(summary, HERE / "README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
