"""The Z -> mu mu + jets generator (Pythia 8 + FastJet): selection, physics, reproducibility.

The shipped sample and its physics tests come with the sample itself (chapter 9-10 work).
"""

import sys

import numpy as np
import pytest

from lhcbnn.data import zjets

Z_MASS = 91.19  # GeV, PDG


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
