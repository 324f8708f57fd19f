r"""Hidden checks of exercise 3: the L2 limit of the BNN loss and an MC-dropout predictive."""

from __future__ import annotations

import numpy as np

from lhcbnn.grading.tasks.base import Case, Exercise, Mistake, Task, Tensor, TensorList


# ---------------------------------------------------------------- l2_coefficient
def l2_coefficient_reference(prior_sigma, n_train):
    r""":math:`\lambda = 1/(2\sigma_p^2 N)`."""
    return 1.0 / (2.0 * prior_sigma**2 * n_train)


def _l2_cases() -> list[Case]:
    return [
        Case((1.0, 1000), "unit prior, 1000 training points"),
        Case((0.5, 200), "a narrow prior"),
        Case((2.0, 1), "a single training point"),
        Case((0.1, 50_000), "a large training set"),
    ]


L2_COEFFICIENT = Task(
    function="l2_coefficient",
    points=1,
    title="the L2 coefficient of the narrow-width limit",
    cases=_l2_cases,
    reference=l2_coefficient_reference,
    mistakes=(
        Mistake(
            "the loss is per training point (mean NLL + KL / N), so lambda falls like 1/N",
            lambda s, n: 1.0 / (2.0 * s**2),
        ),
        Mistake("the prior enters through its variance sigma_p^2", lambda s, n: 1.0 / (2 * s * n)),
        Mistake(
            "the KL has theta^2 / (2 sigma_p^2): a factor 2 is missing",
            lambda s, n: 1.0 / (s**2 * n),
        ),
        Mistake("divide by N, do not multiply", lambda s, n: n / (2.0 * s**2)),
    ),
    forbidden=("l2_lambda",),
)


# ---------------------------------------------------------------- kl_gradients
def kl_gradients_reference(mu_q, sigma_q, mu_p, sigma_p):
    r""":math:`\partial_{\mu_q} D = (\mu_q-\mu_p)/\sigma_p^2`,
    :math:`\partial_{\sigma_q} D = \sigma_q/\sigma_p^2 - 1/\sigma_q`."""
    mu_q, sigma_q, mu_p, sigma_p = (np.asarray(a, float) for a in (mu_q, sigma_q, mu_p, sigma_p))
    shape = np.broadcast_shapes(mu_q.shape, sigma_q.shape, mu_p.shape, sigma_p.shape)
    d_mu = np.broadcast_to((mu_q - mu_p) / sigma_p**2, shape)
    d_sigma = np.broadcast_to(sigma_q / sigma_p**2 - 1.0 / sigma_q, shape)
    return d_mu, d_sigma


def _gradient_cases() -> list[Case]:
    rng = np.random.default_rng(20301)
    same_mu, same_sigma = rng.normal(0, 1, 4), rng.uniform(0.3, 2.0, 4)
    return [
        Case(
            (Tensor(rng.normal(0, 1, 5)), Tensor(rng.uniform(0.2, 2.0, 5)), 0.0, 1.0),
            "prior N(0, 1) given as plain numbers",
        ),
        Case(
            (
                Tensor(rng.normal(0, 1, (2, 3))),
                Tensor(rng.uniform(0.1, 1.0, (2, 3))),
                Tensor(rng.normal(0, 1, (2, 3))),
                Tensor(rng.uniform(0.5, 3.0, (2, 3))),
            ),
            "general means and widths, 2D tensors",
        ),
        Case(
            (
                Tensor(same_mu),
                Tensor(same_sigma),
                Tensor(same_mu.copy()),
                Tensor(same_sigma.copy()),
            ),
            "q equal to p, a minimum: both gradients vanish",
        ),
        Case(
            (Tensor(np.array([0.5, -1.0, 2.0])), Tensor(np.array([1e-3, 1e-2, 0.05])), 0.0, 0.5),
            "a narrow q, the deterministic limit",
        ),
    ]


def _grad_no_log(mu_q, sigma_q, mu_p, sigma_p):
    d_mu, d_sigma = kl_gradients_reference(mu_q, sigma_q, mu_p, sigma_p)
    return d_mu, d_sigma + 1.0 / np.asarray(sigma_q, float)


def _grad_mu_sign(mu_q, sigma_q, mu_p, sigma_p):
    d_mu, d_sigma = kl_gradients_reference(mu_q, sigma_q, mu_p, sigma_p)
    return -d_mu, d_sigma


