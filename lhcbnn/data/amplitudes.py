r"""Exact labels over phase space: RAMBO points and the tree-level gg -> ggg squared amplitude.

Phase space
    :func:`rambo` draws massless n-body momenta flat in Lorentz-invariant phase space
    (Kleiss, Stirling, Ellis, Comput. Phys. Commun. 40 (1986) 359). Every point carries the same
    weight, the phase-space volume

    .. math:: \Phi_n(s) = \int \prod_i \frac{d^3p_i}{(2\pi)^3 2E_i}\,(2\pi)^4\delta^4(P - \sum p_i)
              = (2\pi)^{4-3n} \left(\frac{\pi}{2}\right)^{n-1}
                \frac{s^{n-2}}{(n-1)!\,(n-2)!}.

    :func:`phase_space` adds the two incoming beams along z and applies acceptance cuts.

Squared matrix element
    For n gluons the colour decomposition :math:`\mathcal M = g^{n-2} \sum_{\sigma\in S_n/Z_n}
    \mathrm{Tr}(T^{a_{\sigma_1}}\cdots T^{a_{\sigma_n}}) A(\sigma_1,\dots,\sigma_n)` with
    :math:`\mathrm{Tr}(T^aT^b) = \delta^{ab}` gives, summed over colours,

    .. math:: \sum_{\rm col} |\mathcal M|^2 = g^{2n-4} N^{n-2} (N^2-1)
              \sum_{\sigma\in S_n/Z_n} |A(\sigma)|^2 ,

    exact (no subleading colour terms) for n = 4 and 5 (Mangano, Parke, Phys. Rept. 200 (1991)
    301). For n <= 5 every non-vanishing tree helicity amplitude is MHV or anti-MHV, given by the
    Parke-Taylor formula (Parke, Taylor, PRL 56 (1986) 2459), all momenta outgoing:

    .. math:: |A(1^+\dots i^-\dots j^-\dots n^+)|^2
              = \frac{|\langle ij\rangle|^8}{|\langle 12\rangle \langle 23\rangle\cdots
                \langle n1\rangle|^2} = \frac{s_{ij}^4}{|s_{12} s_{23} \cdots s_{n1}|},
              \qquad |\langle ij\rangle|^2 = |s_{ij}| = |2 k_i\cdot k_j| .

    Summed over helicities, :math:`\sum_h |A(\sigma)|^2 = c_n \sum_{i<j} s_{ij}^4 /
    \prod_k |s_{\sigma_k \sigma_{k+1}}|` with :math:`c_4 = 1` (the 6 configurations with two
    negative helicities are both MHV and anti-MHV) and :math:`c_5 = 2` (10 MHV + 10 anti-MHV).
    The physical 2 -> n-2 process is obtained by crossing: the incoming momenta enter with a
    minus sign, :math:`k_{1,2} = -p_{1,2}`. The n = 4 case reproduces the textbook
    :math:`gg\to gg` result :math:`\overline{|\mathcal M|^2} = \frac{9}{2} g^4
    (3 - tu/s^2 - su/t^2 - st/u^2)`.

    :func:`squared_me` returns this full-colour result, averaged over the colours and helicities
    of the two incoming gluons (divided by :math:`4 (N^2-1)^2`) and summed over the outgoing
    ones, with :math:`g = 1` by default. The identical-particle factor :math:`1/(n-2)!` is not
    included (it belongs to the cross section). Units: :math:`\mathrm{GeV}^{-2}` for gg -> ggg.
    :func:`colour_ordered` returns the helicity-summed :math:`|A(\sigma)|^2` of one ordering.

The tests check this normalisation against the textbook gg -> gg result, the n = 5 result
against its soft limit onto gg -> gg, and the Parke-Taylor sum against explicit complex spinor
products and a configuration worked out by hand.

The soft and collinear regions, where :math:`|\mathcal M|^2` diverges, are removed by the cuts
of :class:`Cuts` (transverse momentum, pseudorapidity, Delta R between outgoing gluons).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = [
    "Cuts",
    "DEFAULT_CUTS",
    "DEFAULT_SQRT_S",
    "PhaseSpacePoints",
    "rambo",
    "rambo_weight",
    "phase_space",
    "passes_cuts",
    "invariants",
    "colour_ordered",
    "squared_me",
    "minkowski_dot",
]

DEFAULT_SQRT_S = 500.0
_METRIC = np.array([1.0, -1.0, -1.0, -1.0])


@dataclass(frozen=True)
class Cuts:
    """Acceptance cuts on the outgoing momenta (the beams are along z).

    Attributes:
        pt_min: minimal transverse momentum of every outgoing parton [GeV].
        eta_max: maximal absolute pseudorapidity of every outgoing parton.
        delta_r_min: minimal Delta R = sqrt(Delta eta^2 + Delta phi^2) between outgoing partons.
    """

    pt_min: float = 20.0
    eta_max: float = 2.5
    delta_r_min: float = 0.4

    def __post_init__(self) -> None:
        for name in ("pt_min", "eta_max", "delta_r_min"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name} must be finite and >= 0, got {value}")


DEFAULT_CUTS = Cuts()


class PhaseSpacePoints(NamedTuple):
    """Points from :func:`phase_space`.

    momenta: (n, 2 + n_final, 4) float64, (E, px, py, pz) in GeV, the two incoming first.
    weight: (n,) float64. Without cuts, the RAMBO weight (the phase-space volume, equal for all
        points). With cuts, that volume times the accepted fraction of generated points, so that
        ``mean(weight * f)`` estimates the integral of f over the accepted phase space.
    """

    momenta: np.ndarray
    weight: np.ndarray


def _check_count(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_sqrt_s(sqrt_s: float) -> float:
    if not (np.isfinite(sqrt_s) and sqrt_s > 0.0):
        raise ValueError(f"sqrt_s must be finite and positive, got {sqrt_s}")
    return float(sqrt_s)


def rambo_weight(n_final: int, sqrt_s: float) -> float:
    r"""Massless n-body phase-space volume
    :math:`(2\pi)^{4-3n} (\pi/2)^{n-1} s^{n-2} / ((n-1)!(n-2)!)` (GeV^(2n-4))."""
    n = _check_count("n_final", n_final, 2)
    s = _check_sqrt_s(sqrt_s) ** 2
    return (
        (2.0 * math.pi) ** (4 - 3 * n)
        * (math.pi / 2.0) ** (n - 1)
        * s ** (n - 2)
        / (math.factorial(n - 1) * math.factorial(n - 2))
    )


def rambo(
    n: int, n_final: int = 3, sqrt_s: float = DEFAULT_SQRT_S, seed: int | np.random.Generator = 0
) -> tuple[np.ndarray, float]:
    """``n`` massless ``n_final``-body events in the centre-of-mass frame (RAMBO).

    Returns ``(momenta (n, n_final, 4) float64 as (E, px, py, pz) in GeV, weight)``; the weight
    is :func:`rambo_weight`, the same for every event (massless RAMBO is exactly flat).
    Algorithm: isotropic momenta q_i with energy density q e^{-q}, then the Lorentz boost and
    rescaling that bring their sum to (sqrt_s, 0, 0, 0).
    """
    n = _check_count("n", n, 1)
    n_final = _check_count("n_final", n_final, 2)
    sqrt_s = _check_sqrt_s(sqrt_s)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    u = rng.random((4, n, n_final))
    cos_theta = 2.0 * u[0] - 1.0
    sin_theta = np.sqrt(1.0 - cos_theta**2)
    phi = 2.0 * math.pi * u[1]
    q0 = -np.log(u[2] * u[3] + np.finfo(float).tiny)
    q = np.stack(
        [q0, q0 * sin_theta * np.cos(phi), q0 * sin_theta * np.sin(phi), q0 * cos_theta], axis=-1
    )
    total = q.sum(axis=1)  # (n, 4)
    mass = np.sqrt(total[:, 0] ** 2 - np.sum(total[:, 1:] ** 2, axis=1))
    b = -total[:, 1:] / mass[:, None]  # (n, 3)
    gamma = total[:, 0] / mass
    a = 1.0 / (1.0 + gamma)
    x = sqrt_s / mass
    b_dot_q = np.sum(b[:, None, :] * q[..., 1:], axis=-1)  # (n, n_final)
    momenta = np.empty_like(q)
    momenta[..., 0] = x[:, None] * (gamma[:, None] * q[..., 0] + b_dot_q)
    momenta[..., 1:] = x[:, None, None] * (
        q[..., 1:] + b[:, None, :] * (q[..., 0] + a[:, None] * b_dot_q)[..., None]
    )
    return momenta, rambo_weight(n_final, sqrt_s)


def _incoming(n: int, sqrt_s: float) -> np.ndarray:
    half = 0.5 * sqrt_s
    beams = np.array([[half, 0.0, 0.0, half], [half, 0.0, 0.0, -half]])
    return np.broadcast_to(beams, (n, 2, 4))


def _check_momenta(momenta: np.ndarray, n_min: int = 4) -> np.ndarray:
    if isinstance(momenta, PhaseSpacePoints):
        momenta = momenta.momenta
    p = np.asarray(momenta, dtype=np.float64)
    if p.ndim != 3 or p.shape[2] != 4 or p.shape[1] < n_min:
        raise ValueError(
            f"momenta must have shape (n, n_particles >= {n_min}, 4) as (E, px, py, pz), "
            f"got {p.shape}"
        )
    return p


def passes_cuts(momenta: np.ndarray, cuts: Cuts = DEFAULT_CUTS) -> np.ndarray:
    """Boolean mask (n,) of events whose outgoing momenta pass ``cuts``.

    ``momenta`` is (n, 2 + n_final, 4) with the two incoming first (they are not cut on).
    """
    p = _check_momenta(momenta, n_min=3)[:, 2:, :]
    pt = np.hypot(p[..., 1], p[..., 2])
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(p[..., 3] / pt)
    phi = np.arctan2(p[..., 2], p[..., 1])
    keep = np.all((pt > cuts.pt_min) & (np.abs(eta) < cuts.eta_max), axis=1)
    for i, j in itertools.combinations(range(p.shape[1]), 2):
        dphi = (phi[:, i] - phi[:, j] + math.pi) % (2.0 * math.pi) - math.pi
        keep &= np.hypot(eta[:, i] - eta[:, j], dphi) > cuts.delta_r_min
    return keep


def phase_space(
    n: int,
    seed: int = 0,
    n_final: int = 3,
    sqrt_s: float = DEFAULT_SQRT_S,
    cuts: Cuts | None = DEFAULT_CUTS,
) -> PhaseSpacePoints:
    """``n`` accepted points of 2 -> ``n_final`` massless phase space at fixed ``sqrt_s`` [GeV].

    Incoming momenta (sqrt_s/2)(1, 0, 0, +-1) come first; the outgoing ones are RAMBO points,
    drawn in batches until ``n`` pass ``cuts`` (``cuts=None``: no cuts). The result depends only
    on ``seed``. Returns :class:`PhaseSpacePoints` ``(momenta (n, 2 + n_final, 4), weight (n,))``;
    the phase space has 3 n_final - 4 dimensions (5 for gg -> ggg).
    """
    n = _check_count("n", n, 1)
    n_final = _check_count("n_final", n_final, 2)
    sqrt_s = _check_sqrt_s(sqrt_s)
    rng = np.random.default_rng(seed)
    accepted, n_generated, n_accepted = [], 0, 0
    while n_accepted < n:
        rate = n_accepted / n_generated if n_generated else 0.5
        if n_generated >= 10**7 and rate < 1e-4:
            raise ValueError(f"fewer than 1e-4 of the points pass {cuts} at sqrt_s = {sqrt_s}")
        batch = max(1024, int(1.2 * (n - n_accepted) / max(rate, 1e-3)))
        final, weight = rambo(batch, n_final, sqrt_s, rng)
        momenta = np.concatenate([_incoming(batch, sqrt_s), final], axis=1)
        n_generated += batch
        if cuts is not None:
            momenta = momenta[passes_cuts(momenta, cuts)]
        accepted.append(momenta)
        n_accepted += momenta.shape[0]
    acceptance = n_accepted / n_generated
    return PhaseSpacePoints(np.concatenate(accepted)[:n], np.full(n, weight * acceptance))


def minkowski_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Minkowski product a^0 b^0 - a.b over the last axis (metric +,-,-,-)."""
    return np.sum(a * b * _METRIC, axis=-1)


