"""Smoke test of the benchmarks: ``python benchmarks/run.py --quick`` writes every key.

The quick run uses small sizes, so its figures say nothing about the goals; this test only
checks that every part runs and writes a finite number, or null with a reason where the
figure cannot be measured here: a peer library that is not installed (CI installs only
requirements.txt; the peers come from benchmarks/requirements.txt), the book (never
executed by --quick), or a grader without solution notebooks.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

ALWAYS_MEASURED = (
    "vblinear_step_ratio",
    "sigma_stoch_rel_error",
    "pull_std",
    "sigma_pred_slope",
    "reweight_log_w_error_good",
    "reweight_log_w_error_no_bump",
    "reweight_chi2_ndf_no_bump",
)
MAY_BE_NULL = (
    "peer_step_ratio_bayesian_torch",
    "peer_step_ratio_torchbnn",
    "time_to_nll_ratio_bayesian_torch",
    "time_to_nll_ratio_torchbnn",
    "book_seconds",
    "chapter_seconds",
    "grade_seconds_per_submission",
)


def _is_finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_censored_number(value: object) -> bool:
    """``{"value": x, "censored": true, "bound": "<=" or ">="}``: a run capped by steps."""
    return (
        isinstance(value, dict)
        and value.get("censored") is True
        and value.get("bound") in ("<=", ">=")
        and _is_finite_number(value.get("value"))
    )


@pytest.mark.slow
def test_quick_benchmark_writes_every_key(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--quick", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,  # a guard against a hang, not a speed test (the quick run is ~2 min)
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results["mode"] == "quick"
    for key in ALWAYS_MEASURED:
        assert _is_finite_number(results[key]), f"{key} = {results[key]!r}"
    for key in MAY_BE_NULL:
        value = results[key]
        if value is None:
            assert results["reasons"].get(key), f"{key} is null without a reason"
        elif key == "chapter_seconds":
            assert value and all(_is_finite_number(v) for v in value.values()), value
        elif key.startswith("time_to_nll_ratio"):
            assert _is_finite_number(value) or _is_censored_number(value), f"{key} = {value!r}"
        else:
            assert _is_finite_number(value), f"{key} = {value!r}"
    # A peer that is installed must be measured; one that is not must say so.
    for key, peer in (
        ("peer_step_ratio_bayesian_torch", "bayesian-torch"),
        ("peer_step_ratio_torchbnn", "torchbnn"),
        ("time_to_nll_ratio_torchbnn", "torchbnn"),
    ):
        installed = results["machine"]["peers"][peer] is not None
        assert (results[key] is not None) == installed, (key, results["reasons"].get(key))
    machine = results["machine"]
    for field in ("cpu_model", "cores", "torch", "torch_threads", "date", "command"):
        assert machine[field], field
    assert machine["torch_threads"] == 2
    assert "| `vblinear_step_ratio` |" in completed.stdout  # the table is printed
    # chapter 10's section runs in its quick mode (a tiny training) in every smoke run
    for key in ("theory_chi2_pt_a0", "theory_chi2_pt_a30", "theory_band_width_ratio_last_bin"):
        assert _is_finite_number(results[key]), f"{key} = {results.get(key)!r}"


def test_every_section_names_the_keys_it_replaces() -> None:
    """``--only NAME`` replaces just NAME's keys in results.json: every section declares them."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        import run
    finally:
        sys.path.pop(0)
    assert set(run.SECTIONS) == set(run.SECTION_PREFIXES)
    for name, prefixes in run.SECTION_PREFIXES.items():
        assert prefixes and all(isinstance(p, str) and p for p in prefixes), name
