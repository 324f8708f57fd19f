r"""Monte-Carlo integration with a flow as the sampling density (chapter 11).

Importance sampling estimates :math:`I = \int_{[0,1]^d} f(x)\,dx` from points
:math:`x_i \sim q` by the weights :math:`w_i = f(x_i)/q(x_i)`:

.. math::
    \hat I = \frac1N \sum_i w_i,\qquad
    \sigma_{\hat I} = \frac{\mathrm{std}(w)}{\sqrt N},\qquad
    \mathrm{Var}_q\!\left[\frac fq\right] = \mathbb E_q\!\left[\frac{f^2}{q^2}\right] - I^2 .

The variance vanishes for :math:`q = f/I`. A flow :math:`q_\theta` on the unit hypercube
(spline couplings, uniform base: :class:`~lhcbnn.flows.INN` with ``bounds=(0, 1)``) is
trained by the gradient of this variance. Since
:math:`\partial_\theta \mathbb E_q[f^2/q^2] = \partial_\theta \int f^2/q_\theta\,dx
= -\mathbb E_q[(f/q)^2\,\partial_\theta \log q_\theta]`, the points are drawn from the flow
without gradient and the surrogate loss

.. math::
    L(\theta) = -\frac{1}{N}\sum_i \Big(\frac{w_i}{\bar w}\Big)^2 \log q_\theta(x_i),
    \qquad x_i \sim q_\theta \ \text{(detached)},

has the gradient of :math:`\mathrm{Var}_q[f/q]/\bar w^2` (the batch mean
:math:`\bar w` only rescales the step). This is the variance (Pearson :math:`\chi^2`) loss
of i-flow (Gao, Isaacson, Krause, arXiv:2001.05486) and MadNIS (Heimel et al.,
arXiv:2212.06172).

Figures of merit, all at a fixed number of integrand calls: the relative standard deviation
of the weights :math:`\mathrm{std}(w)/\langle w\rangle` (the error of :math:`\hat I` is
this over :math:`\sqrt N`), and the unweighting efficiency
:math:`\epsilon = \langle w\rangle / w_\text{max}`, where the maximum weight is the median
of the maxima of replicas of the sample, as Gao, Höche, Isaacson, Krause, Schulz do
(arXiv:2001.10028): the plain maximum of one sample is set by its single largest outlier
and keeps growing with the sample.

Baselines: flat sampling (:math:`q = 1`) and VEGAS (Lepage; the ``vegas`` package), whose
adapted grid is a product of one-dimensional densities, sampled from as an importance map
(:func:`vegas_weights`), and VEGAS with its adaptive stratified sampling
(:func:`vegas_stratified`, vegas+), which gives an error but no weights.

Integrands: :func:`camel` (two Gaussians on the diagonal, known integral) and
:class:`GluonCrossSection`, the gg -> ggg cross section of chapter 6 over a
five-dimensional unit-hypercube parametrisation of three-body phase space
(:func:`three_body_from_unit`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from lhcbnn.data.amplitudes import (
    DEFAULT_CUTS,
    DEFAULT_SQRT_S,
    Cuts,
    passes_cuts,
    squared_me,
)

__all__ = [
    "GEV2_TO_PB",
    "GluonCrossSection",
    "IntegralEstimate",
    "StratifiedEstimate",
    "VariancePath",
    "Comparison",
    "camel",
    "compare_samplers",
    "camel_integral",
    "estimate",
    "flat_weights",
    "flow_weights",
    "three_body_from_unit",
    "train_variance",
    "train_vegas",
    "unweighting_efficiency",
    "vegas_stratified",
    "vegas_weights",
]

GEV2_TO_PB = 0.3893794e9
"""Conversion of a cross section in GeV^-2 to pb: (hbar c)^2 = 0.3893794 GeV^2 mb."""

Integrand = Callable[[Tensor], Tensor]


# --------------------------------------------------------------------------- integrands


def camel(x: Tensor, width: float = 0.2) -> Tensor:
    r"""The camel function on :math:`[0,1]^d` (i-flow, arXiv:2001.05486): two Gaussians
    :math:`\exp(-|x - \mu|^2/w^2)` of width :math:`w` = ``width`` (standard deviation
    :math:`w/\sqrt2`) centred at :math:`\mu_a = (1/3, \dots, 1/3)` and
    :math:`\mu_b = (2/3, \dots, 2/3)`, normalised on :math:`\mathbb R^d`:

    .. math:: f(x) = \frac{1}{2\,(\pi w^2)^{d/2}}
              \Big(e^{-|x-\mu_a|^2/w^2} + e^{-|x-\mu_b|^2/w^2}\Big).

    Shapes: ``x`` ``(n, d)`` -> ``(n,)``. Exact integral over the box: :func:`camel_integral`.
    """
    if not isinstance(x, Tensor) or x.dim() != 2:
        raise ValueError(f"x must be a tensor of shape (n, d), got {getattr(x, 'shape', x)}")
    if not width > 0:
        raise ValueError(f"width must be positive, got {width}")
    dim = x.shape[1]
    norm = -0.5 * dim * math.log(math.pi * width**2)
    log_a = norm - ((x - 1.0 / 3.0) ** 2).sum(1) / width**2
    log_b = norm - ((x - 2.0 / 3.0) ** 2).sum(1) / width**2
    return 0.5 * (log_a.exp() + log_b.exp())


def camel_integral(dim: int, width: float = 0.2) -> float:
    r""":math:`\int_{[0,1]^d}` of :func:`camel`: with :math:`\sigma = w/\sqrt2` both
    Gaussians give :math:`\big[\Phi(\tfrac{2}{3\sigma}) - \Phi(-\tfrac{1}{3\sigma})\big]^d`."""
    sigma = width / math.sqrt(2.0)

    def phi(t: float) -> float:
        return 0.5 * (1.0 + math.erf(t / math.sqrt(2.0)))

    return (phi(2.0 / (3.0 * sigma)) - phi(-1.0 / (3.0 * sigma))) ** dim


def three_body_from_unit(
    u: np.ndarray, sqrt_s: float = DEFAULT_SQRT_S
) -> tuple[np.ndarray, np.ndarray]:
    r"""Map ``u`` ``(n, 5)`` in the unit hypercube to massless 2 -> 3 momenta and the
    phase-space density.

    In the centre-of-mass frame, three-body phase space is (PDG, Kinematics, eq. 49.22)

    .. math::
        d\Phi_3 = \frac{1}{8(2\pi)^5}\, dE_1\, dE_2\, d\alpha\, d\!\cos\beta\, d\gamma ,

    with energies in the Dalitz triangle :math:`E_1, E_2 \le \sqrt s/2 \le E_1 + E_2` and
    Euler angles :math:`(\alpha, \beta, \gamma)` of the event plane. The map is
    :math:`E_1 = \tfrac{\sqrt s}2 u_1`, :math:`E_2 = \tfrac{\sqrt s}{2} - E_1 (1 - u_2)`,
    :math:`\cos\beta = 2u_3 - 1`,
    :math:`\alpha = 2\pi u_4`, :math:`\gamma = 2\pi u_5`, so

    .. math:: \Phi_3\text{-weight}(u) = \frac{(\sqrt s/2)\, E_1\ 8\pi^2}{8 (2\pi)^5},

    whose mean over uniform ``u`` is the volume
    :func:`lhcbnn.data.amplitudes.rambo_weight` ``(3, sqrt_s)`` :math:`= s/(256\pi^3)`.

    Returns ``(momenta (n, 5, 4), weight (n,))``: the two beams along z first, then the
    three outgoing gluons, (E, px, py, pz) in GeV, float64; weight in GeV^2.
    """
    u = np.asarray(u, dtype=np.float64)
    if u.ndim != 2 or u.shape[1] != 5:
        raise ValueError(f"u must have shape (n, 5), got {u.shape}")
    if not np.all(np.isfinite(u)) or np.any((u < 0.0) | (u > 1.0)):
        raise ValueError("u must be finite and inside the unit hypercube [0, 1]^5")
    half = 0.5 * sqrt_s
    e1 = half * u[:, 0]
    e2 = half - e1 * (1.0 - u[:, 1])
    e3 = sqrt_s - e1 - e2
    with np.errstate(divide="ignore", invalid="ignore"):
        cos12 = np.clip((e3**2 - e1**2 - e2**2) / (2.0 * e1 * e2), -1.0, 1.0)
    cos12 = np.where(np.isfinite(cos12), cos12, 1.0)
    sin12 = np.sqrt(1.0 - cos12**2)
    gamma = 2.0 * math.pi * u[:, 4]
    n = u.shape[0]
    body = np.zeros((n, 3, 3))
    body[:, 0, 2] = e1
    body[:, 1, 0] = e2 * sin12 * np.cos(gamma)
    body[:, 1, 1] = e2 * sin12 * np.sin(gamma)
    body[:, 1, 2] = e2 * cos12
    body[:, 2] = -body[:, 0] - body[:, 1]
    cos_b = 2.0 * u[:, 2] - 1.0
    sin_b = np.sqrt(np.clip(1.0 - cos_b**2, 0.0, None))
    alpha = 2.0 * math.pi * u[:, 3]
    ca, sa = np.cos(alpha), np.sin(alpha)
    rotation = np.empty((n, 3, 3))  # R_z(alpha) R_y(beta)
    rotation[:, 0] = np.stack([ca * cos_b, -sa, ca * sin_b], 1)
    rotation[:, 1] = np.stack([sa * cos_b, ca, sa * sin_b], 1)
    rotation[:, 2] = np.stack([-sin_b, np.zeros(n), cos_b], 1)
    space = np.einsum("nij,nkj->nki", rotation, body)
    momenta = np.zeros((n, 5, 4))
    momenta[:, 0] = [half, 0.0, 0.0, half]
    momenta[:, 1] = [half, 0.0, 0.0, -half]
    momenta[:, 2:, 0] = np.stack([e1, e2, e3], 1)
    momenta[:, 2:, 1:] = space
    weight = half * e1 * 8.0 * math.pi**2 / (8.0 * (2.0 * math.pi) ** 5)
    return momenta, weight


class GluonCrossSection:
    r"""The gg -> ggg cross section as an integrand on :math:`[0,1]^5`, in pb.

    .. math::
        \sigma = \frac{1}{2s}\,\frac{1}{3!} \int d\Phi_3\,
        \overline{|\mathcal M|^2}\,\Theta_\text{cuts}
        = \int_{[0,1]^5} du\ f(u),\qquad
        f(u) = \frac{\Phi_3\text{-weight}(u)\,\overline{|\mathcal M|^2}(p(u))\,
        \Theta_\text{cuts}}{2s\cdot 3!}\times 0.3894\cdot 10^9\ \mathrm{pb\,GeV^2},

    with the full-colour tree amplitude of chapter 6
    (:func:`lhcbnn.data.amplitudes.squared_me`, :math:`g^2 = 4\pi\alpha_s`), the phase-space
    map :func:`three_body_from_unit` and the chapter-6 cuts (:class:`Cuts`). The cuts keep
    the integrand finite; its peaks sit at the cut boundaries (soft and collinear gluons).

    Calling it with ``u`` ``(n, 5)`` (tensor or array) returns ``(n,)`` of the same kind
    (a tensor keeps its dtype and device). ``n_calls`` counts the points evaluated.
    """

    dim = 5

    def __init__(
        self, sqrt_s: float = DEFAULT_SQRT_S, alpha_s: float = 0.118, cuts: Cuts = DEFAULT_CUTS
    ) -> None:
        if not (math.isfinite(sqrt_s) and sqrt_s > 0):
            raise ValueError(f"sqrt_s must be positive, got {sqrt_s}")
        if not (math.isfinite(alpha_s) and alpha_s > 0):
            raise ValueError(f"alpha_s must be positive, got {alpha_s}")
        self.sqrt_s = float(sqrt_s)
        self.alpha_s = float(alpha_s)
        self.cuts = cuts
        self.n_calls = 0

    def __call__(self, u: Tensor | np.ndarray) -> Tensor | np.ndarray:
        as_tensor = isinstance(u, Tensor)
        values = np.asarray(u.detach().cpu().double().numpy() if as_tensor else u, np.float64)
        momenta, weight = three_body_from_unit(values, self.sqrt_s)
        self.n_calls += values.shape[0]
        result = np.zeros(values.shape[0])
        keep = passes_cuts(momenta, self.cuts)
        if keep.any():
            coupling = math.sqrt(4.0 * math.pi * self.alpha_s)
            me = squared_me(momenta[keep], coupling=coupling)
            s = self.sqrt_s**2
            result[keep] = weight[keep] * me / (2.0 * s * 6.0) * GEV2_TO_PB
        if as_tensor:
            return torch.as_tensor(result, dtype=u.dtype, device=u.device)
        return result


# --------------------------------------------------------------------------- estimates


@dataclass(frozen=True)
class IntegralEstimate:
    """An importance-sampling estimate from ``n_calls`` weights.

    value: :math:`\\hat I = \\langle w\\rangle`; error: :math:`\\mathrm{std}(w)/\\sqrt N`;
    rel_std: :math:`\\mathrm{std}(w)/\\langle w\\rangle` (per call, independent of N);
    efficiency: unweighting efficiency over replicas (:func:`unweighting_efficiency`).
    """

    value: float
    error: float
    rel_std: float
    efficiency: float
    n_calls: int


def _weights_array(w: object) -> np.ndarray:
    if isinstance(w, Tensor):
        w = w.detach().cpu().double().numpy()
    array = np.asarray(w, dtype=np.float64)
    if array.ndim != 1 or array.size < 2:
        raise ValueError(f"weights must have shape (n,) with n >= 2, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("weights contain NaN or infinite values")
    if np.any(array < 0):
        raise ValueError("weights must be >= 0 (a non-negative integrand)")
    if not array.sum() > 0:
        raise ValueError("all weights are zero: the sampler never hit the integrand")
    return array


def unweighting_efficiency(w: object, n_replicas: int = 10) -> float:
    r"""Unweighting efficiency :math:`\epsilon = \langle w\rangle / w_\text{max}` of weights
    ``w`` ``(n,)``, with :math:`w_\text{max}` the median over ``n_replicas`` equal parts
    of the sample of each part's maximum weight (arXiv:2001.10028, sec. III).

    Hit-or-miss unweighting keeps an event with probability :math:`w/w_\text{max}`, so
    :math:`\epsilon` is the fraction of calls that become unweighted events. The median
    over replicas keeps one outlier from setting :math:`w_\text{max}`; events with
    :math:`w > w_\text{max}` (overweights) are then kept with weight :math:`w/w_\text{max}`.
    """
    array = _weights_array(w)
    if isinstance(n_replicas, bool) or not isinstance(n_replicas, int) or n_replicas < 1:
        raise ValueError(f"n_replicas must be a positive integer, got {n_replicas!r}")
    if array.size < n_replicas:
        raise ValueError(f"{array.size} weights cannot make {n_replicas} replicas")
    maxima = [part.max() for part in np.array_split(array, n_replicas)]
    return float(array.mean() / np.median(maxima))


def estimate(w: object, n_replicas: int = 10) -> IntegralEstimate:
    r""":class:`IntegralEstimate` from importance weights ``w = f(x)/q(x)`` ``(n,)``,
    :math:`x \sim q`: :math:`\hat I = \langle w\rangle`,
    :math:`\sigma_{\hat I} = \mathrm{std}(w)/\sqrt N` (module docstring)."""
    array = _weights_array(w)
    mean = float(array.mean())
    std = float(array.std(ddof=1))
    return IntegralEstimate(
        value=mean,
        error=std / math.sqrt(array.size),
        rel_std=std / mean,
        efficiency=unweighting_efficiency(array, n_replicas),
        n_calls=int(array.size),
    )


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    return n


def flat_weights(f: Integrand, dim: int, n: int, seed: int = 0) -> Tensor:
    """Weights ``f(x)`` ``(n,)`` of ``n`` uniform points in ``[0, 1]^dim`` (q = 1)."""
    x = torch.rand(_check_n(n), dim, generator=_generator(seed), dtype=torch.float64)
    return torch.as_tensor(f(x)).double()


@torch.no_grad()
def flow_weights(f: Integrand, flow: nn.Module, n: int, seed: int = 0) -> Tensor:
    """Weights ``f(x)/q(x)`` ``(n,)`` of ``n`` points from ``flow`` (an INN on ``[0, 1]^d``).

    The flow's density comes with its samples (the log-determinant of the inverse pass),
    so each point costs one integrand call.
    """
    reference = next(flow.parameters())
    z = flow.domain.base_sample(_check_n(n), _generator(seed), reference)
    x, log_det = flow.inverse(z)
    log_q = flow.domain.base_log_prob(z) - log_det
    values = torch.as_tensor(f(x.double())).double().to(x.device)
    return values / log_q.double().exp()


def _adapted_vegas(
    f: Integrand, dim: int, n_iterations: int, n_calls: int, seed: int
) -> tuple[object, object]:
    """A ``vegas.Integrator`` on ``[0, 1]^dim`` adapted to ``f`` by ``n_iterations`` x
    ``n_calls`` calls with seeded random numbers, and ``f`` as its batch integrand."""
    import vegas

    generator = np.random.default_rng(seed)

    def uniform(shape: tuple[int, ...]) -> np.ndarray:
        return generator.random(shape)

    @vegas.batchintegrand
    def batch(x: np.ndarray) -> np.ndarray:
        return np.asarray(torch.as_tensor(f(torch.as_tensor(x))).double().numpy())

    integrator = vegas.Integrator([[0.0, 1.0]] * dim, ran_array_generator=uniform)
    integrator(batch, nitn=n_iterations, neval=n_calls)
    return integrator, batch


def train_vegas(
    f: Integrand, dim: int, n_iterations: int = 10, n_calls: int = 10_000, seed: int = 0
) -> object:
    """Adapt a VEGAS grid to ``f`` on ``[0, 1]^dim``: ``n_iterations`` iterations of
    ``n_calls`` integrand calls each (``vegas.Integrator``, default damping ``alpha=0.5``).
    Returns the adapted ``vegas.AdaptiveMap`` (a product of one-dimensional densities).
    """
    integrator, _ = _adapted_vegas(f, dim, n_iterations, n_calls, seed)
    return integrator.map


def vegas_weights(f: Integrand, grid: object, n: int, seed: int = 0) -> Tensor:
    """Weights ``f(x) J(y)`` ``(n,)`` of ``n`` points ``x = map(y)``, ``y`` uniform, from the
    VEGAS grid of :func:`train_vegas` (the grid used as an importance-sampling map)."""
    n = _check_n(n)
    dim = grid.dim
    y = np.random.default_rng(seed).random((n, dim))
    x = np.empty_like(y)
    jac = np.empty(n)
    grid.map(y, x, jac)
    x = np.clip(x, 0.0, 1.0)
    values = torch.as_tensor(f(torch.as_tensor(x))).double()
    return values * torch.as_tensor(jac)


@dataclass(frozen=True)
class StratifiedEstimate:
    """The ``vegas`` package's own estimate (adaptive stratified sampling, vegas+) from
    ``n_calls`` calls: value, error, and ``rel_std_equivalent`` = error / value * sqrt(N),
    the std(w)/<w> an i.i.d. sampler would need for the same error. No weights to unweight."""

    value: float
    error: float
    rel_std_equivalent: float
    n_calls: int


def vegas_stratified(
    f: Integrand,
    dim: int,
    n_iterations: int = 10,
    n_calls: int = 10_000,
    n_eval: int = 100_000,
    seed: int = 0,
) -> StratifiedEstimate:
    """VEGAS as its authors run it: adapt grid and stratification with ``n_iterations`` x
    ``n_calls`` calls (as :func:`train_vegas`), then one non-adapting iteration of ``n_eval``
    calls with stratified sampling (``vegas.Integrator``, vegas+: Lepage, arXiv:2009.05112).
    Stratified points are not independent draws from one density, so they have no
    importance weights to unweight; compare by the error at equal calls."""
    integrator, batch = _adapted_vegas(f, dim, n_iterations, n_calls, seed)
    result = integrator(batch, nitn=1, neval=_check_n(n_eval), adapt=False)
    value, error = float(result.mean), float(result.sdev)
    n_used = int(integrator.last_neval) if hasattr(integrator, "last_neval") else n_eval
    return StratifiedEstimate(value, error, error / value * math.sqrt(n_used), n_used)


# --------------------------------------------------------------------------- training


@dataclass
class VariancePath:
    """Record of :func:`train_variance`: steps, the relative std of the weights per batch
    (an estimate of :math:`\\sqrt{\\mathrm{Var}_q[f/q]}/I`), integrand calls, seconds."""

    step: list[int] = field(default_factory=list)
    rel_std: list[float] = field(default_factory=list)
    n_calls: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def train_variance(
    flow: nn.Module,
    f: Integrand,
    *,
    n_steps: int = 500,
    batch_size: int = 1024,
    lr: float = 3e-3,
    seed: int = 0,
    max_grad_norm: float = 10.0,
    record_every: int = 50,
) -> VariancePath:
    r"""Train ``flow`` (an INN on ``[0, 1]^d`` with a uniform base) by the variance loss.

    Each step draws ``batch_size`` points from the flow without gradient, evaluates
    :math:`w = f/q`, and descends the surrogate
    :math:`-\langle (w/\bar w)^2 \log q_\theta(x)\rangle` (module docstring; arXiv:2001.05486,
    2212.06172), with Adam, a cosine learning-rate decay over ``n_steps`` and gradient
    clipping. ``n_steps * batch_size`` integrand calls in all. The global random state is
    left as it was; ``seed`` fixes the run.

    Returns the :class:`VariancePath`; the flow is left in evaluation mode.

    Raises:
        ValueError: the flow is not a unit-hypercube flow with a uniform base, or bad sizes.
        FloatingPointError: the loss became NaN or infinite, or no point hit the integrand.
    """
    if getattr(flow, "bounds", None) != (0.0, 1.0) or getattr(flow, "base", None) != "uniform":
        raise ValueError("the variance loss needs INN(dim, bounds=(0, 1)) with a uniform base")
    for name, value in (("n_steps", n_steps), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be positive, got {lr}")
    reference = next(flow.parameters())
    optimizer = torch.optim.Adam(flow.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, n_steps)
    generator = _generator(seed)
    path = VariancePath()
    start = time.perf_counter()
    flow.train()
    for step in range(1, n_steps + 1):
        with torch.no_grad():
            z = flow.domain.base_sample(batch_size, generator, reference)
            x, _ = flow.inverse(z)
        log_q = flow.log_prob(x)
        with torch.no_grad():
            w = torch.as_tensor(f(x.double())).double().to(x.device) / log_q.double().exp()
            mean = w.mean()
            if not (torch.isfinite(w).all() and mean > 0):
                raise FloatingPointError(
                    f"weights not finite or all zero at step {step}: the flow missed the "
                    "integrand; lower lr or use a larger batch"
                )
            scaled = (w / mean).to(log_q.dtype)
        loss = -(scaled**2 * log_q).mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the variance loss became {float(loss)} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(flow.parameters(), max_grad_norm)
        optimizer.step()
        scheduler.step()
        if step % record_every == 0 or step == n_steps:
            path.step.append(step)
            path.rel_std.append(float(w.std() / mean))
            path.n_calls.append(step * batch_size)
            path.seconds.append(time.perf_counter() - start)
    flow.eval()
    return path


@dataclass
class Comparison:
    """Flat sampling, VEGAS and a flow on one integrand at equal integrand calls.

    estimates: ``{"flat", "vegas", "flow"}`` -> :class:`IntegralEstimate` from ``n_eval``
    fresh calls each; training_calls: calls spent adapting VEGAS and training the flow
    (the same for both); path: the flow's :class:`VariancePath`; seconds: wall time of
    adapting VEGAS and of training the flow; weights: the ``n_eval`` weights of each sampler
    ``(n_eval,)`` (numpy float64).
    """

    estimates: dict[str, IntegralEstimate]
    training_calls: int
    path: VariancePath
    seconds: dict[str, float]
    weights: dict[str, np.ndarray]

    def variance_ratio(self, sampler: str, baseline: str) -> float:
        """:math:`\\mathrm{Var}[w]/\\langle w\\rangle^2` of ``sampler`` over ``baseline``."""
        return (self.estimates[sampler].rel_std / self.estimates[baseline].rel_std) ** 2


def compare_samplers(
    f: Integrand,
    flow: nn.Module,
    *,
    n_steps: int,
    batch_size: int,
    n_eval: int,
    lr: float = 3e-3,
    vegas_iterations: int = 10,
    seed: int = 0,
) -> Comparison:
    """Train ``flow`` by :func:`train_variance` (``n_steps * batch_size`` calls), adapt VEGAS
    with the same number of calls (``vegas_iterations`` iterations), then estimate the
    integral with ``n_eval`` calls each from flat sampling, the VEGAS grid and the flow.

    ``seed`` fixes everything: training seed ``seed``, evaluation seeds ``seed + 1000``.
    """
    dim = flow.dim
    training_calls = n_steps * batch_size
    per_iteration = training_calls // vegas_iterations
    start = time.perf_counter()
    grid = train_vegas(f, dim, vegas_iterations, per_iteration, seed=seed)
    vegas_seconds = time.perf_counter() - start
    start = time.perf_counter()
    path = train_variance(flow, f, n_steps=n_steps, batch_size=batch_size, lr=lr, seed=seed)
    flow_seconds = time.perf_counter() - start
    evaluation = seed + 1000
    weights = {
        "flat": flat_weights(f, dim, n_eval, seed=evaluation).cpu().numpy(),
        "vegas": vegas_weights(f, grid, n_eval, seed=evaluation).cpu().numpy(),
        "flow": flow_weights(f, flow, n_eval, seed=evaluation).cpu().numpy(),
    }
    estimates = {sampler: estimate(w) for sampler, w in weights.items()}
    seconds = {"vegas": vegas_seconds, "flow": flow_seconds}
    return Comparison(estimates, training_calls, path, seconds, weights)
