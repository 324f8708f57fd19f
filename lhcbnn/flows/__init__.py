"""Normalizing flows and the Bayesian INN of chapter 8.

* :class:`INN`: coupling blocks (affine or rational-quadratic spline) on the real line or
  a box, ``log_prob``, ``sample``, ``forward``/``inverse`` with log-determinants; with
  ``bayesian=True`` the coupling networks are :class:`~lhcbnn.VBLinear` layers.
* :func:`train_flow`: maximum likelihood or the ELBO, a fixed number of steps.
* :mod:`~lhcbnn.flows.integration`: Monte-Carlo integration with a flow trained by the
  variance loss (chapter 11).
* :func:`density_with_uncertainty`, :func:`histogram_with_uncertainty`: mean and
  sigma_pred over weight draws; :func:`weight_draw` fixes one draw.

References: Dinh et al. (RealNVP) arXiv:1605.08803; Durkan et al. (neural spline flows)
arXiv:1906.04032; Ardizzone et al. (INN) arXiv:1808.04730; Bellagente et al. (Bayesian
INN) arXiv:2104.04543.
"""

from lhcbnn.flows import integration
from lhcbnn.flows.couplings import AffineCoupling, SplineCoupling, coupling_network
from lhcbnn.flows.domain import BoxLogit, BoxUniform, RealDomain
from lhcbnn.flows.inn import INN
from lhcbnn.flows.splines import rational_quadratic
from lhcbnn.flows.training import FlowHistory, train_flow, validation_nll
from lhcbnn.flows.uncertainty import (
    DensityPrediction,
    HistogramPrediction,
    density_with_uncertainty,
    histogram_with_uncertainty,
    marginal_with_uncertainty,
    weight_draw,
)
from lhcbnn.flows.wedge import PolynomialFit, fit_polynomial_density, linear_density_sigma

__all__ = [
    "INN",
    "integration",
    "AffineCoupling",
    "BoxLogit",
    "BoxUniform",
    "DensityPrediction",
    "FlowHistory",
    "HistogramPrediction",
    "RealDomain",
    "SplineCoupling",
    "coupling_network",
    "density_with_uncertainty",
    "histogram_with_uncertainty",
    "marginal_with_uncertainty",
    "PolynomialFit",
    "fit_polynomial_density",
    "linear_density_sigma",
    "rational_quadratic",
    "train_flow",
    "validation_nll",
    "weight_draw",
]
