"""Simulated top and QCD jets with truth labels: Pythia 8 + FastJet, and the shipped sample.

The selection follows the top-tagging reference dataset (Kasieczka et al., arXiv:1902.09914),
without a detector simulation:

* proton-proton collisions at sqrt(s) = 14 TeV with multiparton interactions, showers and
  hadronisation on (Pythia 8 defaults);
* signal: hadronic ttbar (``Top:gg2ttbar``, ``Top:qqbar2ttbar``, both W bosons forced to quarks);
  background: QCD dijets (``HardQCD:all``);
* anti-kT jets with R = 0.8 clustered from all visible final-state particles with |eta| < 3,
  kept when 550 < pT < 650 GeV and |eta| < 2;
* a top jet is a jet within Delta R < 0.8 of a top quark (its last copy before the decay) whose
  three decay quarks (b and the two quarks of the W) also lie within Delta R < 0.8 of the jet axis,
  as in arXiv:1902.09914; the matched top's four-momentum is the regression label of
  arXiv:2003.11099; every jet in the window of a QCD event is a QCD jet.

Per jet, the sample stores the ``n_constituents`` hardest constituents as (pT [GeV],
eta - eta_jet, phi - phi_jet wrapped to [-pi, pi)), ordered by decreasing pT and zero-padded; the
jet four-momentum (E, px, py, pz) in GeV; and for top jets the top four-momentum and pT. For QCD
jets ``top_p4`` is all zeros and ``top_pt`` is 0.0 (use ``is_top`` to tell the classes apart).

Generation is split into chunks of jets, each with its own Pythia seed derived from the run seed,
the process and the chunk index, so the output does not depend on the number of worker processes.
Command line (needs the optional extra ``pip install .[physics]``)::

    python -m lhcbnn.data.jets --n-top 6000 --n-qcd 6000 --out jets.npz --seed 1 --workers 2

Importing this module does not import ``pythia8mc`` or ``fastjet``; only :func:`generate` does.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.resources
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lhcbnn.data._generation import (
    check_count,
    require_pythia_and_fastjet,
    run_chunks,
    stdout_silenced,
)

__all__ = [
    "JET_RADIUS",
    "PT_RANGE",
    "ETA_MAX",
    "JetSample",
    "GenerationStats",
    "default_sample_path",
    "load",
    "generate",
    "save",
    "main",
]

JET_RADIUS = 0.8
PT_RANGE = (550.0, 650.0)
ETA_MAX = 2.0
PARTICLE_ETA_MAX = 3.0
PTHAT_MIN_TOP = 300.0
PTHAT_MIN_QCD = 300.0
SAMPLE_FILE = "jets_sample.npz"

_PROCESS_CODES = {"top": 0, "qcd": 1}


@dataclass
class JetSample:
    """Jets with their truth. ``n`` jets, ``n_const`` constituent slots.

    Attributes:
        constituents: (n, n_const, 3) float32 array of (pT [GeV], eta - eta_jet, phi - phi_jet),
            pT ordered, zero-padded.
        is_top: (n,) bool, True for top jets.
        jet_p4: (n, 4) float64 jet four-momenta (E, px, py, pz) in GeV.
        top_pt: (n,) float64 pT of the matched top quark in GeV; 0.0 for QCD jets.
        top_p4: (n, 4) float64 matched top four-momentum (E, px, py, pz) in GeV; zeros for QCD.
        n_constituents: (n,) int, number of constituents before truncation to ``n_const``.
        pthat: (n,) float64, Pythia's hard-process pT-hat of the event the jet comes from [GeV].
        metadata: generation settings (seed, versions, cuts).
    """

    constituents: np.ndarray
    is_top: np.ndarray
    jet_p4: np.ndarray
    top_pt: np.ndarray
    top_p4: np.ndarray
    n_constituents: np.ndarray
    pthat: np.ndarray
    metadata: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.is_top.shape[0])

    @property
    def jet_pt(self) -> np.ndarray:
        """(n,) jet transverse momentum sqrt(px^2 + py^2) in GeV."""
        return np.hypot(self.jet_p4[:, 1], self.jet_p4[:, 2])

    @property
    def jet_eta(self) -> np.ndarray:
        """(n,) jet pseudorapidity asinh(pz / pT)."""
        return np.arcsinh(self.jet_p4[:, 3] / self.jet_pt)

    @property
    def jet_mass(self) -> np.ndarray:
        """(n,) jet invariant mass sqrt(max(E^2 - |p|^2, 0)) in GeV."""
        e, px, py, pz = self.jet_p4.T
        return np.sqrt(np.clip(e**2 - px**2 - py**2 - pz**2, 0.0, None))

    def subset(self, index: np.ndarray) -> JetSample:
        """The jets selected by ``index`` (a boolean mask or integer indices), same metadata."""
        return JetSample(
            constituents=self.constituents[index],
            is_top=self.is_top[index],
            jet_p4=self.jet_p4[index],
            top_pt=self.top_pt[index],
            top_p4=self.top_p4[index],
            n_constituents=self.n_constituents[index],
            pthat=self.pthat[index],
            metadata=dict(self.metadata),
        )


@dataclass
class GenerationStats:
    """Bookkeeping of a generator run: events generated, jets kept and wall time per process."""

    events: dict[str, int] = field(default_factory=lambda: {"top": 0, "qcd": 0})
    jets: dict[str, int] = field(default_factory=lambda: {"top": 0, "qcd": 0})
    worker_seconds: dict[str, float] = field(default_factory=lambda: {"top": 0.0, "qcd": 0.0})
    wall_seconds: float = 0.0
    n_workers: int = 1

    def summary(self) -> str:
        """One line per process with events per second per core and jets per event."""
        lines = []
        for process in ("top", "qcd"):
            n_events, n_jets = self.events[process], self.jets[process]
            seconds = self.worker_seconds[process]
            if n_events == 0:
                continue
            lines.append(
                f"{process}: {n_events} events, {n_jets} jets, "
                f"{n_events / seconds:.1f} events/s per core, {n_jets / seconds:.1f} jets/s "
                f"per core, {n_jets / n_events:.3f} jets/event"
            )
        total_events = sum(self.events.values())
        total_jets = sum(self.jets.values())
        lines.append(
            f"total: {total_events} events, {total_jets} jets in {self.wall_seconds:.1f} s wall "
            f"on {self.n_workers} worker(s): {total_events / self.wall_seconds:.1f} events/s, "
            f"{total_jets / self.wall_seconds:.1f} jets/s"
        )
        return "\n".join(lines)


# ----------------------------------------------------------------------------- loading


def default_sample_path() -> Path:
    """Path of the jet sample shipped inside the package (``lhcbnn/data/jets_sample.npz``)."""
    return Path(str(importlib.resources.files("lhcbnn.data").joinpath(SAMPLE_FILE)))


def load(path: str | os.PathLike | None = None) -> JetSample:
    """Load a jet sample written by :func:`save` (default: the sample shipped with the package).

    Arrays come back as float32 constituents, float64 momenta, bool ``is_top``. No pickle is used.
    """
    path = default_sample_path() if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"jet sample {path} does not exist")
    with np.load(path, allow_pickle=False) as data:
        missing = {"constituents", "is_top", "jet_p4", "top_pt", "top_p4"} - set(data.files)
        if missing:
            raise ValueError(f"{path} is not a jet sample: arrays {sorted(missing)} are missing")
        n_jets = data["is_top"].shape[0]
        metadata = json.loads(str(data["metadata"])) if "metadata" in data.files else {}
        return JetSample(
            constituents=data["constituents"].astype(np.float32),
            is_top=data["is_top"].astype(bool),
            jet_p4=data["jet_p4"].astype(np.float64),
            top_pt=data["top_pt"].astype(np.float64),
            top_p4=data["top_p4"].astype(np.float64),
            n_constituents=(
                data["n_constituents"].astype(np.int64)
                if "n_constituents" in data.files
                else np.count_nonzero(data["constituents"][..., 0], axis=1)
            ),
            pthat=(
                data["pthat"].astype(np.float64)
                if "pthat" in data.files
                else np.full(n_jets, np.nan)
            ),
            metadata=metadata,
        )


def save(sample: JetSample, path: str | os.PathLike) -> Path:
    """Write ``sample`` with ``np.savez_compressed``: float16 constituents, float32 momenta.

    float16 keeps about three significant digits of a constituent's pT and angles; the jet and
    top four-momenta are kept in float32 (relative precision 1e-7), enough for masses at the
    per-mille level.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"the output file must end in .npz, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        constituents=sample.constituents.astype(np.float16),
        is_top=sample.is_top.astype(bool),
        jet_p4=sample.jet_p4.astype(np.float32),
        top_pt=sample.top_pt.astype(np.float32),
        top_p4=sample.top_p4.astype(np.float32),
        n_constituents=sample.n_constituents.astype(np.int16),
        pthat=sample.pthat.astype(np.float32),
        metadata=np.array(json.dumps(sample.metadata, sort_keys=True)),
    )
    return path


