"""RAMBO phase space and the exact gg -> ggg squared matrix element."""

import itertools
import math
import time

import numpy as np
import pytest
from scipy import integrate, stats

from lhcbnn.data import amplitudes as amp

SQRT_S = 500.0


@pytest.fixture(scope="module")
def points():
    return amp.phase_space(20_000, seed=3)


# ----------------------------------------------------------------------------- phase space


def test_shapes_conservation_and_masslessness(points):
    momenta, weight = points
    assert momenta.shape == (20_000, 5, 4) and momenta.dtype == np.float64
    assert weight.shape == (20_000,)
    beams = np.broadcast_to(
        [[SQRT_S / 2, 0, 0, SQRT_S / 2], [SQRT_S / 2, 0, 0, -SQRT_S / 2]], (20_000, 2, 4)
    )
    np.testing.assert_array_equal(momenta[:, :2], beams)
    balance = momenta[:, :2].sum(axis=1) - momenta[:, 2:].sum(axis=1)
    assert np.max(np.abs(balance)) < 1e-9 * SQRT_S
    mass_squared = amp.minkowski_dot(momenta, momenta)
    assert np.max(np.abs(mass_squared)) < 1e-9 * SQRT_S**2
    assert np.all(momenta[:, 2:, 0] > 0.0)


def test_phase_space_is_seeded():
    a = amp.phase_space(50, seed=1).momenta
    np.testing.assert_array_equal(a, amp.phase_space(50, seed=1).momenta)
    assert not np.array_equal(a, amp.phase_space(50, seed=2).momenta)


def phase_space_volume_by_recursion(n_final, s):
    """Phi_n(s) from Phi_2 and the factorisation Phi_n(s) = int dM^2/(2 pi) Phi_2(s; M, 0)
    Phi_{n-1}(M^2), with Phi_2(s; M, 0) = (1 - M^2/s) / (8 pi): independent of RAMBO's formula."""
    if n_final == 2:
        return 1.0 / (8.0 * math.pi)
    integrand = lambda m2: (  # noqa: E731
        (1.0 - m2 / s) / (8.0 * math.pi) * phase_space_volume_by_recursion(n_final - 1, m2)
    )
    value, _ = integrate.quad(integrand, 0.0, s)
    return value / (2.0 * math.pi)


@pytest.mark.parametrize("n_final", [2, 3, 4, 5])
def test_rambo_weight_is_the_phase_space_volume(n_final):
    s = SQRT_S**2
    assert amp.rambo_weight(n_final, SQRT_S) == pytest.approx(
        phase_space_volume_by_recursion(n_final, s), rel=1e-10
    )
    _, weight = amp.rambo(10, n_final, SQRT_S, seed=0)
    assert weight == amp.rambo_weight(n_final, SQRT_S)
    # Without cuts phase_space carries the same weight for every point.
    _, weights = amp.phase_space(10, n_final=n_final, cuts=None)
    np.testing.assert_allclose(weights, amp.rambo_weight(n_final, SQRT_S), rtol=1e-15)


def test_rambo_weight_closed_forms():
    assert amp.rambo_weight(2, SQRT_S) == pytest.approx(1 / (8 * math.pi), rel=1e-14)
    assert amp.rambo_weight(3, SQRT_S) == pytest.approx(SQRT_S**2 / (256 * math.pi**3), rel=1e-14)