def _grad_sigma_p_not_squared(mu_q, sigma_q, mu_p, sigma_p):
    mu_q, sigma_q, mu_p, sigma_p = (np.asarray(a, float) for a in (mu_q, sigma_q, mu_p, sigma_p))
    return (mu_q - mu_p) / sigma_p + 0 * sigma_q, sigma_q / sigma_p - 1.0 / sigma_q + 0 * mu_q


def _grad_log_sign(mu_q, sigma_q, mu_p, sigma_p):
    d_mu, d_sigma = kl_gradients_reference(mu_q, sigma_q, mu_p, sigma_p)
    return d_mu, d_sigma + 2.0 / np.asarray(sigma_q, float)


KL_GRADIENTS = Task(
    function="kl_gradients",
    points=3,
    title="gradients of the Gaussian KL with respect to mu_q and sigma_q",
    cases=_gradient_cases,
    reference=kl_gradients_reference,
    outputs=("d_mu", "d_sigma"),
    mistakes=(
        Mistake("d/d sigma_q misses the -1/sigma_q that comes from the log term", _grad_no_log),
        Mistake("d/d mu_q has the wrong sign: it pulls mu_q towards mu_p", _grad_mu_sign),
        Mistake("the prior enters through sigma_p^2, not sigma_p", _grad_sigma_p_not_squared),
        Mistake("the derivative of log(sigma_p / sigma_q) is -1/sigma_q", _grad_log_sign),
    ),
    forbidden=("kl_gaussian", "kl_divergence"),
)


# ---------------------------------------------------------------- l2_regularised_loss
def l2_loss_reference(nll_mean, weights, prior_sigma, n_train):
    r""":math:`\overline{\mathrm{NLL}} + \lambda\sum_w w^2`, :math:`\lambda=1/(2\sigma_p^2N)`."""
    penalty = sum(float((np.asarray(w) ** 2).sum()) for w in weights)
    return float(nll_mean) + l2_coefficient_reference(prior_sigma, n_train) * penalty


def _l2_loss_cases() -> list[Case]:
    rng = np.random.default_rng(20302)
    return [
        Case(
            (
                Tensor(np.array(0.8)),
                TensorList((rng.normal(0, 1, (3, 2)), rng.normal(0, 1, 3))),
                1.0,
                100,
            ),
            "a layer with weights and biases",
        ),
        Case(
            (
                Tensor(np.array(-1.3)),
                TensorList(
                    (rng.normal(0, 2, (4, 3)), rng.normal(0, 1, 4), rng.normal(0, 1, (1, 4)))
                ),
                0.5,
                10,
            ),
            "three tensors, narrow prior, few points",
        ),
        Case(
            (Tensor(np.array(2.0)), TensorList((np.zeros((2, 2)),)), 1.0, 50),
            "all weights zero: no penalty",
        ),
    ]


def _loss_no_n(nll_mean, weights, prior_sigma, n_train):
    return l2_loss_reference(nll_mean, weights, prior_sigma, 1)


def _loss_l1(nll_mean, weights, prior_sigma, n_train):
    penalty = sum(float(np.abs(np.asarray(w)).sum()) for w in weights)
    return float(nll_mean) + l2_coefficient_reference(prior_sigma, n_train) * penalty


def _loss_first_only(nll_mean, weights, prior_sigma, n_train):
    return l2_loss_reference(nll_mean, weights[:1], prior_sigma, n_train)


def _loss_mean_square(nll_mean, weights, prior_sigma, n_train):
    penalty = sum(float((np.asarray(w) ** 2).mean()) for w in weights)
    return float(nll_mean) + l2_coefficient_reference(prior_sigma, n_train) * penalty


L2_REGULARISED_LOSS = Task(
    function="l2_regularised_loss",
    points=2,
    title="the L2-regularised loss of the deterministic limit",
    cases=_l2_loss_cases,
    reference=l2_loss_reference,
    mistakes=(
        Mistake("lambda must contain 1/N (the KL is divided by the training size)", _loss_no_n),
        Mistake("the penalty is quadratic: sum of w^2, not of |w|", _loss_l1),
        Mistake("every tensor in the list needs its penalty, biases included", _loss_first_only),
        Mistake("sum the squares over all entries; do not average them", _loss_mean_square),
    ),
    forbidden=("l2_lambda", "neg_elbo", "kl_divergence"),
)