# ----------------------------------------------------------------------------- generation


def _chunk_seed(seed: int, process: str, chunk_index: int) -> int:
    """Pythia seed (1 <= seed <= 900,000,000) of one chunk, fixed by run seed, process and chunk."""
    return 1 + (seed * 1_000_000 + _PROCESS_CODES[process] * 500_000 + chunk_index) % 900_000_000


def _pythia_settings(process: str, chunk_seed: int, pthat_min: float) -> list[str]:
    settings = [
        "Beams:eCM = 14000.",
        "Print:quiet = on",
        "Next:numberCount = 0",
        "Random:setSeed = on",
        f"Random:seed = {chunk_seed}",
        f"PhaseSpace:pTHatMin = {pthat_min}",
    ]
    if process == "top":
        settings += [
            "Top:gg2ttbar = on",
            "Top:qqbar2ttbar = on",
            "24:onMode = off",
            "24:onIfAny = 1 2 3 4 5",
        ]
    else:
        settings += ["HardQCD:all = on"]
    return settings


def _delta_r(eta1: float, phi1: float, eta2: float, phi2: float) -> float:
    dphi = (phi1 - phi2 + math.pi) % (2.0 * math.pi) - math.pi
    return math.hypot(eta1 - eta2, dphi)


def _top_quarks(event) -> list[tuple[np.ndarray, list[tuple[float, float]]]]:
    """Each top of the event as (four-momentum (E, px, py, pz), [(eta, phi) of its decay quarks]).

    The top is taken at its last copy (after initial-state recoil, at the decay); the decay quarks
    are the b and the two quarks from the last copy of the W.
    """
    tops = []
    for particle in event:
        if particle.idAbs() != 6 or event[particle.daughter1()].idAbs() == 6:
            continue
        decay_quarks = []
        for i_daughter in particle.daughterList():
            daughter = event[i_daughter]
            if daughter.idAbs() == 24:
                w_boson = event[daughter.iBotCopyId()]
                decay_quarks += [event[i] for i in w_boson.daughterList()]
            elif daughter.idAbs() <= 5:
                decay_quarks.append(daughter)
        p4 = np.array([particle.e(), particle.px(), particle.py(), particle.pz()])
        tops.append((p4, [(q.eta(), q.phi()) for q in decay_quarks if q.idAbs() <= 5]))
    return tops


