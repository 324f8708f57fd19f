"""lhcbnn.precision: amplitude preprocessing, Delta, pulls on A, boosted (weighted) training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lhcbnn as lb
from lhcbnn import precision
from lhcbnn.data import amplitudes


@pytest.fixture(scope="module")
def points():
    ps = amplitudes.phase_space(400, seed=3)
    return ps.momenta, amplitudes.squared_me(ps)


def test_log_invariants_are_the_nine_varying_pairs(points) -> None:
    momenta, _ = points
    features = precision.log_invariants(momenta)
    assert features.shape == (400, 9)
    s = amplitudes.invariants(momenta)
    assert np.allclose(features[:, 0], np.log(np.abs(s[:, 0, 2])))  # s_13 first: s_12 dropped
    assert np.allclose(features[:, -1], np.log(np.abs(s[:, 3, 4])))


def test_preprocessing_standardises_and_inverts(points) -> None:
    momenta, a = points
    prep = precision.AmplitudePreprocessing.fit(momenta, a)
    u, t = prep.inputs(momenta), prep.target(a)
    assert np.allclose(u.mean(0), 0, atol=1e-5) and np.allclose(u.std(0), 1, atol=1e-4)
    assert t.shape == (400, 1) and abs(t.mean()) < 1e-5
    assert np.allclose(prep.amplitude(t[:, 0].astype(np.float64)), a, rtol=1e-5)
    with pytest.raises(ValueError, match="positive"):
        prep.target(-a)


def test_relative_deviation_is_on_the_amplitude() -> None:
    delta = precision.relative_deviation(np.array([1.01, 2.0]), np.array([1.0, 2.5]))
    assert np.allclose(delta, [0.01, -0.2])
    with pytest.raises(ValueError, match="predictions"):
        precision.relative_deviation(np.ones(3), np.ones(2))


def test_precision_summary_counts() -> None:
    delta = np.array([0.0005, -0.005, 0.05, -0.2] * 25)
    summary = precision.precision_summary(delta)
    assert summary["within_0.1%"] == 0.25 and summary["within_1%"] == 0.5
    assert summary["beyond_10%"] == 0.25
    assert summary["p99"] == pytest.approx(0.2)


def test_to_amplitude_propagates_the_log_width(points) -> None:
    momenta, a = points
    prep = precision.AmplitudePreprocessing.fit(momenta, a)
    t = torch.as_tensor(prep.target(a), dtype=torch.float64)
    width = torch.full_like(t, 0.01)
    prediction = lb.Prediction(t, width, width, width * np.sqrt(2))
    amp = precision.to_amplitude(prediction, prep)
    assert np.allclose(amp.amplitude, a, rtol=1e-5)
    # sigma(A)/A = log_std * sigma in the standardised log space
    assert np.allclose(amp.sigma_stoch / amp.amplitude, 0.01 * prep.log_std)
    assert np.allclose(amp.pulls(a), 0, atol=1e-3)


def test_boost_weights() -> None:
    score = np.array([0.1, -0.5, 2.0, 40.0, 0.0])
    rms = np.sqrt(np.mean(score**2))  # 17.93
    w = precision.boost_weights(score, w_max=2.0)
    raw = np.array([1, 1, 1, min(40 / rms, 2.0), 1])
    assert raw[3] == 2.0 and np.allclose(
        precision.boost_weights(score, 10.0)[3] / precision.boost_weights(score, 10.0)[0], 40 / rms
    )
    assert np.allclose(w, raw / raw.mean())
    assert precision.boost_weights(-score, w_max=2.0) == pytest.approx(w)  # |pull|
    assert np.allclose(precision.boost_weights(np.zeros(3)), 1.0)
    with pytest.raises(ValueError, match="w_max"):
        precision.boost_weights(np.ones(3), w_max=0.5)


def _toy(n=512, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
    return x, np.sin(3 * x).astype(np.float32)


def test_unit_weights_reproduce_lb_train() -> None:
    x, y = _toy()
    models = []
    for weighted in (False, True):
        torch.manual_seed(1)
        model = lb.BayesianMLP(1, 1, hidden=(16,))
        kwargs = dict(n_epochs=3, batch_size=64, seed=5, progress=False)
        if weighted:
            precision.train_weighted(model, x, y, np.ones(len(x)), **kwargs)
        else:
            lb.train(model, x, y, **kwargs)
        models.append(model)
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        assert torch.equal(a, b)


def test_zero_weight_points_do_not_pull_the_fit() -> None:
    x, y = _toy(1024)
    corrupted = y.copy()
    bad = np.arange(len(y)) % 4 == 0
    corrupted[bad] += 3.0  # a quarter of the labels shifted far off
    weights = np.where(bad, 0.0, 1.0)
    errors = {}
    for name, w in (("weighted", weights), ("unweighted", np.ones(len(y)))):
        torch.manual_seed(0)
        model = lb.DeterministicMLP(1, 1, hidden=(32, 32))
        precision.train_weighted(
            model, x, corrupted, w, n_epochs=60, batch_size=128, lr=1e-2, seed=0, progress=False
        )
        mean = lb.predict(model, x, n_samples=1).mean.detach().cpu().numpy()
        errors[name] = float(np.abs(mean - y).mean())
    assert errors["weighted"] < 0.1 < 0.5 < errors["unweighted"]


def test_train_weighted_rejects_bad_weights() -> None:
    x, y = _toy(8)
    model = lb.BayesianMLP(1, 1, hidden=(4,))
    with pytest.raises(ValueError, match="weights for"):
        precision.train_weighted(model, x, y, np.ones(7), n_epochs=1, progress=False)
    with pytest.raises(ValueError, match=">= 0"):
        precision.train_weighted(model, x, y, -np.ones(8), n_epochs=1, progress=False)
    with pytest.raises(ValueError, match="NaN"):
        precision.train_weighted(model, x, y, np.full(8, np.nan), n_epochs=1, progress=False)


def test_exercise_6_references_agree_with_lhcbnn_precision(points) -> None:
    from lhcbnn.grading.tasks import ex06_amplitudes as ex06
    from lhcbnn.grading.tasks.base import plain

    for case in ex06.RELATIVE_DEVIATION.cases():
        args = [plain(a) for a in case.args]
        assert np.allclose(
            ex06.relative_deviation_reference(*args), precision.relative_deviation(*args)
        )
    for case in ex06.PRECISION_FIGURES.cases():
        (delta,) = [plain(a) for a in case.args]
        summary = precision.precision_summary(delta)
        assert np.allclose(
            ex06.precision_figures_reference(delta),
            (summary["within_1%"], summary["beyond_10%"], summary["p99"]),
        )
    momenta, a = points
    prep = precision.AmplitudePreprocessing.fit(momenta, a)
    rng = np.random.default_rng(0)
    t = prep.target(a).astype(np.float64) + rng.normal(0, 0.003, (len(a), 1))
    sigma = np.full_like(t, 0.004)
    prediction = lb.Prediction(*(torch.as_tensor(v) for v in (t, sigma, sigma, sigma)))
    ours = precision.to_amplitude(prediction, prep).pulls(a)
    theirs = ex06.amplitude_pulls_reference(t[:, 0], sigma[:, 0], prep.log_mean, prep.log_std, a)
    assert np.allclose(ours, theirs)


class _FixedNetwork(torch.nn.Module):
    """Returns fixed (mean, log variance) columns: a 'network' with a known answer."""

    def __init__(self, output: torch.Tensor) -> None:
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(()))
        self.output = output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output + 0.0 * self.unused

    def moments(self, output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return output[:, :1], output[:, 1:].exp()


def test_draw_pulls_and_deviations_of_a_known_network(points) -> None:
    momenta, a = points
    prep = precision.AmplitudePreprocessing.fit(momenta, a)
    t = torch.as_tensor(prep.target(a), dtype=torch.float64)
    shift, width = 0.01, 0.02  # in the standardised log space
    output = torch.cat([t + shift, torch.full_like(t, 2 * np.log(width))], dim=1)
    model = _FixedNetwork(output)
    x = np.zeros((len(a), 9))
    deviations = precision.draw_deviations(model, x, a, prep, n_samples=3)
    assert deviations.shape == (3, len(a))
    assert np.allclose(deviations, np.expm1(prep.log_std * shift), rtol=1e-3)  # float32 targets
    pulls = precision.draw_pulls(model, x, a, prep, n_samples=3)
    expected = -np.expm1(-prep.log_std * shift) / (prep.log_std * width)
    assert np.allclose(pulls, expected, rtol=1e-3)
