r"""Conjugate Bayesian linear regression: the exact truth the ELBO is held against.

Model (Bishop, *Pattern Recognition and Machine Learning*, sec. 3.3 and 3.5):

.. math::
    t_i = \phi_i^T\theta + \epsilon_i,\quad \epsilon_i\sim\mathcal N(0,\sigma^2),\quad
    \theta\sim\mathcal N(0,\sigma_p^2 I),

with features :math:`\phi_i = (x_i, 1)` when a bias is fitted, in the order of a
:class:`~lhcbnn.layers.VBLinear` with one output: weights first, then the bias. The
posterior is Gaussian with precision :math:`\Lambda = \Phi^T\Phi/\sigma^2 + I/\sigma_p^2`
and mean :math:`m = \Lambda^{-1}\Phi^T t/\sigma^2`; the evidence is Gaussian too. For a
Gaussian :math:`q(\theta)` everything in

.. math:: \log p(T) = \mathrm{ELBO}[q] + D_\mathrm{KL}[q(\theta), p(\theta\mid T)]

is closed form, which is what chapter 2 and the tests check.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lhcbnn._validate import positive_number
from lhcbnn.device import as_tensor
from lhcbnn.layers import VBLinear
from lhcbnn.losses import kl_gaussian

__all__ = ["BayesianLinearRegression", "layer_posterior"]

_LOG_2PI = math.log(2.0 * math.pi)


def layer_posterior(layer: VBLinear) -> tuple[Tensor, Tensor]:
    """Means and widths of a one-output :class:`VBLinear`, weights then bias, ``(D,)``."""
    if not isinstance(layer, VBLinear):
        raise TypeError(f"expected a VBLinear, got {type(layer).__name__}")
    if layer.out_features != 1:
        raise ValueError(f"expected a VBLinear with one output, got {layer.out_features}")
    with torch.no_grad():
        mu = torch.cat([layer.weight_mu[0], layer.bias_mu]).double()
        sigma = torch.cat([layer.weight_sigma[0], layer.bias_sigma]).double()
    return mu, sigma


class BayesianLinearRegression:
    r"""Exact posterior, evidence and Gaussian-:math:`q` ELBO of linear regression.

    Args:
        x: inputs ``(N, n_in)`` (or ``(N,)`` for one feature).
        y: targets ``(N,)`` or ``(N, 1)``.
        noise_sigma: known Gaussian noise :math:`\sigma`.
        prior_sigma: prior width :math:`\sigma_p` of every parameter.
        bias: append a constant feature (the bias of a ``VBLinear``).

    All results are float64 tensors; ``D = n_in + bias`` parameters.
    """

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        noise_sigma: float,
        prior_sigma: float = 1.0,
        bias: bool = True,
    ) -> None:
        noise_sigma = positive_number(noise_sigma, "noise_sigma")
        prior_sigma = positive_number(prior_sigma, "prior_sigma")
        x = as_tensor(x, "x", dtype=torch.float64)
        y = as_tensor(y, "y", dtype=torch.float64)
        if x.dim() == 1:
            x = x[:, None]
        if y.dim() == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if x.dim() != 2 or y.dim() != 1 or x.shape[0] != y.shape[0]:
            raise ValueError(
                f"x must be (N, n_in) and y (N,) with the same N, got {tuple(x.shape)} "
                f"and {tuple(y.shape)}"
            )
        self.noise_sigma = float(noise_sigma)
        self.prior_sigma = float(prior_sigma)
        self.design = torch.cat([x, torch.ones_like(x[:, :1])], dim=1) if bias else x
        self.y = y
        n_params = self.design.shape[1]
        identity = torch.eye(n_params, dtype=torch.float64, device=x.device)
        self.posterior_precision = (
            self.design.T @ self.design / self.noise_sigma**2 + identity / self.prior_sigma**2
        )
        self._cholesky = torch.linalg.cholesky(self.posterior_precision)
        self.posterior_cov = torch.cholesky_inverse(self._cholesky)
        self.posterior_mean = self.posterior_cov @ (self.design.T @ y) / self.noise_sigma**2
        self.mean_field_sigma = self.posterior_precision.diagonal().rsqrt()

    @property
    def n_points(self) -> int:
        return self.design.shape[0]

    @property
    def n_params(self) -> int:
        return self.design.shape[1]

    def log_evidence(self) -> Tensor:
        r"""Exact :math:`\log p(T)`, via Bishop eq. (3.86):

        .. math::
            \log p(T) = -\tfrac N2\log 2\pi\sigma^2 - D\log\sigma_p
            - \tfrac12\log|\Lambda| - \frac{\lVert t-\Phi m\rVert^2}{2\sigma^2}
            - \frac{\lVert m\rVert^2}{2\sigma_p^2}
        """
        residual = self.y - self.design @ self.posterior_mean
        log_det_precision = 2.0 * self._cholesky.diagonal().log().sum()
        return (
            -0.5 * self.n_points * (_LOG_2PI + 2.0 * math.log(self.noise_sigma))
            - self.n_params * math.log(self.prior_sigma)
            - 0.5 * log_det_precision
            - 0.5 * (residual @ residual) / self.noise_sigma**2
            - 0.5 * (self.posterior_mean @ self.posterior_mean) / self.prior_sigma**2
        )

    def _check_q(self, mu: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor]:
        mu = as_tensor(mu, "mu", dtype=torch.float64)
        sigma = as_tensor(sigma, "sigma", dtype=torch.float64)
        if mu.shape != (self.n_params,) or sigma.shape != (self.n_params,):
            raise ValueError(
                f"mu and sigma must have shape ({self.n_params},), got {tuple(mu.shape)} "
                f"and {tuple(sigma.shape)}"
            )
        if (sigma <= 0).any():
            raise ValueError("sigma must be positive (widths of q)")
        return mu, sigma

    def expected_log_likelihood(self, mu: Tensor, sigma: Tensor) -> Tensor:
        r"""Expected log-likelihood :math:`\langle\log p(T\mid\theta)\rangle_q` for
        :math:`q=\mathcal N(\mu,\mathrm{diag}\,s^2)`:

        .. math::
            -\tfrac N2\log 2\pi\sigma^2 - \frac{1}{2\sigma^2}\Big[\lVert t-\Phi\mu\rVert^2
            + \sum_j s_j^2\sum_i\Phi_{ij}^2\Big]
        """
        mu, sigma = self._check_q(mu, sigma)
        residual = self.y - self.design @ mu
        spread = (sigma**2 * (self.design**2).sum(0)).sum()
        return (
            -0.5 * self.n_points * (_LOG_2PI + 2.0 * math.log(self.noise_sigma))
            - 0.5 * (residual @ residual + spread) / self.noise_sigma**2
        )

    def kl_to_prior(self, mu: Tensor, sigma: Tensor) -> Tensor:
        """:math:`D_\\mathrm{KL}[q, p(\\theta)]`, summed closed-form Gaussian KL."""
        mu, sigma = self._check_q(mu, sigma)
        return kl_gaussian(mu, sigma, 0.0, self.prior_sigma).sum()

    def elbo(self, mu: Tensor, sigma: Tensor) -> Tensor:
        r"""Closed-form ELBO :math:`\langle\log p(T\mid\theta)\rangle_q - D_\mathrm{KL}[q,p]`
        of the mean-field :math:`q=\mathcal N(\mu,\mathrm{diag}\,\sigma^2)`."""
        return self.expected_log_likelihood(mu, sigma) - self.kl_to_prior(mu, sigma)

    def kl_to_posterior(self, mu: Tensor, sigma: Tensor) -> Tensor:
        r""":math:`D_\mathrm{KL}[q(\theta), p(\theta\mid T)]` between Gaussians:

        .. math::
            \tfrac12\Big[\mathrm{tr}(\Lambda S) + (m-\mu)^T\Lambda(m-\mu) - D
            - \log|\Lambda| - \log|S|\Big],\quad S=\mathrm{diag}\,\sigma^2
        """
        mu, sigma = self._check_q(mu, sigma)
        delta = self.posterior_mean - mu
        log_det_precision = 2.0 * self._cholesky.diagonal().log().sum()
        return 0.5 * (
            (self.posterior_precision.diagonal() * sigma**2).sum()
            + delta @ self.posterior_precision @ delta
            - self.n_params
            - log_det_precision
            - (sigma**2).log().sum()
        )

    def monte_carlo_elbo(
        self, mu: Tensor, sigma: Tensor, n_samples: int = 10_000, seed: int = 0
    ) -> tuple[Tensor, Tensor]:
        r"""Monte-Carlo ELBO :math:`\frac1S\sum_s[\log p(T\mid\theta_s) + \log p(\theta_s)
        - \log q(\theta_s)]`, :math:`\theta_s\sim q`, and its standard error."""
        mu, sigma = self._check_q(mu, sigma)
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 2:
            raise ValueError(f"n_samples must be an integer >= 2, got {n_samples!r}")
        generator = torch.Generator().manual_seed(seed)
        noise = torch.randn(n_samples, self.n_params, generator=generator, dtype=torch.float64)
        theta = mu + sigma * noise.to(mu.device)
        residual = self.y[None, :] - theta @ self.design.T
        log_likelihood = (
            -0.5 * self.n_points * (_LOG_2PI + 2.0 * math.log(self.noise_sigma))
            - 0.5 * (residual**2).sum(1) / self.noise_sigma**2
        )
        log_prior = (
            -0.5 * (theta / self.prior_sigma) ** 2 - math.log(self.prior_sigma) - 0.5 * _LOG_2PI
        ).sum(1)
        log_q = (-0.5 * noise.to(mu.device) ** 2 - sigma.log() - 0.5 * _LOG_2PI).sum(1)
        terms = log_likelihood + log_prior - log_q
        return terms.mean(), terms.std() / math.sqrt(n_samples)