def _generate_chunk(task: tuple) -> dict:
    """Generate ``n_jets`` jets of one process with one Pythia seed (runs in a worker process)."""
    process, chunk_index, n_jets, seed, n_const, pthat_min, max_events = task
    import fastjet
    import pythia8mc

    start = time.perf_counter()
    constituents = np.zeros((n_jets, n_const, 3), dtype=np.float32)
    jet_p4 = np.zeros((n_jets, 4))
    top_p4 = np.zeros((n_jets, 4))
    n_constituents = np.zeros(n_jets, dtype=np.int64)
    pthat = np.zeros(n_jets)
    n_kept = 0
    n_events = 0
    with stdout_silenced():
        pythia = pythia8mc.Pythia("", False)
        chunk_seed = _chunk_seed(seed, process, chunk_index)
        for setting in _pythia_settings(process, chunk_seed, pthat_min):
            if not pythia.readString(setting):
                raise RuntimeError(f"Pythia rejected the setting {setting!r}")
        if not pythia.init():
            raise RuntimeError("Pythia failed to initialise")
        jet_definition = fastjet.JetDefinition(fastjet.antikt_algorithm, JET_RADIUS)
        while n_kept < n_jets:
            if n_events >= max_events:
                raise RuntimeError(
                    f"{process} chunk {chunk_index}: only {n_kept} of {n_jets} jets after "
                    f"{n_events} events"
                )
            n_events += 1
            if not pythia.next():
                continue
            event = pythia.event
            momenta = []
            for particle in event:
                if particle.isFinal() and particle.isVisible():
                    if abs(particle.eta()) < PARTICLE_ETA_MAX:
                        momenta.append((particle.px(), particle.py(), particle.pz(), particle.e()))
            pseudojets = []
            for index, (px, py, pz, e) in enumerate(momenta):
                pseudojet = fastjet.PseudoJet(px, py, pz, e)
                pseudojet.set_user_index(index)
                pseudojets.append(pseudojet)
            particles = np.asarray(momenta)
            sequence = fastjet.ClusterSequence(pseudojets, jet_definition)
            jets = [
                jet
                for jet in sequence.inclusive_jets(PT_RANGE[0])
                if jet.pt() < PT_RANGE[1] and abs(jet.eta()) < ETA_MAX
            ]
            if not jets:
                continue
            tops = _top_quarks(event) if process == "top" else []
            for jet in sorted(jets, key=lambda j: -j.pt()):
                if n_kept == n_jets:
                    break
                matched_top = np.zeros(4)
                if process == "top":
                    matched = [
                        p4
                        for p4, quarks in tops
                        if _delta_r(jet.eta(), jet.phi(), *_eta_phi(p4)) < JET_RADIUS
                        and len(quarks) == 3
                        and all(_delta_r(jet.eta(), jet.phi(), *q) < JET_RADIUS for q in quarks)
                    ]
                    if not matched:
                        continue
                    matched_top = matched[0]
                indices = np.array([c.user_index() for c in jet.constituents()])
                constituents[n_kept], n_constituents[n_kept] = _relative_constituents(
                    particles[indices], jet.eta(), jet.phi(), n_const
                )
                jet_p4[n_kept] = (jet.e(), jet.px(), jet.py(), jet.pz())
                top_p4[n_kept] = matched_top
                pthat[n_kept] = pythia.infoPython().pTHat()
                n_kept += 1
    return {
        "process": process,
        "chunk_index": chunk_index,
        "constituents": constituents,
        "jet_p4": jet_p4,
        "top_p4": top_p4,
        "n_constituents": n_constituents,
        "pthat": pthat,
        "n_events": n_events,
        "seconds": time.perf_counter() - start,
    }


