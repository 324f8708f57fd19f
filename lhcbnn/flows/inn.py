r"""The invertible network (INN) of chapter 8: coupling blocks on a domain with a base density.

.. math::
    \log p(x) = \log p_Z\big(f(x)\big) + \log\Big|\det\frac{\partial f(x)}{\partial x}\Big|,
    \qquad f = c_B \circ \dots \circ c_1 \circ \text{preprocessing},

trained by minimising :math:`-\langle\log p(x)\rangle` over the data (Dinh et al.,
arXiv:1605.08803; Ardizzone et al., arXiv:1808.04730). With ``bayesian=True`` every coupling
network is made of :class:`~lhcbnn.VBLinear` layers: the Bayesian INN of Bellagente,
Haussmann, Luchmann and Plehn (arXiv:2104.04543). One weight draw is one flow, one density;
the spread of the densities over weight draws is the flow's sigma_pred.

With ``n_condition > 0`` every coupling network also reads a condition :math:`c`, and the
flow is a conditional density :math:`p(x\mid c)` (the conditional INN, Ardizzone et al.,
arXiv:1907.02392): the theory parameter of chapter 10, the detector-level event of the
unfolding in chapter 11.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lhcbnn.flows.couplings import AffineCoupling, Coupling, SplineCoupling
from lhcbnn.flows.domain import BoxLogit, BoxUniform, Domain, RealDomain

__all__ = ["INN"]


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


class INN(nn.Module):
    r"""A normalizing flow made of coupling blocks, optionally Bayesian.

    Args:
        dim: number of coordinates (>= 2: a coupling needs a part to condition on).
        n_blocks: number of coupling blocks; they alternate which coordinates move
            (block k transforms the coordinates ``roll(arange(dim), k)[dim // 2:]``).
        hidden: hidden layer sizes of each coupling network.
        bayesian: build the coupling networks from :class:`~lhcbnn.VBLinear`.
        coupling: ``"spline"`` (rational-quadratic, arXiv:1906.04032) or ``"affine"``
            (RealNVP, arXiv:1605.08803).
        bounds: ``None`` for data on the real line, or ``(low, high)`` for data in the box
            ``[low, high]^dim`` (the wedge and kicker ramps live on ``(0, 1)``).
        base: ``"uniform"`` (box only, spline couplings on the unit box) or
            ``"gaussian"`` (with a box: a logit map to the real line first). Default:
            uniform for a box with splines, else Gaussian.
        n_bins: spline bins.
        tail_bound: on the real line the splines act on ``[-tail_bound, tail_bound]`` and
            are the identity outside.
        clamp: soft bound of the affine log-scale per block.
        prior_sigma: prior width of the Bayesian weights.
        n_condition: size of the condition :math:`c` of a conditional flow
            :math:`p(x\mid c)` (0: unconditional). A conditional flow may have ``dim = 1``.

    The defaults (spline couplings; a uniform base for a box) were chosen by measurement on
    the wedge ramp and the Gaussian ring: ``benchmarks/flow_choice.md``.

    Shapes: data ``x`` ``(n, dim)``; latent ``z`` ``(n, dim)``; condition ``c``
    ``(n, n_condition)``; log-densities ``(n,)``.
    """

    def __init__(
        self,
        dim: int,
        n_blocks: int = 6,
        hidden: tuple[int, ...] = (64, 64),
        bayesian: bool = False,
        *,
        coupling: str = "spline",
        bounds: tuple[float, float] | None = None,
        base: str | None = None,
        n_bins: int = 8,
        tail_bound: float = 5.0,
        clamp: float = 2.0,
        prior_sigma: float = 1.0,
        n_condition: int = 0,
    ) -> None:
        super().__init__()
        self.n_condition = _positive_int("n_condition", n_condition, 0)
        self.dim = _positive_int("dim", dim, 1 if self.n_condition else 2)
        self.n_blocks = _positive_int("n_blocks", n_blocks)
        hidden = tuple(hidden)
        for size in hidden:
            _positive_int("each hidden size", size)
        if coupling not in ("spline", "affine"):
            raise ValueError(f"coupling must be 'spline' or 'affine', got {coupling!r}")
        if base is None:
            base = "uniform" if bounds is not None and coupling == "spline" else "gaussian"
        if base not in ("uniform", "gaussian"):
            raise ValueError(f"base must be 'uniform' or 'gaussian', got {base!r}")
        if base == "uniform" and (bounds is None or coupling != "spline"):
            raise ValueError("a uniform base needs bounds=(low, high) and spline couplings")
        self.bayesian = bool(bayesian)
        self.coupling = coupling
        self.base = base
        self.bounds = None if bounds is None else (float(bounds[0]), float(bounds[1]))
        self.domain: Domain
        if bounds is None:
            self.domain = RealDomain(dim)
        elif base == "uniform":
            self.domain = BoxUniform(dim, *self.bounds)
        else:
            self.domain = BoxLogit(dim, *self.bounds)
        interval = self.domain.coupling_interval or (-tail_bound, tail_bound, True)
        blocks: list[Coupling] = []
        for k in range(n_blocks):
            order = torch.roll(torch.arange(dim), k).tolist()
            conditioning, transformed = order[: dim // 2], order[dim // 2 :]
            if coupling == "affine":
                block: Coupling = AffineCoupling(
                    conditioning,
                    transformed,
                    hidden,
                    clamp=clamp,
                    bayesian=bayesian,
                    prior_sigma=prior_sigma,
                    n_condition=self.n_condition,
                )
            else:
                block = SplineCoupling(
                    conditioning,
                    transformed,
                    hidden,
                    n_bins=n_bins,
                    low=interval[0],
                    high=interval[1],
                    tails=interval[2],
                    bayesian=bayesian,
                    prior_sigma=prior_sigma,
                    n_condition=self.n_condition,
                )
            blocks.append(block)
        self.blocks = nn.ModuleList(blocks)

    def _reference(self) -> Tensor:
        return next(self.parameters())

    def _as_input(self, x: object, name: str) -> Tensor:
        reference = self._reference()
        if not isinstance(x, Tensor):
            try:
                x = torch.as_tensor(x)
            except (TypeError, ValueError, RuntimeError) as error:
                raise TypeError(f"{name} cannot be converted to a tensor: {error}") from error
        if not x.is_floating_point():
            x = x.to(reference.dtype)
        return x.to(device=reference.device, dtype=reference.dtype)

    def _condition(self, condition: object, n: int) -> Tensor | None:
        """The condition as ``(n, n_condition)`` on the model's device, or None.

        A ``(n_condition,)`` condition is broadcast to all ``n`` points. Raises ValueError
        when a conditional flow gets none, an unconditional one gets one, or for a wrong
        shape or NaN/inf entries.
        """
        if not self.n_condition:
            if condition is not None:
                raise ValueError("this flow is unconditional (n_condition=0) but got a condition")
            return None
        if condition is None:
            raise ValueError(
                f"this flow is conditional (n_condition={self.n_condition}): pass condition="
                f" of shape (n, {self.n_condition})"
            )
        c = self._as_input(condition, "condition")
        if c.dim() == 1 and c.shape[0] == self.n_condition:
            c = c.expand(n, self.n_condition)
        if c.dim() != 2 or c.shape != (n, self.n_condition):
            raise ValueError(
                f"condition must have shape ({n}, {self.n_condition}) or "
                f"({self.n_condition},), got {tuple(c.shape)}"
            )
        if not torch.isfinite(c).all():
            raise ValueError("condition contains NaN or infinite values")
        return c

    def forward(self, x: Tensor, condition: object = None) -> tuple[Tensor, Tensor]:
        """Data to latent space: ``(z (n, dim), log|det dz/dx| (n,))``.

        ``condition``: ``(n, n_condition)`` for a conditional flow, else None.
        Raises ValueError for a wrong shape, NaN/inf entries or points outside the box.
        """
        x = self._as_input(x, "x")
        self.domain.check(x, "x")
        c = self._condition(condition, x.shape[0])
        z, log_det = self.domain.preprocess(x)
        for block in self.blocks:
            z, block_log_det = block(z, c)
            log_det = log_det + block_log_det
        return z, log_det

    def inverse(self, z: Tensor, condition: object = None) -> tuple[Tensor, Tensor]:
        """Latent to data space: ``(x (n, dim), log|det dx/dz| (n,))``."""
        z = self._as_input(z, "z")
        Domain.check(self.domain, z, "z")
        c = self._condition(condition, z.shape[0])
        log_det = z.new_zeros(z.shape[0])
        for block in reversed(self.blocks):
            z, block_log_det = block.inverse(z, c)
            log_det = log_det + block_log_det
        x, post_log_det = self.domain.postprocess(z)
        return x, log_det + post_log_det

    def log_prob(self, x: Tensor, condition: object = None) -> Tensor:
        r""":math:`\log p(x) = \log p_Z(f(x)) + \log|\det \partial f/\partial x|`, ``(n,)``.

        For a conditional flow, :math:`\log p(x\mid c)` with ``condition`` ``(n,
        n_condition)``. For a Bayesian INN in training mode each call is one stochastic
        pass; in evaluation mode see :func:`lhcbnn.flows.weight_draw`, in
        :func:`lhcbnn.map_mode` the posterior means are used.
        """
        z, log_det = self.forward(x, condition)
        return self.domain.base_log_prob(z) + log_det

    def nll(self, x: Tensor, condition: object = None) -> Tensor:
        """Mean negative log-likelihood of ``x`` ``(n, dim)``, a scalar (nats per event)."""
        return -self.log_prob(x, condition).mean()

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        condition: object = None,
    ) -> Tensor:
        """``n`` points ``(n, dim)`` from the flow: base samples mapped by :meth:`inverse`.

        ``generator`` (a CPU :class:`torch.Generator`) seeds the base samples; the points
        land on the model's device. For a conditional flow, ``condition`` is ``(n,
        n_condition)`` (one point per row) or ``(n_condition,)`` (all ``n`` points at one
        condition). No gradients are kept.
        """
        n = _positive_int("n", n)
        with torch.no_grad():
            c = self._condition(condition, n)
            z = self.domain.base_sample(n, generator, self._reference())
            x, _ = self.inverse(z, c)
        return x

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, n_blocks={self.n_blocks}, coupling={self.coupling!r}, "
            f"bounds={self.bounds}, base={self.base!r}, bayesian={self.bayesian}, "
            f"n_condition={self.n_condition}"
        )