def test_three_body_points_are_flat_in_the_dalitz_plot():
    """Flat massless 3-body phase space is uniform in x_i = 2 E_i / sqrt(s) over the triangle
    x_1 + x_2 > 1, x_i < 1: the marginal density of x_1 is 2 x_1."""
    final, _ = amp.rambo(100_000, 3, SQRT_S, seed=4)
    x = 2.0 * final[..., 0] / SQRT_S
    np.testing.assert_allclose(x.sum(axis=1), 2.0, rtol=1e-12)
    edges = np.linspace(0.0, 1.0, 21)
    counts, _ = np.histogram(x[:, 0], bins=edges)
    expected = len(x) * (edges[1:] ** 2 - edges[:-1] ** 2)
    chi2 = np.sum((counts - expected) ** 2 / expected)
    assert stats.chi2.sf(chi2, df=19) > 1e-3
    # 2D: uniform over the triangle. Cell (i, j) of width 0.1 spans x1 + x2 in
    # [(i + j) / 10, (i + j + 2) / 10]: inside for i + j >= 10, cut in half for i + j = 9.
    counts_2d, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=[edges[::2], edges[::2]])
    i, j = np.meshgrid(np.arange(10), np.arange(10), indexing="ij")
    area = np.where(i + j >= 10, 0.01, np.where(i + j == 9, 0.005, 0.0))
    assert area.sum() == pytest.approx(0.5)
    inside = area > 0
    assert counts_2d[~inside].sum() == 0
    expected_2d = len(x) * area[inside] / 0.5
    chi2_2d = np.sum((counts_2d[inside] - expected_2d) ** 2 / expected_2d)
    assert stats.chi2.sf(chi2_2d, df=inside.sum() - 1) > 1e-3


def test_two_body_decays_are_isotropic():
    final, _ = amp.rambo(50_000, 2, SQRT_S, seed=5)
    cos_theta = final[:, 0, 3] / final[:, 0, 0]
    assert stats.kstest(cos_theta, "uniform", args=(-1.0, 2.0)).pvalue > 1e-3


def test_cuts_are_applied(points):
    momenta, weight = points
    out = momenta[:, 2:]
    pt = np.hypot(out[..., 1], out[..., 2])
    eta = np.arcsinh(out[..., 3] / pt)
    phi = np.arctan2(out[..., 2], out[..., 1])
    cuts = amp.DEFAULT_CUTS
    assert pt.min() > cuts.pt_min and np.abs(eta).max() < cuts.eta_max
    for i, j in itertools.combinations(range(3), 2):
        dphi = np.angle(np.exp(1j * (phi[:, i] - phi[:, j])))
        assert np.hypot(eta[:, i] - eta[:, j], dphi).min() > cuts.delta_r_min
    # The weight is the volume times the accepted fraction, and the cuts do remove points.
    raw, _ = amp.rambo(100_000, 3, SQRT_S, seed=9)
    beams = np.broadcast_to([[250.0, 0, 0, 250.0], [250.0, 0, 0, -250.0]], (100_000, 2, 4))
    accepted = amp.passes_cuts(np.concatenate([beams, raw], axis=1)).mean()
    assert 0.5 < accepted < 0.99
    assert weight[0] / amp.rambo_weight(3, SQRT_S) == pytest.approx(accepted, abs=0.01)


def test_passes_cuts_on_hand_built_events():
    beams = [[250.0, 0, 0, 250.0], [250.0, 0, 0, -250.0]]

    def event(angles_deg, energies=(200.0, 150.0, 150.0)):
        # Outgoing momenta in the transverse plane (eta = 0) at the given azimuths.
        rows = [
            [e, e * math.cos(math.radians(a)), e * math.sin(math.radians(a)), 0.0]
            for e, a in zip(energies, angles_deg, strict=True)
        ]
        return np.array([beams + rows])

    assert amp.passes_cuts(event((0, 120, 240)))[0]
    # Two gluons 10 degrees (0.17 rad) apart fail Delta R > 0.4.
    assert not amp.passes_cuts(event((0, 175, 185)))[0]
    # A 10 GeV gluon fails pT > 20 GeV.
    assert not amp.passes_cuts(event((0, 120, 240), (10.0, 150.0, 150.0)))[0]


# ----------------------------------------------------------------------------- amplitude

# The hand-built configuration: beams of 1.5 along +-z (sqrt(s) = 3) and three outgoing gluons of
# energy 1 at azimuths 0, 120, 240 degrees in the transverse plane (they sum to zero).
E_BEAM = 1.5
MERCEDES = np.array(
    [
        [[E_BEAM, 0, 0, E_BEAM], [E_BEAM, 0, 0, -E_BEAM]]
        + [[1.0, math.cos(a), math.sin(a), 0.0] for a in (0, 2 * math.pi / 3, 4 * math.pi / 3)]
    ]
)