# ---------------------------------------------------------------- mc_dropout_predictive
def _dropout_draws(x, w1, b1, w2, b2, masks, p, scale=None):
    hidden = np.maximum(x @ w1.T + b1, 0.0)  # (B, H)
    scale = 1.0 / (1.0 - p) if scale is None else scale
    dropped = hidden[None, :, :] * masks[:, None, :] * scale  # (T, B, H)
    return dropped @ w2.T + b2  # (T, B, n_out)


def mc_dropout_reference(x, w1, b1, w2, b2, masks, p):
    r"""Mean and population standard deviation over the draws
    :math:`f_t = W_2\,[\mathrm{relu}(W_1x+b_1)\odot z_t/(1-p)] + b_2`."""
    draws = _dropout_draws(x, w1, b1, w2, b2, masks, p)
    return draws.mean(0), draws.std(0)


def _dropout_case(rng, batch, n_in, hidden, n_out, n_draws, p, ones=False):
    x = rng.normal(0, 1, (batch, n_in))
    w1 = rng.normal(0, 1, (hidden, n_in))
    b1 = rng.normal(0, 0.5, hidden)
    w2 = rng.normal(0, 1, (n_out, hidden)) / np.sqrt(hidden)
    b2 = rng.normal(0, 0.5, n_out)
    masks = np.ones((n_draws, hidden)) if ones else (rng.uniform(size=(n_draws, hidden)) > p)
    return tuple(Tensor(a) for a in (x, w1, b1, w2, b2, masks.astype(float))) + (p,)


def _dropout_cases() -> list[Case]:
    rng = np.random.default_rng(20303)
    return [
        Case(_dropout_case(rng, 6, 2, 8, 1, 4, 0.2), "4 draws, one output, p = 0.2"),
        Case(_dropout_case(rng, 5, 3, 10, 2, 6, 0.5), "6 draws, two outputs, p = 0.5"),
        Case(
            _dropout_case(rng, 4, 1, 6, 1, 3, 0.1, ones=True),
            "masks that keep every unit: no spread",
        ),
    ]


def _dropout_no_rescale(x, w1, b1, w2, b2, masks, p):
    draws = _dropout_draws(x, w1, b1, w2, b2, masks, p, scale=1.0)
    return draws.mean(0), draws.std(0)


def _dropout_rescale_p(x, w1, b1, w2, b2, masks, p):
    draws = _dropout_draws(x, w1, b1, w2, b2, masks, p, scale=1.0 / p)
    return draws.mean(0), draws.std(0)


def _dropout_unbiased(x, w1, b1, w2, b2, masks, p):
    draws = _dropout_draws(x, w1, b1, w2, b2, masks, p)
    return draws.mean(0), draws.std(0, ddof=1)


def _dropout_variance(x, w1, b1, w2, b2, masks, p):
    draws = _dropout_draws(x, w1, b1, w2, b2, masks, p)
    return draws.mean(0), draws.var(0)


def _dropout_inverted_mask(x, w1, b1, w2, b2, masks, p):
    draws = _dropout_draws(x, w1, b1, w2, b2, 1.0 - masks, p)
    return draws.mean(0), draws.std(0)


MC_DROPOUT_PREDICTIVE = Task(
    function="mc_dropout_predictive",
    points=4,
    title="predictive mean and sigma_pred of MC dropout with given masks",
    cases=_dropout_cases,
    reference=mc_dropout_reference,
    outputs=("mean", "sigma_pred"),
    mistakes=(
        Mistake(
            "kept units are scaled by 1/(1-p) (inverted dropout), as in training",
            _dropout_no_rescale,
        ),
        Mistake("scale the kept units by 1/(1-p), not 1/p", _dropout_rescale_p),
        Mistake(
            "sigma_pred is the spread of the draws with 1/T (population), as lb.predict uses; "
            "this looks like the unbiased 1/(T-1) version",
            _dropout_unbiased,
        ),
        Mistake("return the standard deviation, not the variance", _dropout_variance),
        Mistake("a mask entry 1 means the unit is kept", _dropout_inverted_mask),
    ),
    forbidden=("predict", "predictive_samples", "MCDropoutMLP", "dropout"),
)


EXERCISE = Exercise(
    name="ex03_limits",
    title="Exercise 3: deterministic limits, L2 regularisation and MC dropout",
    tasks=(L2_COEFFICIENT, KL_GRADIENTS, L2_REGULARISED_LOSS, MC_DROPOUT_PREDICTIVE),
)
