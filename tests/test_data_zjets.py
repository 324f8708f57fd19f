"""The shipped Z -> mu mu + jets sample (shapes, physics) and its Pythia + FastJet generator."""

import sys

import numpy as np
import pytest

from lhcbnn.data import zjets

Z_MASS = 91.19  # GeV, PDG


@pytest.fixture(scope="module")
def sample():
    return zjets.load()


def test_shipped_sample_size_and_file(sample):
    assert zjets.default_sample_path().stat().st_size <= 4_000_000
    assert len(sample) >= 20_000
    assert sample.metadata["seed"] == 1 and "command" in sample.metadata


def test_shapes_dtypes_and_padding(sample):
    n = len(sample)
    assert sample.muons.shape == (n, 2, 4) and sample.jets.shape == (n, 3, 4)
    assert sample.n_jets.shape == (n,) and sample.weight.shape == (n,)
    assert set(np.unique(sample.n_jets)) == {1, 2, 3}
    for array in (sample.muons, sample.jets, sample.weight):
        assert np.all(np.isfinite(array))
    slots = np.arange(3)[None, :]
    filled = slots < sample.n_jets[:, None]
    assert np.all(zjets.pt(sample.jets)[filled] > zjets.JET_PT_MIN)
    assert np.all(sample.jets[~filled] == 0.0)
    assert np.all(np.diff(zjets.pt(sample.jets), axis=1)[filled[:, 1:]] <= 0)  # pT ordered
    assert np.all(sample.weight > 0)


def test_muons_pass_the_selection(sample):
    assert np.all(zjets.pt(sample.muons) > zjets.MUON_PT_MIN)
    assert np.all(np.abs(zjets.eta(sample.muons)) < 2.5)
    # Muons are massless to float32 precision at these energies (m_mu = 0.106 GeV).
    assert np.median(zjets.mass(sample.muons)) < 1.0


def test_dimuon_mass_peaks_at_the_z_mass(sample):
    m = sample.m_mumu
    # The generator window is 60-120 GeV on the Z/gamma* line shape; photon radiation off the
    # muons moves a few events lower, and rarely a muon from a hadron decay makes the hardest
    # pair. Measured on the shipped sample: 61 of 30,000 events outside 55-125 GeV.
    assert np.mean((m < 55) | (m > 125)) < 0.005
    counts, edges = np.histogram(m, bins=np.arange(60.0, 120.5, 0.5))
    peak = 0.5 * (edges[np.argmax(counts)] + edges[np.argmax(counts) + 1])
    assert abs(peak - Z_MASS) < 1.0
    assert abs(np.median(m[(m > 81) & (m < 101)]) - Z_MASS) < 1.0


def test_jet_multiplicity_falls(sample):
    counts = np.bincount(sample.n_jets, minlength=4)[1:]
    assert counts[0] > 2 * counts[1] > 0 and counts[1] > 2 * counts[2] > 0


def test_momentum_is_balanced(sample):
    # The Z recoils against the jets: in one-jet events they are back to back in azimuth and
    # the jet carries most of the Z's transverse momentum (the rest is soft, unclustered).
    one = sample.with_n_jets(1)
    z_p4, jet_p4 = one.dimuon, one.jets[:, 0]
    dphi = np.angle(np.exp(1j * (zjets.phi(z_p4) - zjets.phi(jet_p4))))
    assert np.median(np.abs(dphi)) > 2.8
    total = one.muons.sum(axis=1) + one.jets.sum(axis=1)
    imbalance = zjets.pt(total) / zjets.pt(z_p4)
    assert np.median(imbalance) < 0.5
    # Across all events the vector sum of the muons and jets is much smaller than the Z pT.
    everything = sample.muons.sum(axis=1) + sample.jets.sum(axis=1)
    assert np.median(zjets.pt(everything)) < 0.5 * np.median(zjets.pt(sample.dimuon))


def test_subsets_and_errors(sample, tmp_path):
    two = sample.with_n_jets(2)
    assert np.all(two.n_jets == 2) and len(two) == int((sample.n_jets == 2).sum())
    with pytest.raises(ValueError, match="1, 2 or 3"):
        sample.with_n_jets(4)
    path = zjets.save(sample.subset(np.arange(10)), tmp_path / "z.npz")
    again = zjets.load(path)
    np.testing.assert_allclose(again.muons, sample.muons[:10], rtol=1e-6)
    with pytest.raises(FileNotFoundError):
        zjets.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not a Z"):
        zjets.load(tmp_path / "other.npz")
    with pytest.raises(ValueError, match=".npz"):
        zjets.save(sample, tmp_path / "z.h5")


def test_generator_without_pythia_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pythia8mc", None)
    with pytest.raises(ImportError, match=r"lhcbnn\[physics\]"):
        zjets.generate(1, n_workers=1, progress=False)


def test_generator_rejects_bad_counts():
    with pytest.raises(ValueError, match="positive"):
        zjets.generate(0)
    with pytest.raises(TypeError, match="n_events"):
        zjets.generate(1.5)


def test_generator_is_reproducible_and_worker_independent(tmp_path):
    pytest.importorskip("pythia8mc", reason="the generator needs pythia8mc ([physics] extra)")
    pytest.importorskip("fastjet", reason="the generator needs fastjet ([physics] extra)")
    one, stats = zjets.generate(6, seed=3, n_workers=1, chunk_size=3, progress=False)
    assert len(one) == 6 and stats["events_tried"] >= 6
    out = tmp_path / "z.npz"
    argv = ["--n-events", "6", "--seed", "3", "--chunk-size", "3", "--workers", "2"]
    assert zjets.main([*argv, "--out", str(out), "--no-progress"]) == 0
    two = zjets.load(out)
    np.testing.assert_allclose(two.muons, one.muons, rtol=1e-6)
    np.testing.assert_array_equal(two.n_jets, one.n_jets)


def test_generated_events_pass_the_selection_and_peak_at_the_z(tmp_path):
    pytest.importorskip("pythia8mc", reason="the generator needs pythia8mc ([physics] extra)")
    pytest.importorskip("fastjet", reason="the generator needs fastjet ([physics] extra)")
    sample, stats = zjets.generate(60, seed=5, n_workers=1, chunk_size=60, progress=False)
    assert len(sample) == 60 and stats["events_tried"] > 60
    assert set(np.unique(sample.n_jets)) <= {1, 2, 3}
    assert np.all(zjets.pt(sample.muons) > zjets.MUON_PT_MIN)
    filled = np.arange(3)[None, :] < sample.n_jets[:, None]
    assert np.all(zjets.pt(sample.jets)[filled] > zjets.JET_PT_MIN)
    assert np.all(sample.jets[~filled] == 0.0)
    # mu+ first: the charges are not stored, but the pair must be opposite-sign by construction,
    # and the dimuon mass lies in the generator window (a few GeV lower after photon radiation)
    m = sample.m_mumu
    assert np.all((m > 40) & (m < 125)) and abs(np.median(m) - Z_MASS) < 3.0