def test_value_by_hand():
    """All-outgoing k = (-p1, -p2, p3, p4, p5). Invariants s_ij = 2 k_i.k_j:
    s_12 = (p1 + p2)^2 = 9; s_1j = -2 p1.pj = -2 (1.5 * 1 - 0) = -3 for j = 3, 4, 5 (and the
    same for 2); s_34 = 2 (1 - cos 120) = 3. So |s_12| = 9 and the nine other |s_ij| = 3.

    sum_{i<j} s_ij^4 = 9^4 + 9 * 3^4 = 7290. Orderings of S_5/Z_5 (24, 1 fixed first): in 12 of
    them 1 and 2 are neighbours (ring product 9 * 3^4 = 729), in 12 not (3^5 = 243), so
    sum_sigma 1 / prod = 12/729 + 12/243 = 48/729.
    Colour and helicity sum: g^6 N^3 (N^2 - 1) * 2 * 7290 * 48/729 = 27 * 8 * 960 = 207360.
    Average over incoming helicities and colours: 207360 / (4 * 64) = 810.
    One ordering (1 2 3 4 5), helicity-summed: 2 * 7290 / 729 = 20; a single MHV configuration
    with gluons 1 and 2 negative: |<12>|^8 / prod |<i i+1>|^2 = 9^4 / 729 = 9.
    """
    np.testing.assert_allclose(amp.squared_me(MERCEDES, average=False), [207360.0], rtol=1e-12)
    np.testing.assert_allclose(amp.squared_me(MERCEDES), [810.0], rtol=1e-12)
    np.testing.assert_allclose(amp.colour_ordered(MERCEDES), [20.0], rtol=1e-12)
    # The same from explicit spinors (rotated: the spinors below need k^0 + k^3 != 0).
    rotated = rotate(MERCEDES, random_rotation(2))[0]
    np.testing.assert_allclose(
        spinor_mhv_squared(rotated, (0, 1, 2, 3, 4), negative=(0, 1)), 9.0, rtol=1e-12
    )
    # g_s scales it as g^6.
    np.testing.assert_allclose(amp.squared_me(MERCEDES, coupling=2.0), [810.0 * 64], rtol=1e-12)


