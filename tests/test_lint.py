"""ruff keeps the package, tests and benchmarks clean."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _ruff() -> list[str]:
    # ruff of this interpreter's environment (requirements.txt): a missing ruff fails the
    # test instead of skipping it.
    return [sys.executable, "-m", "ruff"]


def test_ruff_check() -> None:
    result = subprocess.run(
        [*_ruff(), "check", "lhcbnn", "tests", "benchmarks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = subprocess.run(
        [*_ruff(), "format", "--check", "lhcbnn", "tests", "benchmarks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