def _eta_phi(p4: np.ndarray) -> tuple[float, float]:
    pt = math.hypot(p4[1], p4[2])
    return math.asinh(p4[3] / pt), math.atan2(p4[2], p4[1])


def _relative_constituents(
    momenta: np.ndarray, jet_eta: float, jet_phi: float, n_const: int
) -> tuple[np.ndarray, int]:
    """(n_const, 3) array of (pT, eta - eta_jet, wrapped phi - phi_jet), pT ordered, zero-padded.

    ``momenta`` is (m, 4) as (px, py, pz, E); returns it with the number m of constituents.
    """
    pt = np.hypot(momenta[:, 0], momenta[:, 1])
    eta = np.arcsinh(momenta[:, 2] / pt)
    phi = np.arctan2(momenta[:, 1], momenta[:, 0])
    order = np.argsort(-pt, kind="stable")[:n_const]
    out = np.zeros((n_const, 3), dtype=np.float32)
    out[: order.size, 0] = pt[order]
    out[: order.size, 1] = eta[order] - jet_eta
    out[: order.size, 2] = (phi[order] - jet_phi + np.pi) % (2.0 * np.pi) - np.pi
    return out, momenta.shape[0]


def _record(result: dict, results: list, stats: GenerationStats) -> int:
    results.append(result)
    n_jets = result["jet_p4"].shape[0]
    stats.events[result["process"]] += result["n_events"]
    stats.jets[result["process"]] += n_jets
    stats.worker_seconds[result["process"]] += result["seconds"]
    return n_jets