def random_rotation(seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def rotate(momenta, rotation):
    out = momenta.copy()
    out[..., 1:] = momenta[..., 1:] @ rotation.T
    return out


def boost(momenta, beta):
    """Active Lorentz boost with velocity vector beta (3,) applied to (..., 4) momenta."""
    beta = np.asarray(beta, dtype=float)
    b2 = beta @ beta
    gamma = 1.0 / math.sqrt(1.0 - b2)
    e, p = momenta[..., 0], momenta[..., 1:]
    bp = p @ beta
    out = np.empty_like(momenta)
    out[..., 0] = gamma * (e + bp)
    out[..., 1:] = p + ((gamma - 1.0) * bp / b2 + gamma * e)[..., None] * beta
    return out


def spinor(k):
    """Angle spinor lambda_a of a massless k with k^0 + k^3 != 0; for negative energy
    lambda(k) = i lambda(-k) (analytic continuation of the square root)."""
    if k[0] < 0:
        return 1j * spinor(-k)
    k_plus = k[0] + k[3]
    return np.array([math.sqrt(k_plus), (k[1] + 1j * k[2]) / math.sqrt(k_plus)])


def angle_bracket(ki, kj):
    a, b = spinor(ki), spinor(kj)
    return a[0] * b[1] - a[1] * b[0]


def spinor_mhv_squared(event, ordering, negative):
    """|<ij>^4 / (<s1 s2> <s2 s3> ... <sn s1>)|^2 from explicit complex spinors; event is one
    physical point (m, 4) with the two incoming first."""
    k = event.copy()
    k[:2] *= -1.0
    i, j = negative
    numerator = angle_bracket(k[i], k[j]) ** 4
    denominator = np.prod(
        [angle_bracket(k[a], k[b]) for a, b in zip(ordering, np.roll(ordering, -1), strict=True)]
    )
    return abs(numerator / denominator) ** 2


def test_parke_taylor_from_explicit_spinors(points):
    """The |s|-based implementation equals the Parke-Taylor formula built from complex spinor
    products, summed over the 10 MHV and 10 anti-MHV configurations (|[ij]| = |<ij>| for real
    momenta) and over the 24 colour orderings, for a few random points (rotated so that no
    momentum lies along z)."""
    events = rotate(points.momenta[:4], random_rotation(0))
    for event in events:
        k = event.copy()
        k[:2] *= -1.0
        for a, b in itertools.combinations(range(5), 2):
            s_ab = 2.0 * amp.minkowski_dot(k[a], k[b])
            assert abs(angle_bracket(k[a], k[b])) ** 2 == pytest.approx(abs(s_ab), rel=1e-10)
        total = 0.0
        for rest in itertools.permutations(range(1, 5)):
            ordering = (0, *rest)
            helicity_sum = 2 * sum(
                spinor_mhv_squared(event, ordering, pair)
                for pair in itertools.combinations(range(5), 2)
            )
            assert amp.colour_ordered(event[None], ordering)[0] == pytest.approx(
                helicity_sum, rel=1e-10
            )
            total += helicity_sum
        expected = 27 * 8 * total / (4 * 64)
        assert amp.squared_me(event[None])[0] == pytest.approx(expected, rel=1e-10)


def test_colour_ordered_cyclic_and_reflection_symmetry(points):
    momenta = points.momenta[:500]
    reference = amp.colour_ordered(momenta, (0, 2, 4, 1, 3))
    for ordering in [(2, 4, 1, 3, 0), (4, 1, 3, 0, 2), (3, 1, 4, 2, 0), (0, 3, 1, 4, 2)]:
        np.testing.assert_allclose(amp.colour_ordered(momenta, ordering), reference, rtol=1e-12)
    # A different ordering is a different function.
    assert not np.allclose(amp.colour_ordered(momenta, (0, 1, 2, 3, 4)), reference)


def test_full_result_is_bose_symmetric(points):
    momenta = points.momenta[:2000]
    reference = amp.squared_me(momenta)
    for perm in itertools.permutations(range(2, 5)):
        permuted = momenta[:, [0, 1, *perm]]
        np.testing.assert_allclose(amp.squared_me(permuted), reference, rtol=1e-12)
    np.testing.assert_allclose(amp.squared_me(momenta[:, [1, 0, 2, 3, 4]]), reference, rtol=1e-12)


def test_lorentz_invariance(points):
    momenta = points.momenta[:2000]
    reference = amp.squared_me(momenta)
    rotated = rotate(momenta, random_rotation(1))
    np.testing.assert_allclose(amp.squared_me(rotated), reference, rtol=1e-10)
    boosted = boost(momenta, [0.3, -0.2, 0.6])
    assert not np.allclose(boosted, momenta)
    np.testing.assert_allclose(amp.squared_me(boosted), reference, rtol=1e-9)


def test_two_to_two_reproduces_the_textbook_result():
    """gg -> gg: averaged |M|^2 = 9/2 g^4 (3 - tu/s^2 - su/t^2 - st/u^2) (e.g. Ellis, Stirling,
    Webber, table 7.1): fixes the colour and helicity normalisation."""
    momenta, _ = amp.phase_space(1000, seed=6, n_final=2, cuts=None)
    p1, p2, p3 = momenta[:, 0], momenta[:, 1], momenta[:, 2]
    s = 2 * amp.minkowski_dot(p1, p2)
    t = -2 * amp.minkowski_dot(p1, p3)
    u = -s - t
    textbook = 4.5 * (3 - t * u / s**2 - s * u / t**2 - s * t / u**2)
    np.testing.assert_allclose(amp.squared_me(momenta), textbook, rtol=1e-10)


def test_soft_limit_factorises_onto_two_to_two():
    """Gluon 5 soft: sum_col |M_5|^2 -> g^2 N * g^4 N^2 (N^2-1) sum_sigma sum_h |A_4(sigma)|^2
    * sum_{(a,b) neighbours in sigma} 2 |s_ab| / (|s_a5| |s_5b|): ties gg -> ggg to gg -> gg."""
    four, _ = amp.phase_space(20, seed=7, n_final=2, cuts=None)
    direction = np.array([1.0, 0.6, 0.0, 0.8])
    for softness in (1e-3, 1e-5):
        soft = softness * SQRT_S * direction
        five = np.concatenate([four, np.broadcast_to(soft, (20, 1, 4))], axis=1)
        s = amp.invariants(five)
        limit = np.zeros(20)
        for rest in itertools.permutations(range(1, 4)):
            ring = (0, *rest)
            eikonal = sum(
                2 * np.abs(s[:, a, b]) / (np.abs(s[:, a, 4]) * np.abs(s[:, 4, b]))
                for a, b in zip(ring, np.roll(ring, -1), strict=True)
            )
            limit += amp.colour_ordered(four, ring) * eikonal
        limit *= 3 * 9 * 8
        ratio = amp.squared_me(five, average=False) / limit
        np.testing.assert_allclose(ratio, 1.0, atol=50 * softness)


def test_dynamic_range():
    momenta, _ = amp.phase_space(100_000, seed=0)
    values = amp.squared_me(momenta)
    assert np.all(np.isfinite(values)) and np.all(values > 0)
    assert values.max() / values.min() > 1e3


def test_points_fill_five_independent_directions():
    """Without cuts, flat 3-body phase space factorises into the Dalitz variables (x3, x4), the
    direction of gluon 3 (cos theta, phi, uniform) and the rotation psi of the event plane about
    it (uniform): five coordinates, all present and uncorrelated."""
    final, _ = amp.rambo(100_000, 3, SQRT_S, seed=10)
    x3, x4 = 2 * final[:, 0, 0] / SQRT_S, 2 * final[:, 1, 0] / SQRT_S
    axis = final[:, 0, 1:] / final[:, 0, :1]
    cos_theta, phi = axis[:, 2], np.arctan2(axis[:, 1], axis[:, 0])
    # psi: azimuth of gluon 4 about gluon 3, measured from the plane of gluon 3 and the z axis.
    e1 = np.cross(axis, [0.0, 0.0, 1.0])
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = np.cross(axis, e1)
    p4 = final[:, 1, 1:]
    psi = np.arctan2(np.sum(p4 * e2, axis=1), np.sum(p4 * e1, axis=1))
    coords = np.stack([x3, x4, cos_theta, phi, psi], axis=1)
    correlation = np.corrcoef(coords.T)
    # x3 and x4 are correlated (x3 + x4 > 1); every other pair is independent.
    pairs = [pair for pair in itertools.combinations(range(5), 2) if pair != (0, 1)]
    assert max(abs(correlation[r, c]) for r, c in pairs) < 0.02
    assert abs(correlation[0, 1]) > 0.1
    for uniform, (low, high) in (
        (cos_theta, (-1, 1)),
        (phi, (-math.pi, math.pi)),
        (psi, (-math.pi, math.pi)),
    ):
        assert stats.kstest(uniform, "uniform", args=(low, high - low)).pvalue > 1e-3


def test_cuts_remove_the_singular_regions():
    with_cuts = amp.squared_me(amp.phase_space(50_000, seed=8).momenta)
    without = amp.squared_me(amp.phase_space(50_000, seed=8, cuts=None).momenta)
    assert without.max() > 100 * with_cuts.max()


def test_squared_me_is_fast():
    momenta = amp.phase_space(100_000, seed=1).momenta
    start = time.perf_counter()
    amp.squared_me(momenta)
    assert time.perf_counter() - start < 1.0


def test_bad_input_raises():
    with pytest.raises(ValueError, match="shape"):
        amp.squared_me(np.zeros((3, 5, 3)))
    with pytest.raises(ValueError, match="4 or 5 gluons"):
        amp.squared_me(amp.phase_space(3, n_final=4, cuts=None).momenta)
    with pytest.raises(ValueError, match="n must be >= 1"):
        amp.phase_space(0)
    with pytest.raises(TypeError, match="n must be an integer"):
        amp.phase_space(2.0)
    with pytest.raises(ValueError, match="sqrt_s"):
        amp.phase_space(3, sqrt_s=-1.0)
    with pytest.raises(ValueError, match="permutation"):
        amp.colour_ordered(MERCEDES, (0, 1, 2, 3, 3))
    with pytest.raises(ValueError, match="pt_min"):
        amp.Cuts(pt_min=-1.0)