def invariants(momenta: np.ndarray) -> np.ndarray:
    """All-outgoing invariants s_ij = 2 k_i.k_j, (n, m, m), with k = (-p_1, -p_2, p_3, ...).

    For massless momenta s_ij = (k_i + k_j)^2; s_12 = s (the squared collision energy) and
    s_1j = -2 p_1.p_j < 0 for outgoing j.
    """
    p = _check_momenta(momenta, n_min=3)
    k = p.copy()
    k[:, :2] *= -1.0
    return 2.0 * np.matmul(k * _METRIC, k.transpose(0, 2, 1))


def _helicity_factor(n_gluons: int) -> int:
    if n_gluons not in (4, 5):
        raise ValueError(
            f"the Parke-Taylor sum is the complete tree amplitude only for 4 or 5 gluons "
            f"(gg -> gg, gg -> ggg); got {n_gluons} momenta"
        )
    return 1 if n_gluons == 4 else 2


def colour_ordered(momenta: np.ndarray, ordering: tuple[int, ...] | None = None) -> np.ndarray:
    r"""Helicity-summed colour-ordered :math:`\sum_h |A(\sigma)|^2`, (n,) in GeV^(8-2m).

    :math:`c_m \sum_{i<j} s_{ij}^4 / \prod_k |s_{\sigma_k\sigma_{k+1}}|` (cyclic), for
    m = 4 or 5 gluons, ``ordering`` a permutation of range(m) (default: the identity).
    """
    p = _check_momenta(momenta)
    n_gluons = p.shape[1]
    factor = _helicity_factor(n_gluons)
    ordering = tuple(range(n_gluons)) if ordering is None else tuple(ordering)
    if sorted(ordering) != list(range(n_gluons)):
        raise ValueError(f"ordering must be a permutation of range({n_gluons}), got {ordering}")
    s = invariants(p)
    upper = np.triu_indices(n_gluons, 1)
    numerator = np.sum(np.square(np.square(s[:, upper[0], upper[1]])), axis=1)
    ring = np.array(ordering)
    denominator = np.prod(np.abs(s[:, ring, np.roll(ring, -1)]), axis=1)
    return factor * numerator / denominator