def generate(
    n_top: int,
    n_qcd: int,
    *,
    seed: int = 1,
    n_workers: int = 2,
    n_constituents: int = 50,
    chunk_size: int = 250,
    pthat_min_top: float = PTHAT_MIN_TOP,
    pthat_min_qcd: float = PTHAT_MIN_QCD,
    progress: bool = True,
    shuffle: bool = True,
) -> tuple[JetSample, GenerationStats]:
    """Generate ``n_top`` top jets and ``n_qcd`` QCD jets with Pythia 8 and FastJet.

    Work is split into chunks of at most ``chunk_size`` jets; chunk k of a process uses the Pythia
    seed ``1 + (seed * 10^6 + 5 * 10^5 * [process is QCD] + k) mod 9 * 10^8`` (``Random:setSeed``
    on), so the result depends on ``seed`` and ``chunk_size`` but not on ``n_workers``. Chunks run
    in ``n_workers`` processes (forked on Linux, spawned elsewhere) or inline when
    ``n_workers == 1``; a tqdm bar counts jets.
    Jets are shuffled with ``numpy.random.default_rng(seed)`` unless ``shuffle`` is False (then
    top jets come first).

    Returns the :class:`JetSample` and :class:`GenerationStats` (events, jets, seconds).
    Raises ImportError with an install hint when pythia8mc or fastjet is missing.
    """
    n_top = check_count("n_top", n_top)
    n_qcd = check_count("n_qcd", n_qcd)
    seed = check_count("seed", seed)
    n_workers = check_count("n_workers", n_workers)
    n_constituents = check_count("n_constituents", n_constituents)
    chunk_size = check_count("chunk_size", chunk_size)
    if n_top + n_qcd == 0:
        raise ValueError("n_top + n_qcd must be positive")
    if min(n_workers, n_constituents, chunk_size) == 0:
        raise ValueError("n_workers, n_constituents and chunk_size must be positive")
    if math.ceil(max(n_top, n_qcd) / chunk_size) >= 500_000:
        raise ValueError("too many chunks: raise chunk_size")
    require_pythia_and_fastjet("jet generator")

    tasks = []
    for process, n_jets, pthat_min in (
        ("top", n_top, pthat_min_top),
        ("qcd", n_qcd, pthat_min_qcd),
    ):
        for chunk_index, first in enumerate(range(0, n_jets, chunk_size)):
            n_chunk = min(chunk_size, n_jets - first)
            max_events = 200 * n_chunk + 1000
            tasks.append(
                (process, chunk_index, n_chunk, seed, n_constituents, pthat_min, max_events)
            )

    stats = GenerationStats(n_workers=n_workers)
    results: list[dict] = []
    stats.wall_seconds = run_chunks(
        _generate_chunk,
        tasks,
        n_workers,
        lambda result: _record(result, results, stats),
        total=n_top + n_qcd,
        unit="jet",
        desc="jets",
        progress=progress,
    )

    results.sort(key=lambda r: (_PROCESS_CODES[r["process"]], r["chunk_index"]))
    is_top = np.concatenate([np.full(r["jet_p4"].shape[0], r["process"] == "top") for r in results])
    top_p4 = np.concatenate([r["top_p4"] for r in results])
    sample = JetSample(
        constituents=np.concatenate([r["constituents"] for r in results]),
        is_top=is_top,
        jet_p4=np.concatenate([r["jet_p4"] for r in results]),
        top_pt=np.hypot(top_p4[:, 1], top_p4[:, 2]),
        top_p4=top_p4,
        n_constituents=np.concatenate([r["n_constituents"] for r in results]),
        pthat=np.concatenate([r["pthat"] for r in results]),
        metadata={
            "seed": seed,
            "n_top": n_top,
            "n_qcd": n_qcd,
            "chunk_size": chunk_size,
            "n_constituents": n_constituents,
            "pthat_min_top": pthat_min_top,
            "pthat_min_qcd": pthat_min_qcd,
            "sqrt_s_gev": 14000.0,
            "jet_radius": JET_RADIUS,
            "pt_range_gev": list(PT_RANGE),
            "eta_max": ETA_MAX,
            "pythia8mc": importlib.metadata.version("pythia8mc"),
            "fastjet": importlib.metadata.version("fastjet"),
            "shuffled": shuffle,
            "command": (
                f"python -m lhcbnn.data.jets --n-top {n_top} --n-qcd {n_qcd} --seed {seed} "
                f"--n-constituents {n_constituents} --chunk-size {chunk_size} "
                f"--pthat-min-top {pthat_min_top} --pthat-min-qcd {pthat_min_qcd}"
            ),
        },
    )
    if shuffle:
        sample = sample.subset(np.random.default_rng(seed).permutation(len(sample)))
    return sample, stats


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m lhcbnn.data.jets --n-top N --n-qcd N --out FILE``."""
    parser = argparse.ArgumentParser(
        prog="python -m lhcbnn.data.jets",
        description="Generate top and QCD jets (Pythia 8 + FastJet) into a compressed .npz file.",
    )
    parser.add_argument("--n-top", type=int, required=True, help="number of top jets")
    parser.add_argument("--n-qcd", type=int, required=True, help="number of QCD jets")
    parser.add_argument("--out", required=True, help="output file (.npz)")
    parser.add_argument("--seed", type=int, default=1, help="run seed (default 1)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes")
    parser.add_argument("--n-constituents", type=int, default=50, help="constituents per jet")
    parser.add_argument("--chunk-size", type=int, default=250, help="jets per Pythia seed")
    parser.add_argument(
        "--pthat-min-top", type=float, default=PTHAT_MIN_TOP, help="PhaseSpace:pTHatMin, ttbar"
    )
    parser.add_argument(
        "--pthat-min-qcd", type=float, default=PTHAT_MIN_QCD, help="PhaseSpace:pTHatMin, QCD"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    sample, stats = generate(
        args.n_top,
        args.n_qcd,
        seed=args.seed,
        n_workers=args.workers,
        n_constituents=args.n_constituents,
        chunk_size=args.chunk_size,
        pthat_min_top=args.pthat_min_top,
        pthat_min_qcd=args.pthat_min_qcd,
        progress=not args.no_progress,
    )
    path = save(sample, args.out)
    print(stats.summary())
    print(f"wrote {len(sample)} jets to {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    # Re-import so that worker processes pickle functions of lhcbnn.data.jets, not of __main__.
    from lhcbnn.data.jets import main as _main

    raise SystemExit(_main())
