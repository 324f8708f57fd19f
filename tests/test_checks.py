"""The chapters' check helper and the independent-trainings study hold what they promise."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import lhcbnn as lb
from lhcbnn.checks import CheckFailed, check


def test_a_value_inside_the_band_passes_and_prints_one_line(capsys) -> None:  # noqa: ANN001
    result = check("pull width", np.float32(1.04), truth=1.0, atol=0.1, spread=0.01)
    line = capsys.readouterr().out.strip()
    assert result.passed and (result.low, result.high) == (0.9, 1.1)
    assert line.count("\n") == 0
    for piece in ("pull width", "1.04", "truth 1", "[0.9, 1.1]", "seed spread 0.01", "PASS"):
        assert piece in line


@pytest.mark.parametrize("value", [1.2, 0.85, math.nan, math.inf])
def test_a_value_outside_the_band_fails_naming_the_quantity(value: float) -> None:
    with pytest.raises(CheckFailed, match="pull width"):
        check("pull width", value, truth=1.0, atol=0.1, quiet=True)


def test_bands_relative_and_one_sided() -> None:
    assert check("x", torch.tensor(105.0), truth=100.0, rtol=0.05, quiet=True).passed
    with pytest.raises(CheckFailed):
        check("x", 106.0, truth=100.0, rtol=0.05, quiet=True)
    assert check("y", 0.03, band=(None, 0.05), quiet=True).high == 0.05
    with pytest.raises(CheckFailed):
        check("y", 0.07, band=(None, 0.05), quiet=True)
    assert check("z", np.array([2.0]), band=(1.0, None), quiet=True).passed


def test_a_band_inside_four_measured_spreads_is_refused() -> None:
    with pytest.raises(ValueError, match="narrower than 4"):
        check("AUC", 0.84, truth=0.8405, atol=0.005, spread=0.002, quiet=True)
    assert check("AUC", 0.84, truth=0.8405, atol=0.005, spread=0.001, quiet=True).passed


@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # neither a tolerance nor a band
        {"truth": 1.0},  # a truth without a tolerance
        {"truth": 1.0, "atol": 0.1, "band": (0, 2)},
        {"band": (2.0, 1.0)},
        {"band": (None, None)},
        {"truth": math.nan, "atol": 0.1},
        {"truth": 1.0, "atol": 0.1, "spread": -1.0},
    ],
)
def test_ill_defined_checks_are_errors(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        check("q", 1.0, quiet=True, **kwargs)


def test_non_scalar_values_are_type_errors() -> None:
    for bad in (np.ones(3), "1.0", True, None):
        with pytest.raises(TypeError):
            check("q", bad, truth=1.0, atol=1.0, quiet=True)


# ------------------------------------------------------------------ independent trainings
def _gaussian_study(claimed: float, seed: int = 0, k: int = 200, n: int = 50):
    """K 'networks' whose means scatter by 0.1 around the truth, each claiming `claimed`."""
    rng = np.random.default_rng(seed)
    truth = np.linspace(0, 1, n)
    noise = rng.normal(0, 0.1, (k, n))

    def train_and_predict(s: int):  # noqa: ANN202
        return truth + noise[s], np.full(n, claimed)

    return lb.validation.independent_trainings(train_and_predict, k, truth=truth)


def test_a_calibrated_sigma_pred_covers_68_and_95_percent() -> None:
    study = _gaussian_study(claimed=0.1)
    row = study.summary()
    assert abs(row["spread"] - 0.1) < 0.005 and abs(row["ratio"] - 1) < 0.05
    assert abs(row["coverage_1"] - 0.683) < 0.02 and abs(row["coverage_2"] - 0.954) < 0.01
    assert abs(row["rms_error"] - 0.1) < 0.005


def test_an_overstated_sigma_pred_is_seen_as_conservative() -> None:
    row = _gaussian_study(claimed=0.2).summary()
    assert abs(row["ratio"] - 2) < 0.1 and row["coverage_1"] > 0.93


def test_a_bias_shows_in_the_error_not_in_the_spread() -> None:
    base = _gaussian_study(claimed=0.1)
    biased = lb.validation.IndependentTrainings(base.means + 0.5, base.sigma_pred, base.truth)
    assert np.allclose(biased.spread, base.spread)
    assert biased.summary()["rms_error"] > 0.5 and biased.coverage(2.0) < 0.05
    assert (
        abs(biased.coverage(1.0, against="others") - base.coverage(1.0, against="others")) < 1e-12
    )
    region = np.arange(base.means.shape[1]) < 10
    assert "independent trainings" in biased.table({"all": None, "left": region})


def test_independent_trainings_rejects_bad_predictions() -> None:
    good = (np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="at least 2"):
        lb.validation.independent_trainings(lambda s: good, 1)
    with pytest.raises(ValueError, match="distinct"):
        lb.validation.independent_trainings(lambda s: good, [1, 1])
    with pytest.raises(ValueError, match="NaN"):
        lb.validation.independent_trainings(lambda s: (np.full(3, np.nan), np.ones(3)), 2)
    with pytest.raises(ValueError, match="negative"):
        lb.validation.independent_trainings(lambda s: (np.zeros(3), -np.ones(3)), 2)
    with pytest.raises(ValueError, match="points"):
        lb.validation.independent_trainings(lambda s: (np.zeros(3 + s), np.ones(3 + s)), 2)
    with pytest.raises(ValueError, match="truth"):
        lb.validation.independent_trainings(lambda s: good, 2, truth=np.zeros(4))