def _orderings(n_gluons: int) -> np.ndarray:
    """The (n-1)! orderings of S_n / Z_n, first element fixed to 0: (n_orderings, n)."""
    rest = itertools.permutations(range(1, n_gluons))
    return np.array([(0, *perm) for perm in rest])


def squared_me(
    momenta: np.ndarray, coupling: float = 1.0, n_colours: int = 3, average: bool = True
) -> np.ndarray:
    r"""Tree-level :math:`|\mathcal M|^2` of gg -> ggg (or gg -> gg), full colour, (n,).

    :math:`g^{2m-4} N^{m-2}(N^2-1)\, c_m \sum_{i<j} s_{ij}^4 \sum_{\sigma\in S_m/Z_m}
    1/\prod_k |s_{\sigma_k \sigma_{k+1}}|` for m gluons (see the module docstring), divided by
    :math:`4 (N^2-1)^2` when ``average`` (initial-state average). ``momenta`` is
    (n, m, 4) with the two incoming gluons first, physical (positive-energy) momenta, or the
    :class:`PhaseSpacePoints` returned by :func:`phase_space`.
    Units GeV^(8-2m): GeV^-2 for gg -> ggg.
    """
    p = _check_momenta(momenta)
    n_gluons = p.shape[1]
    factor = _helicity_factor(n_gluons)
    if not np.isfinite(coupling):
        raise ValueError(f"coupling must be finite, got {coupling}")
    n_colours = _check_count("n_colours", n_colours, 2)
    s = invariants(p)
    upper = np.triu_indices(n_gluons, 1)
    numerator = np.sum(np.square(np.square(s[:, upper[0], upper[1]])), axis=1)
    # Products of |s| around each ring, built pair by pair on contiguous (n,) columns. A ring
    # and its reflection have the same product: sum over one of each pair, times 2.
    abs_s = np.ascontiguousarray(np.abs(s).transpose(1, 2, 0))
    rings = [ring for ring in _orderings(n_gluons) if ring[1] < ring[-1]]
    sum_orderings = np.zeros(p.shape[0])
    for ring in rings:
        product = abs_s[ring[-1], ring[0]].copy()
        for a, b in itertools.pairwise(ring):
            product *= abs_s[a, b]
        sum_orderings += 1.0 / product
    sum_orderings *= 2.0
    colour = n_colours ** (n_gluons - 2) * (n_colours**2 - 1)
    result = coupling ** (2 * n_gluons - 4) * colour * factor * numerator * sum_orderings
    if average:
        result = result / (4.0 * (n_colours**2 - 1) ** 2)
    return result
