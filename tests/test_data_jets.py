"""The shipped jet sample (shapes, physics sanity) and the Pythia + FastJet generator."""

import sys

import numpy as np
import pytest

from lhcbnn.data import jets


@pytest.fixture(scope="module")
def sample():
    return jets.load()


def test_shipped_sample_size_and_file(sample):
    path = jets.default_sample_path()
    assert path.stat().st_size <= 8_000_000
    assert len(sample) >= 10_000
    assert sample.is_top.sum() >= 3_000 and (~sample.is_top).sum() >= 3_000


def test_shipped_sample_shapes_and_dtypes(sample):
    n = len(sample)
    assert sample.constituents.ndim == 3
    assert sample.constituents.shape[0] == n and sample.constituents.shape[2] >= 3
    assert sample.constituents.dtype == np.float32
    assert sample.is_top.shape == (n,) and sample.is_top.dtype == bool
    assert sample.jet_p4.shape == (n, 4) and sample.jet_p4.dtype == np.float64
    assert sample.top_p4.shape == (n, 4) and sample.top_pt.shape == (n,)
    assert sample.jet_mass.shape == (n,)
    for array in (sample.constituents, sample.jet_p4, sample.top_p4, sample.top_pt):
        assert np.all(np.isfinite(array))
    # The classes are mixed: the first thousand jets hold both.
    assert 0.3 < sample.is_top[:1000].mean() < 0.7
    assert sample.metadata["seed"] == 1 and "command" in sample.metadata


def test_jets_pass_the_selection(sample):
    assert np.all((sample.jet_pt > 550.0) & (sample.jet_pt < 650.0))
    assert np.all(np.abs(sample.jet_eta) < 2.0)
    assert np.all(sample.jet_p4[:, 0] > 0)


def test_constituents_are_pt_ordered_relative_and_zero_padded(sample):
    pt = sample.constituents[..., 0]
    assert np.all(np.diff(pt, axis=1) <= 0.0)
    n_slots = pt.shape[1]
    n_filled = np.minimum(sample.n_constituents, n_slots)
    slot = np.arange(n_slots)[None, :]
    assert np.all(pt[slot < n_filled[:, None]] > 0.0)
    assert np.all(sample.constituents[slot >= n_filled[:, None]] == 0.0)
    # Relative coordinates: constituents of an R = 0.8 jet sit near its axis. Clustering measures
    # distances in rapidity, the stored coordinate is pseudorapidity: soft massive hadrons can lie
    # beyond 0.8 in (Delta eta, Delta phi), but they carry a negligible share of the pT.
    assert np.all(np.abs(sample.constituents[..., 2]) <= np.pi)
    delta_r = np.hypot(sample.constituents[..., 1], sample.constituents[..., 2])
    assert np.all(delta_r[pt > 0] < 3.0)
    assert np.mean(delta_r[pt > 0] < 0.8) > 0.99
    assert np.sum(pt * (delta_r < 0.8)) / np.sum(pt) > 0.999
    assert np.median(delta_r[pt > 0]) < 0.4
    # The stored constituents carry most of the jet's pT (scalar sum >= vector sum).
    assert np.median(pt.sum(axis=1) / sample.jet_pt) > 0.9


def test_truth_labels(sample):
    top, qcd = sample.is_top, ~sample.is_top
    assert np.all(sample.top_pt[qcd] == 0.0) and np.all(sample.top_p4[qcd] == 0.0)
    assert np.all(sample.top_pt[top] > 0.0)
    np.testing.assert_allclose(
        sample.top_pt[top], np.hypot(sample.top_p4[top, 1], sample.top_p4[top, 2]), rtol=1e-5
    )
    # The matched top sits on its Breit-Wigner peak (width 1.4 GeV, so the tails are wide).
    e, px, py, pz = sample.top_p4[top].T
    top_mass = np.sqrt(e**2 - px**2 - py**2 - pz**2)
    assert abs(np.median(top_mass) - 172.5) < 1.5
    assert np.mean(np.abs(top_mass - 172.5) < 5.0) > 0.85
    top_eta = np.arcsinh(pz / sample.top_pt[top])
    dphi = np.angle(
        np.exp(1j * (np.arctan2(py, px) - np.arctan2(sample.jet_p4[top, 2], sample.jet_p4[top, 1])))
    )
    assert np.all(np.hypot(top_eta - sample.jet_eta[top], dphi) < 0.8)


