"""The grader's own test: solutions score full marks, unmodified exercises zero, and a
plausible wrong answer to any task loses exactly that task's points (with a targeted hint).

Also: the hidden numpy references agree with the lhcbnn implementations, and every known
mistake differs from the truth on some case (otherwise its check could not fail).
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

import lhcbnn as lb
from lhcbnn import calibration
from lhcbnn.grading import EXERCISES
from lhcbnn.grading.classgrade import grade_class
from lhcbnn.grading.tasks.base import _as_tuple, _close, plain

REPO = Path(__file__).resolve().parents[1]
NAMES = sorted(EXERCISES)

# exercise -> (function, wrong definition, text the feedback must contain)
WRONG_ANSWERS = {
    "ex02_elbo": [
        (
            "kl_gaussian",
            """
            def kl_gaussian(mu_q, sigma_q, mu_p, sigma_p):
                return (sigma_q**2 - sigma_p**2 + (mu_q - mu_p) ** 2) / (2 * sigma_p**2)
        """,
            "log(sigma_p / sigma_q) term is missing",
        ),
        (
            "kl_gaussian",
            """
            def kl_gaussian(mu_q, sigma_q, mu_p, sigma_p):
                var_p = torch.as_tensor(sigma_p, dtype=sigma_q.dtype)
                quadratic = (sigma_q + (mu_q - mu_p) ** 2) / (2 * var_p)
                return 0.5 * torch.log(var_p / sigma_q) + quadratic - 0.5
        """,
            "standard deviation, not a variance",
        ),
        (
            "mc_elbo",
            """
            def mc_elbo(x, y, noise_sigma, prior_sigma, mu, sigma, eps):
                theta = mu + sigma * eps
                residual = y - theta @ x.T
                n = x.shape[0]
                chi2 = (residual**2).sum(1) / noise_sigma**2
                log_likelihood = -0.5 * n * math.log(2 * math.pi * noise_sigma**2) - 0.5 * chi2
                return log_likelihood.mean() - kl_gaussian(mu, sigma, 0.0, prior_sigma).sum() / n
        """,
            "divided by the number of points",
        ),
        (
            "mc_elbo",
            """
            def mc_elbo(x, y, noise_sigma, prior_sigma, mu, sigma, eps):
                theta = mu + sigma * eps
                residual = y - theta @ x.T
                log_likelihood = -0.5 * (residual**2).sum(1) / noise_sigma**2
                return log_likelihood.mean() - kl_gaussian(mu, sigma, 0.0, prior_sigma).sum()
        """,
            "normalisation",
        ),
        (
            "mc_elbo",
            """
            def mc_elbo(x, y, noise_sigma, prior_sigma, mu, sigma, eps):
                theta = mu + sigma * eps
                residual = y - theta @ x.T
                n = x.shape[0]
                chi2 = (residual**2).sum(1) / noise_sigma**2
                log_likelihood = -0.5 * n * math.log(noise_sigma**2) - 0.5 * chi2
                return log_likelihood.mean() - kl_gaussian(mu, sigma, 0.0, prior_sigma).sum()
        """,
            "log(2 pi)",
        ),
        (
            "mc_elbo",
            """
            def mc_elbo(x, y, noise_sigma, prior_sigma, mu, sigma, eps):
                n = x.shape[0]
                residual = y - x @ mu
                spread = (sigma**2 * (x**2).sum(0)).sum()
                chi2 = (residual @ residual + spread) / noise_sigma**2
                log_likelihood = -0.5 * n * math.log(2 * math.pi * noise_sigma**2) - 0.5 * chi2
                return log_likelihood - kl_gaussian(mu, sigma, 0.0, prior_sigma).sum()
        """,
            "closed-form",
        ),
        (
            "kl_to_posterior",
            """
            def kl_to_posterior(mu, sigma, posterior_mean, posterior_cov):
                precision = torch.linalg.inv(posterior_cov)
                delta = posterior_mean - mu
                trace = (precision.diagonal() * sigma**2).sum()
                return 0.5 * (trace + delta @ precision @ delta - mu.shape[0])
        """,
            "log-determinant",
        ),
        (
            "kl_to_posterior",
            """
            def kl_to_posterior(mu, sigma, posterior_mean, posterior_cov):
                precision = torch.linalg.inv(posterior_cov)
                delta = posterior_mean - mu
                trace = (posterior_cov.diagonal() * sigma**2).sum()
                log_dets = torch.logdet(posterior_cov) - torch.log(sigma**2).sum()
                return 0.5 * (trace + delta @ precision @ delta - mu.shape[0] + log_dets)
        """,
            "the trace needs the precision",
        ),
        (
            "kl_to_posterior",
            """
            def kl_to_posterior(mu, sigma, posterior_mean, posterior_cov):
                precision = torch.linalg.inv(posterior_cov)
                delta = posterior_mean - mu
                trace = (precision.diagonal() * sigma**2).sum()
                log_dets = torch.log(sigma**2).sum() - torch.logdet(posterior_cov)
                return 0.5 * (trace + delta @ precision @ delta - mu.shape[0] + log_dets)
        """,
            "wrong sign",
        ),
        (
            "kl_to_posterior",
            """
            def kl_to_posterior(mu, sigma, posterior_mean, posterior_cov):
                precision = torch.linalg.inv(posterior_cov)
                delta = posterior_mean - mu
                trace = (precision.diagonal() * sigma**2).sum()
                log_dets = torch.logdet(posterior_cov) - torch.log(sigma**2).sum()
                return trace + delta @ precision @ delta - mu.shape[0] + log_dets
        """,
            "factor 1/2",
        ),
        (
            "mean_field_sigma",
            """
            def mean_field_sigma(posterior_precision):
                return torch.linalg.inv(posterior_precision).diagonal().sqrt()
        """,
            "marginal widths",
        ),
        (
            "train_mean_field",
            """
            def train_mean_field(x, y, noise_sigma, prior_sigma, seed):
                model = lb.BayesianMLP(x.shape[1], 1, hidden=(), prior_sigma=prior_sigma)
                lb.train(model, x, y[:, None], n_epochs=1000, batch_size=x.shape[0], lr=0.05,
                         lr_schedule="cosine", seed=seed, progress=False)
                return lb.conjugate.layer_posterior(model.net[0])
        """,
            "unit noise",
        ),
        (
            "train_mean_field",
            """
            def train_mean_field(x, y, noise_sigma, prior_sigma, seed):
                model = lb.BayesianMLP(x.shape[1], 1, hidden=(), prior_sigma=prior_sigma)
                log_var = 2 * math.log(noise_sigma)

                def nll(output, target):
                    variance = torch.full_like(output, log_var)
                    return lb.losses.gaussian_nll(output, variance, target).sum(-1)

                lb.train(model, x, y[:, None], n_epochs=1000, batch_size=x.shape[0], lr=0.05,
                         lr_schedule="cosine", nll=nll, seed=seed, progress=False)
                mu, sigma = lb.conjugate.layer_posterior(model.net[0])
                return mu, sigma**2
        """,
            "not the variances",
        ),
    ],
    "ex03_limits": [
        (
            "l2_coefficient",
            """
            def l2_coefficient(prior_sigma, n_train):
                return 1.0 / (2.0 * prior_sigma**2)
        """,
            "1/N",
        ),
        (
            "kl_gradients",
            """
            def kl_gradients(mu_q, sigma_q, mu_p, sigma_p):
                mu_p = torch.as_tensor(mu_p, dtype=mu_q.dtype)
                sigma_p = torch.as_tensor(sigma_p, dtype=mu_q.dtype)
                return (mu_q - mu_p) / sigma_p**2, sigma_q / sigma_p**2 + 0 * mu_q
        """,
            "-1/sigma_q",
        ),
        (
            "l2_regularised_loss",
            """
            def l2_regularised_loss(nll_mean, weights, prior_sigma, n_train):
                return nll_mean + (weights[0] ** 2).sum() / (2 * prior_sigma**2 * n_train)
        """,
            "biases included",
        ),
        (
            "mc_dropout_predictive",
            """
            def mc_dropout_predictive(x, w1, b1, w2, b2, masks, p):
                hidden = torch.relu(x @ w1.T + b1)
                draws = (hidden[None] * masks[:, None, :] / (1 - p)) @ w2.T + b2
                return draws.mean(0), draws.std(0)
        """,
            "unbiased",
        ),
        (
            "sigma_pred_of_line",
            """
            def sigma_pred_of_line(x, y, prior_sigma, x_eval, seed):
                model = lb.BayesianMLP(1, 1, hidden=(), prior_sigma=prior_sigma).double()
                return lb.predict(model, x_eval.reshape(-1, 1), n_samples=200).sigma_pred[:, 0]
        """,
            "untrained",
        ),
    ],
    "ex04_heteroskedastic": [
        (
            "gaussian_nll",
            """
            def gaussian_nll(mean, log_var, target):
                return 0.5 * (math.log(2 * math.pi) + (target - mean) ** 2 / torch.exp(log_var))
        """,
            "log-variance term is missing",
        ),
        (
            "sigma_stoch_from_samples",
            """
            def sigma_stoch_from_samples(log_vars):
                return torch.exp(0.5 * log_vars).mean(0)
        """,
            "average the variances",
        ),
        (
            "sigma_pred_from_samples",
            """
            def sigma_pred_from_samples(means):
                return means.std(0)
        """,
            "unbiased",
        ),
        (
            "compute_pulls",
            """
            def compute_pulls(mean, sigma_stoch, sigma_pred, truth):
                return (mean - truth) / (sigma_stoch + sigma_pred)
        """,
            "quadrature",
        ),
        (
            "learn_noise",
            """
            def learn_noise(x, y, x_eval, seed):
                return torch.full((len(x_eval),), 0.3, dtype=torch.float64)
        """,
            "constant width",
        ),
    ],
    "ex06_amplitudes": [
        (
            "relative_deviation",
            """
            def relative_deviation(a_pred, a_true):
                return (torch.log(a_pred) - torch.log(a_true)) / torch.log(a_true)
        """,
            "not of log A",
        ),
        (
            "precision_figures",
            """
            def precision_figures(delta):
                magnitude = delta.abs()
                within = (magnitude < 0.01).double().mean()
                beyond = (magnitude > 0.1).double().mean()
                return within, beyond, magnitude.max()
        """,
            "quantile 0.99",
        ),
        (
            "amplitude_pulls",
            """
            def amplitude_pulls(mean, sigma, log_mean, log_std, a_true):
                a_pred = torch.exp(log_mean + log_std * mean)
                return (a_pred - a_true) / (a_pred * sigma)
        """,
            "log_std times",
        ),
        (
            "weighted_nll",
            """
            def weighted_nll(mean, log_var, target, weights):
                nll = 0.5 * (math.log(2 * math.pi) + log_var + (target - mean) ** 2 / log_var.exp())
                return (weights * nll).sum() / weights.sum()
        """,
            "not by the sum of the weights",
        ),
        (
            "fit_amplitude",
            """
            def fit_amplitude(x_train, y_train, x_test, seed):
                design = torch.cat([x_train, torch.ones(len(x_train), 1, dtype=x_train.dtype)], 1)
                coef = torch.linalg.lstsq(design, y_train[:, None]).solution
                test = torch.cat([x_test, torch.ones(len(x_test), 1, dtype=x_test.dtype)], 1)
                return (test @ coef)[:, 0]
        """,
            "linear model",
        ),
    ],
    "ex05_jet_regression": [
        (
            "mixture_nll",
            """
            def mixture_nll(logits, means, log_vars, target):
                residual = target[:, None] - means
                log_components = -0.5 * (
                    math.log(2 * math.pi) + log_vars + residual**2 * torch.exp(-log_vars)
                )
                return -torch.logsumexp(logits + log_components, dim=-1)
        """,
            "log_softmax",
        ),
        (
            "mixture_moments",
            """
            def mixture_moments(logits, means, log_vars):
                weights = torch.softmax(logits, dim=-1)
                mean = (weights * means).sum(-1)
                return mean, (weights * torch.exp(log_vars)).sum(-1).sqrt()
        """,
            "spread of the component means",
        ),
        (
            "mixture_pit",
            """
            def mixture_pit(logits, means, log_vars, target):
                weights = torch.softmax(logits, dim=-1)
                z = (target[:, None] - means) * torch.exp(-log_vars)
                return (weights * 0.5 * torch.erfc(-z / math.sqrt(2))).sum(-1)
        """,
            "standard deviation",
        ),
        (
            "smeared_sigma_stoch",
            """
            def smeared_sigma_stoch(x, t, sigma_cal, seed):
                torch.manual_seed(seed)
                model = lb.DeterministicMLP(1, 1, hidden=(32, 32), heteroskedastic=True)
                lb.train(model, x.float(), t.float(), n_epochs=30, batch_size=200, lr=1e-2,
                         lr_schedule="cosine", seed=seed, progress=False)
                sigma = lb.predict(model, x.float(), n_samples=1).sigma_stoch
                return sigma.double().pow(2).mean().sqrt()
        """,
            "sigma_stoch is",
        ),
    ],
    "ex07_classification": [
        (
            "auc_score",
            """
            def auc_score(scores, labels):
                signal, background = scores[labels == 1], scores[labels == 0]
                greater = (signal[:, None] > background[None, :]).double().sum()
                return greater / (signal.numel() * background.numel())
        """,
            "count one half",
        ),
        (
            "reliability_bins",
            """
            def reliability_bins(probabilities, labels, n_bins):
                index = torch.clamp((probabilities * n_bins).long(), max=n_bins - 1)
                predicted = torch.stack([probabilities[index == k].mean() for k in range(n_bins)])
                observed = torch.stack([labels[index == k].mean() for k in range(n_bins)])
                return predicted, observed
        """,
            "equal numbers of points",
        ),
        (
            "predictive_mean_and_spread",
            """
            def predictive_mean_and_spread(logit_draws):
                probabilities = torch.sigmoid(logit_draws)
                return torch.sigmoid(logit_draws.mean(0)), probabilities.std(0, unbiased=False)
        """,
            "average the probabilities",
        ),
        (
            "train_toy_tagger",
            """
            def train_toy_tagger(x_train, labels_train, x_test):
                return torch.sigmoid(3 * x_test[:, 0] - 1.5)  # a cut on x1 alone
        """,
            "below the exact likelihood ratio",
        ),
    ],
    "ex08_flows": [
        (
            "affine_coupling",
            """
            def affine_coupling(x, s, t):
                y = torch.stack([x[:, 0], x[:, 1] * torch.exp(s) + t], dim=1)
                return y, torch.exp(s)
        """,
            "is s itself, not exp(s)",
        ),
        (
            "flow_log_density",
            """
            def flow_log_density(z, log_det):
                return -0.5 * (z**2).sum(dim=1) - math.log(2 * math.pi) - log_det
        """,
            "do not subtract it",
        ),
        (
            "histogram_mean_sigma_pred",
            """
            def histogram_mean_sigma_pred(draws):
                return draws.mean(dim=0), draws.std(dim=0)
        """,
            "1/(R-1) version",
        ),
        (
            "fit_wedge_slope",
            """
            def fit_wedge_slope(x):
                return 12 * (x.mean() - 0.5), 12 * x.std() / math.sqrt(x.numel())
        """,
            "not the maximum-likelihood error",
        ),
    ],
    "ex11_beyond": [
        (
            "importance_estimate",
            """
            def importance_estimate(w):
                return w.mean(), w.std() / w.numel()
        """,
            "std(w)/sqrt(N), not std(w)/N",
        ),
        (
            "efficiency_over_replicas",
            """
            def efficiency_over_replicas(w, n_replicas):
                return w.mean() / w.max()
        """,
            "not the maximum of the whole sample",
        ),
        (
            "rank_histogram_chi2",
            """
            def rank_histogram_chi2(samples, truth, n_bins):
                k = (samples > truth[:, None]).sum(dim=1)
                counts = torch.histc((k + 0.5) / (samples.shape[1] + 1), bins=n_bins, min=0, max=1)
                expected = truth.numel() / n_bins
                return counts, ((counts - expected) ** 2 / expected).sum()
        """,
            "below the truth, not above it",
        ),
        (
            "sample_camel_flow",
            """
            def sample_camel_flow(seed):
                generator = torch.Generator().manual_seed(seed)
                x = torch.rand(20_000, 2, generator=generator, dtype=torch.float64)
                return x, torch.zeros(20_000, dtype=torch.float64)
        """,
            "the flow has not learned the camel",
        ),
    ],
    "ex09_classifier_weights": [
        (
            "safe_classifier_weights",
            """
            def safe_classifier_weights(d, eps=1e-6):
                clipped = d.clamp(eps, 1 - eps)
                return (1 - clipped) / clipped
        """,
            "(1-D)/D is the inverse ratio",
        ),
        (
            "safe_classifier_weights",
            """
            def safe_classifier_weights(d, eps=1e-6):
                return d / (1 - d)
        """,
            "NaN or infinity",
        ),
        (
            "safe_classifier_weights",
            """
            def safe_classifier_weights(d, eps=1e-6):
                clipped = d.clamp(max=1 - eps)
                return clipped / (1 - clipped)
        """,
            "clip D on both sides",
        ),
        (
            "reweighted_histogram",
            """
            def reweighted_histogram(x, w, edges):
                counts, _ = np.histogram(x.numpy(), bins=edges.numpy(), weights=w.numpy())
                return torch.as_tensor(counts), torch.as_tensor(np.sqrt(counts))
        """,
            "not sqrt(sum w)",
        ),
        (
            "reweighted_histogram",
            """
            def reweighted_histogram(x, w, edges):
                counts, _ = np.histogram(x.numpy(), bins=edges.numpy(), weights=w.numpy())
                n, _ = np.histogram(x.numpy(), bins=edges.numpy())
                return torch.as_tensor(counts), torch.as_tensor(np.sqrt(n.astype(float)))
        """,
            "ignores the weights",
        ),
        (
            "effective_events",
            """
            def effective_events(w):
                return (w**2).sum() / w.sum() ** 2
        """,
            "not its inverse",
        ),
        (
            "train_weights",
            """
            def train_weights(x_truth, x_gen, x_eval):
                # density ratio from histograms, with the convention flipped
                edges = np.linspace(-4, 5, 46)
                h_truth, _ = np.histogram(x_truth.numpy()[:, 0], edges)
                h_gen, _ = np.histogram(x_gen.numpy()[:, 0], edges)
                index = np.clip(np.digitize(x_eval.numpy()[:, 0], edges) - 1, 0, 44)
                return torch.as_tensor((h_gen[index] + 1.0) / (h_truth[index] + 1.0))
        """,
            "not (1-D)/D",
        ),
    ],
    "ex10_theory_uncertainties": [
        (
            "theory_weights",
            """
            def theory_weights(pt, a):
                return 1.0 + a[:, None] * (pt[None, :] - 15.0) / 100.0
        """,
            "square the scaled distance",
        ),
        (
            "reweighted_histogram",
            """
            def reweighted_histogram(x, w, edges):
                sums = torch.histogram(x, edges, weight=w).hist
                norm = w.sum() * (edges[1:] - edges[:-1])
                return sums / norm, sums.sqrt() / norm
        """,
            "not sqrt(sum w)",
        ),
        (
            "effective_sample_size",
            """
            def effective_sample_size(w):
                return (w**2).sum() / w.sum() ** 2
        """,
            "this is its inverse",
        ),
        (
            "theory_band",
            """
            def theory_band(histograms):
                mean, std = histograms.mean(dim=0), histograms.std(dim=0, unbiased=False)
                return mean, mean - std, mean + std
        """,
            "not the mean plus or minus",
        ),
        (
            "reweighted_mean_pt",
            """
            def reweighted_mean_pt(pt, a):
                w = 1.0 + a * ((pt - 15.0) / 100.0) ** 2
                mean = (w * pt).sum() / w.sum()
                return mean, pt.std() / math.sqrt(pt.numel())
        """,
            "not std / sqrt(N)",
        ),
    ],
}

# right answers written differently: must still score full marks
EXTRA = {
    "noisy_but_right": (
        "ex04_heteroskedastic",
        """
        import warnings


        def gaussian_nll(mean, log_var, target):
            warnings.warn("a harmless UserWarning from the student's code")
            torch.tensor([1.0]).resize_(2)  # a real torch warning is fine too
            import sys
            print("debug output on stderr", file=sys.stderr)
            return 0.5 * (math.log(2 * math.pi) + log_var + (target - mean) ** 2 / log_var.exp())
    """,
    ),
    "shortcut": (
        "ex02_elbo",
        """
        def kl_gaussian(mu_q, sigma_q, mu_p, sigma_p):
            return lb.losses.kl_gaussian(mu_q, sigma_q, mu_p, sigma_p)
    """,
    ),
}


def _with_cell(name: str, source: str) -> nbformat.NotebookNode:
    """The solution notebook with one more code cell after the last definition cell."""
    notebook = nbformat.read(REPO / "solutions" / f"{name}.ipynb", as_version=4)
    last_def = max(i for i, c in enumerate(notebook.cells) if "def " in c.source)
    cell = nbformat.v4.new_code_cell(textwrap.dedent(source).strip())
    notebook.cells.insert(last_def + 1, cell)
    return notebook


@pytest.fixture(scope="module")
def wrong_class(tmp_path_factory):  # noqa: ANN001
    """Grade all wrong and extra variants as one class (2 at a time)."""
    root = tmp_path_factory.mktemp("wrong-answers")
    expected = {}
    for name, answers in WRONG_ANSWERS.items():
        for k, (function, source, hint) in enumerate(answers):
            student = f"{name}-{function}-{k}"
            folder = root / "submissions" / student
            folder.mkdir(parents=True)
            nbformat.write(_with_cell(name, source), folder / f"{name}.ipynb")
            expected[student] = (name, function, hint)
    for student, (name, source) in EXTRA.items():
        folder = root / "submissions" / student
        folder.mkdir(parents=True)
        nbformat.write(_with_cell(name, source), folder / f"{name}.ipynb")
    results = grade_class(root / "submissions", root / "grades.csv", jobs=2, progress=False)
    return {r.student: r for r in results}, expected


@pytest.mark.parametrize("name", NAMES)
def test_solution_scores_full_marks(name: str, grade_cache) -> None:  # noqa: ANN001
    result = grade_cache(REPO / "solutions" / f"{name}.ipynb")
    assert result.status == "ok", result.feedback()
    assert result.score == result.max_score == EXERCISES[name].max_score, result.feedback()


@pytest.mark.parametrize("name", NAMES)
def test_unmodified_exercise_scores_zero(name: str, grade_cache) -> None:  # noqa: ANN001
    result = grade_cache(REPO / "exercises" / f"{name}.ipynb")
    assert result.status == "ok", result.feedback()
    assert result.score == 0
    assert all("NotImplementedError" in t.message for t in result.tasks)


def test_every_task_has_a_wrong_answer_in_this_test() -> None:
    covered = {(name, f) for name, answers in WRONG_ANSWERS.items() for f, _, _ in answers}
    every = {(name, t.function) for name, e in EXERCISES.items() for t in e.tasks}
    assert covered == every


def test_a_plausible_wrong_answer_loses_only_its_task(wrong_class) -> None:  # noqa: ANN001
    results, expected = wrong_class
    for student, (name, function, hint) in expected.items():
        result = results[student]
        assert result.status == "ok", (student, result.feedback())
        for task in result.tasks:
            if task.function == function:
                assert task.points == 0, f"{student}: the wrong answer scored"
                assert hint in task.message, f"{student}: {task.message}"
            else:
                assert task.passed, f"{student}: {task.function} lost points: {task.message}"
        assert result.score == EXERCISES[name].max_score - EXERCISES[name].task(function).points


def test_warnings_on_stderr_do_not_cost_points(wrong_class) -> None:  # noqa: ANN001
    result = wrong_class[0]["noisy_but_right"]
    assert (result.status, result.score) == ("ok", result.max_score), result.feedback()


def test_calling_the_reference_implementation_scores_zero(wrong_class) -> None:  # noqa: ANN001
    result = wrong_class[0]["shortcut"]
    task = next(t for t in result.tasks if t.function == "kl_gaussian")
    assert task.points == 0 and "reference implementation" in task.message
    assert result.score == result.max_score - task.max_points


@pytest.mark.parametrize("name", NAMES)
def test_every_known_mistake_differs_from_the_truth(name: str) -> None:
    for task in EXERCISES[name].tasks:
        cases = task.cases()
        assert cases, task.function
        for mistake in task.mistakes:
            differs = False
            for case in cases:
                try:
                    wrong = _as_tuple(mistake.wrong(*[plain(a) for a in case.args]))
                except Exception:  # noqa: BLE001, S112 - the mistake model does not apply
                    continue
                args = [plain(a) for a in case.args]
                if task.judge is not None:  # outcome-graded: the judge must reject it
                    if not task.judge(args, wrong)[0]:
                        differs = True
                    continue
                right = _as_tuple(task.reference(*args))
                if not _close(wrong, right, task.rtol, task.atol)[0]:
                    differs = True
            assert differs, f"{task.function}: mistake '{mistake.hint}' is never detected"


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array, dtype=float))


def test_references_agree_with_lhcbnn() -> None:
    ex02, ex03, ex04 = (EXERCISES[n] for n in ("ex02_elbo", "ex03_limits", "ex04_heteroskedastic"))
    for case in ex02.task("kl_gaussian").cases():
        args = [plain(a) for a in case.args]
        ours = ex02.task("kl_gaussian").reference(*args)
        theirs = lb.losses.kl_gaussian(*[_tensor(a) for a in args]).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)

    rng = np.random.default_rng(5)
    x = rng.normal(size=(30, 2))
    y = x @ np.array([1.0, -2.0]) + 0.4 * rng.normal(size=30)
    exact = lb.conjugate.BayesianLinearRegression(_tensor(x), _tensor(y), 0.4, 1.3, bias=False)
    mu, sigma = exact.posterior_mean.numpy() + 0.1, np.array([0.05, 0.07])
    kl = ex02.task("kl_to_posterior").reference(
        mu, sigma, exact.posterior_mean.numpy(), exact.posterior_cov.numpy()
    )
    assert math.isclose(kl, exact.kl_to_posterior(_tensor(mu), _tensor(sigma)).item(), rel_tol=1e-8)
    gap = (exact.log_evidence() - exact.elbo(_tensor(mu), _tensor(sigma))).item()
    assert math.isclose(kl, gap, rel_tol=1e-6)
    np.testing.assert_allclose(
        ex02.task("mean_field_sigma").reference(exact.posterior_precision.numpy()),
        exact.mean_field_sigma.numpy(),
        rtol=1e-12,
    )
    eps = np.random.default_rng(6).normal(size=(200_000, 2))
    estimate = ex02.task("mc_elbo").reference(x, y, 0.4, 1.3, mu, sigma, eps)
    assert abs(estimate - exact.elbo(_tensor(mu), _tensor(sigma)).item()) < 0.01

    for case in ex03.task("l2_coefficient").cases():
        assert math.isclose(
            ex03.task("l2_coefficient").reference(*case.args),
            lb.losses.l2_lambda(*case.args),
            rel_tol=1e-12,
        )
    for case in ex03.task("kl_gradients").cases():
        args = [plain(a) for a in case.args]
        mu_q = _tensor(args[0]).requires_grad_(True)
        sigma_q = _tensor(args[1]).requires_grad_(True)
        lb.losses.kl_gaussian(mu_q, sigma_q, _tensor(args[2]), _tensor(args[3])).sum().backward()
        d_mu, d_sigma = ex03.task("kl_gradients").reference(*args)
        np.testing.assert_allclose(d_mu, mu_q.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(d_sigma, sigma_q.grad.numpy(), rtol=1e-10, atol=1e-12)

    for case in ex04.task("gaussian_nll").cases():
        args = [plain(a) for a in case.args]
        np.testing.assert_allclose(
            ex04.task("gaussian_nll").reference(*args),
            lb.losses.gaussian_nll(*[_tensor(a) for a in args]).numpy(),
            rtol=1e-12,
        )
    means = rng.normal(size=(7, 5, 1))
    log_vars = rng.normal(-1, 0.5, size=(7, 5, 1))
    sigma_stoch = ex04.task("sigma_stoch_from_samples").reference(log_vars)
    sigma_pred = ex04.task("sigma_pred_from_samples").reference(means)
    truth = rng.normal(size=(5, 1))
    total = np.sqrt((np.exp(log_vars) + means**2).mean(0) - means.mean(0) ** 2)
    np.testing.assert_allclose(np.sqrt(sigma_stoch**2 + sigma_pred**2), total, rtol=1e-10)
    prediction = lb.Prediction(
        *(_tensor(a) for a in (means.mean(0), sigma_stoch, sigma_pred, total))
    )
    np.testing.assert_allclose(
        ex04.task("compute_pulls").reference(means.mean(0), sigma_stoch, sigma_pred, truth),
        lb.pulls(prediction, _tensor(truth)).numpy(),
        rtol=1e-10,
    )


def test_ex05_references_agree_with_lhcbnn() -> None:
    ex05 = EXERCISES["ex05_jet_regression"]
    head = lb.models.OutputHead(1, n_mixture=3)
    for case in ex05.task("mixture_nll").cases():
        args = [plain(a) for a in case.args]
        np.testing.assert_allclose(
            ex05.task("mixture_nll").reference(*args),
            lb.losses.gaussian_mixture_nll(*[_tensor(a) for a in args]).numpy(),
            rtol=1e-10,
        )
    for case in ex05.task("mixture_moments").cases():
        logits, means, log_vars = (plain(a) for a in case.args)
        if logits.shape[1] != 3:
            continue
        mean, sigma = ex05.task("mixture_moments").reference(logits, means, log_vars)
        output = _tensor(np.concatenate([logits, means, log_vars], axis=1))
        ours_mean, ours_var = head.moments(output)
        np.testing.assert_allclose(mean, ours_mean[:, 0].numpy(), rtol=1e-10)
        np.testing.assert_allclose(sigma**2, ours_var[:, 0].numpy(), rtol=1e-6)
    # the PIT of labels drawn from a mixture is uniform
    rng = np.random.default_rng(3)
    logits, means, log_vars = rng.normal(size=3), rng.normal(size=3), rng.uniform(-2, 0, 3)
    weights = np.exp(logits) / np.exp(logits).sum()
    component = rng.choice(3, size=20_000, p=weights)
    labels = means[component] + np.exp(0.5 * log_vars[component]) * rng.normal(size=20_000)
    tile = [np.tile(a, (20_000, 1)) for a in (logits, means, log_vars)]
    pit = ex05.task("mixture_pit").reference(*tile, labels)
    assert abs(calibration.coverage(pit, 0.68) - 0.68) < 0.015
    assert np.histogram(pit, bins=10, range=(0, 1))[0].min() > 1800


def test_ex10_references_agree_with_lhcbnn() -> None:
    ex10 = EXERCISES["ex10_theory_uncertainties"]
    for case in ex10.task("theory_weights").cases():
        pt, a = (plain(arg) for arg in case.args)
        np.testing.assert_allclose(
            ex10.task("theory_weights").reference(pt, a),
            lb.augmentation.theory_weights(pt, a[:, None]),
            rtol=1e-12,
        )
    for case in ex10.task("reweighted_histogram").cases():
        args = [plain(arg) for arg in case.args]
        for ours, theirs in zip(
            ex10.task("reweighted_histogram").reference(*args),
            lb.augmentation.reweighted_histogram(*args),
            strict=True,
        ):
            np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    for case in ex10.task("effective_sample_size").cases():
        (w,) = (plain(arg) for arg in case.args)
        assert math.isclose(
            float(ex10.task("effective_sample_size").reference(w)),
            lb.augmentation.effective_sample_size(w),
            rel_tol=1e-12,
        )
    for case in ex10.task("theory_band").cases():
        (histograms,) = (plain(arg) for arg in case.args)
        central, low, high = ex10.task("theory_band").reference(histograms)
        band = lb.augmentation.theory_band(histograms)
        np.testing.assert_allclose(
            np.stack([central, low, high]), np.stack([band.central, band.low, band.high])
        )