def test_top_jet_mass_peaks_at_the_top_mass(sample):
    top_mass = sample.jet_mass[sample.is_top]
    qcd_mass = sample.jet_mass[~sample.is_top]
    assert 150.0 < np.median(top_mass) < 200.0
    counts, edges = np.histogram(top_mass, bins=np.arange(0.0, 400.0, 10.0))
    mode = edges[np.argmax(counts)] + 5.0
    assert 155.0 < mode < 195.0
    # QCD jets are lighter: most of them lie far below the top mass.
    assert np.median(qcd_mass) < np.median(top_mass) - 50.0
    assert np.mean(qcd_mass < 120.0) > 0.6
    assert np.mean(top_mass < 120.0) < 0.05


def test_top_pt_follows_jet_pt(sample):
    top = sample.is_top
    correlation = np.corrcoef(sample.top_pt[top], sample.jet_pt[top])[0, 1]
    assert correlation > 0.45
    relative = (sample.top_pt[top] - sample.jet_pt[top]) / sample.jet_pt[top]
    assert abs(np.median(relative)) < 0.05
    assert np.percentile(np.abs(relative), 68) < 0.06


def test_subset_and_round_trip(sample, tmp_path):
    small = sample.subset(np.arange(100))
    assert len(small) == 100
    path = jets.save(small, tmp_path / "small.npz")
    again = jets.load(path)
    np.testing.assert_array_equal(again.is_top, small.is_top)
    np.testing.assert_allclose(again.jet_p4, small.jet_p4, rtol=1e-6)
    np.testing.assert_array_equal(again.constituents, small.constituents)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        jets.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not a jet sample"):
        jets.load(tmp_path / "other.npz")
    with pytest.raises(ValueError, match=".npz"):
        jets.save(jets.load().subset(np.arange(2)), tmp_path / "out.h5")


def test_generator_without_pythia_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pythia8mc", None)
    with pytest.raises(ImportError, match=r"lhcbnn\[physics\]"):
        jets.generate(1, 1, n_workers=1, progress=False)


def test_generator_rejects_bad_counts():
    with pytest.raises(ValueError, match="n_top"):
        jets.generate(-1, 1)
    with pytest.raises(TypeError, match="n_qcd"):
        jets.generate(1, 1.5)
    with pytest.raises(ValueError, match="positive"):
        jets.generate(0, 0)


def test_generator_runs_on_a_handful_of_events(tmp_path):
    pytest.importorskip("pythia8mc", reason="the jet generator needs pythia8mc ([physics] extra)")
    pytest.importorskip("fastjet", reason="the jet generator needs fastjet ([physics] extra)")
    generated, stats = jets.generate(1, 1, seed=7, n_workers=1, n_constituents=20, progress=False)
    assert len(generated) == 2 and generated.is_top.sum() == 1
    assert generated.constituents.shape == (2, 20, 3)
    assert np.all((generated.jet_pt > 550.0) & (generated.jet_pt < 650.0))
    assert np.all(generated.top_pt[generated.is_top] > 0.0)
    assert np.all(generated.top_pt[~generated.is_top] == 0.0)
    assert stats.events["top"] >= 1 and stats.jets == {"top": 1, "qcd": 1}
    # The command line gives the same jets for the same seed.
    out = tmp_path / "jets.npz"
    argv = ["--n-top", "1", "--n-qcd", "1", "--out", str(out), "--seed", "7", "--workers", "1"]
    assert jets.main([*argv, "--n-constituents", "20", "--no-progress"]) == 0
    again = jets.load(out)
    np.testing.assert_array_equal(again.is_top, generated.is_top)
    np.testing.assert_allclose(again.jet_p4, generated.jet_p4, rtol=1e-6)
