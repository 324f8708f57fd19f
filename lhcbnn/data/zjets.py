r"""Z/gamma* -> mu+ mu- with one, two or three jets: Pythia 8 + FastJet, and the shipped sample.

The "simple LHC process" of the generative chapters (9 and 10 of the book; the Z + jets
benchmark of Butter et al., arXiv:2110.13632), generated here without a detector simulation:

* proton-proton collisions at sqrt(s) = 13 TeV with multiparton interactions, showers and
  hadronisation on (Pythia 8 defaults);
* the hard process is Z/gamma* + parton (``WeakBosonAndParton:qqbar2gmZg`` and
  ``qg2gmZq``) with pT-hat > 10 GeV, the boson decaying to muons only, with
  60 < m(mu mu) < 120 GeV at generator level (``23:mMin``, ``23:mMax``; full Z/gamma*
  interference);
* the two muons are the hardest opposite-charge pair of final-state muons with pT > 20 GeV and
  |eta| < 2.5;
* jets are anti-kT with R = 0.4 from all other visible final-state particles with |eta| < 5,
  kept with pT > 20 GeV and |eta| < 4.5; an event is kept when it has one, two or three such
  jets (exclusive), the others are counted and dropped.

Per event the sample stores the two muons (mu+ first) and the three leading jets as four-momenta
(E, px, py, pz) in GeV, the missing jet slots as zeros; the jet multiplicity; and the
generator's event weight (1 for Pythia's unweighted events, kept for generality).

Generation is split into chunks of events, each with its own Pythia seed derived from the run
seed and the chunk index, so the output does not depend on the number of worker processes.
Command line (needs the optional extra ``pip install .[physics]``)::

    python -m lhcbnn.data.zjets --n-events 40000 --out zjets.npz --seed 1 --workers 2

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
    "JET_PT_MIN",
    "MUON_PT_MIN",
    "MAX_JETS",
    "ZJetsSample",
    "default_sample_path",
    "load",
    "save",
    "generate",
    "main",
    "pt",
    "eta",
    "phi",
    "mass",
]

SQRT_S = 13000.0
JET_RADIUS = 0.4
JET_PT_MIN = 20.0
JET_ETA_MAX = 4.5
PARTICLE_ETA_MAX = 5.0
MUON_PT_MIN = 20.0
MUON_ETA_MAX = 2.5
MASS_RANGE = (60.0, 120.0)
PTHAT_MIN = 10.0
MAX_JETS = 3
SAMPLE_FILE = "zjets_sample.npz"
_SEED_OFFSET = 700_000  # keeps Z + jets chunk seeds apart from the top/QCD jet chunk seeds


# ----------------------------------------------------------------------------- four-vectors
def pt(p4: np.ndarray) -> np.ndarray:
    """Transverse momentum of four-momenta ``(..., 4)`` as (E, px, py, pz), shape ``(...)``."""
    return np.hypot(p4[..., 1], p4[..., 2])


def eta(p4: np.ndarray) -> np.ndarray:
    """Pseudorapidity asinh(pz / pT) of ``(..., 4)`` four-momenta (0 where pT = 0)."""
    transverse = pt(p4)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(transverse > 0, np.arcsinh(p4[..., 3] / transverse), 0.0)


def phi(p4: np.ndarray) -> np.ndarray:
    """Azimuth atan2(py, px) of ``(..., 4)`` four-momenta, in [-pi, pi]."""
    return np.arctan2(p4[..., 2], p4[..., 1])


def mass(p4: np.ndarray) -> np.ndarray:
    """Invariant mass sqrt(max(E^2 - |p|^2, 0)) of ``(..., 4)`` four-momenta."""
    m2 = p4[..., 0] ** 2 - p4[..., 1] ** 2 - p4[..., 2] ** 2 - p4[..., 3] ** 2
    return np.sqrt(np.clip(m2, 0.0, None))


@dataclass
class ZJetsSample:
    """Z -> mu mu + jets events. ``n`` events.

    Attributes:
        muons: (n, 2, 4) float64 four-momenta (E, px, py, pz) in GeV, mu+ first.
        jets: (n, 3, 4) float64 four-momenta of the pT-ordered jets; zeros beyond ``n_jets``.
        n_jets: (n,) int, 1, 2 or 3.
        weight: (n,) float64 generator event weight.
        metadata: generation settings (seed, versions, cuts, command).
    """

    muons: np.ndarray
    jets: np.ndarray
    n_jets: np.ndarray
    weight: np.ndarray
    metadata: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.n_jets.shape[0])

    @property
    def dimuon(self) -> np.ndarray:
        """(n, 4) four-momentum of the muon pair (the Z candidate)."""
        return self.muons.sum(axis=1)

    @property
    def m_mumu(self) -> np.ndarray:
        """(n,) dimuon invariant mass in GeV."""
        return mass(self.dimuon)

    def subset(self, index: np.ndarray) -> ZJetsSample:
        """The events selected by ``index`` (a boolean mask or integer indices)."""
        return ZJetsSample(
            self.muons[index],
            self.jets[index],
            self.n_jets[index],
            self.weight[index],
            dict(self.metadata),
        )

    def with_n_jets(self, n: int) -> ZJetsSample:
        """The events with exactly ``n`` jets (1, 2 or 3)."""
        if n not in (1, 2, 3):
            raise ValueError(f"n must be 1, 2 or 3, got {n!r}")
        return self.subset(self.n_jets == n)


# ----------------------------------------------------------------------------- loading
def default_sample_path() -> Path:
    """Path of the Z + jets sample shipped with the package (``lhcbnn/data/zjets_sample.npz``)."""
    return Path(str(importlib.resources.files("lhcbnn.data").joinpath(SAMPLE_FILE)))


def load(path: str | os.PathLike | None = None) -> ZJetsSample:
    """Load a sample written by :func:`save` (default: the shipped one); no pickle is used."""
    path = default_sample_path() if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Z + jets sample {path} does not exist")
    with np.load(path, allow_pickle=False) as data:
        missing = {"muons", "jets", "n_jets", "weight"} - set(data.files)
        if missing:
            raise ValueError(f"{path} is not a Z + jets sample: {sorted(missing)} are missing")
        metadata = json.loads(str(data["metadata"])) if "metadata" in data.files else {}
        return ZJetsSample(
            muons=data["muons"].astype(np.float64),
            jets=data["jets"].astype(np.float64),
            n_jets=data["n_jets"].astype(np.int64),
            weight=data["weight"].astype(np.float64),
            metadata=metadata,
        )


def save(sample: ZJetsSample, path: str | os.PathLike) -> Path:
    """Write ``sample`` with ``np.savez_compressed``, four-momenta in float32."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"the output file must end in .npz, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        muons=sample.muons.astype(np.float32),
        jets=sample.jets.astype(np.float32),
        n_jets=sample.n_jets.astype(np.int8),
        weight=sample.weight.astype(np.float32),
        metadata=np.array(json.dumps(sample.metadata, sort_keys=True)),
    )
    return path


# ----------------------------------------------------------------------------- generation
def _chunk_seed(seed: int, chunk_index: int) -> int:
    """Pythia seed (1 <= seed <= 900,000,000) of one chunk, fixed by run seed and chunk."""
    return 1 + (seed * 1_000_000 + _SEED_OFFSET + chunk_index) % 900_000_000


def _pythia_settings(chunk_seed: int) -> list[str]:
    return [
        f"Beams:eCM = {SQRT_S}",
        "Print:quiet = on",
        "Next:numberCount = 0",
        "Random:setSeed = on",
        f"Random:seed = {chunk_seed}",
        "WeakBosonAndParton:qqbar2gmZg = on",
        "WeakBosonAndParton:qg2gmZq = on",
        f"PhaseSpace:pTHatMin = {PTHAT_MIN}",
        "WeakZ0:gmZmode = 0",
        f"23:mMin = {MASS_RANGE[0]}",
        f"23:mMax = {MASS_RANGE[1]}",
        "23:onMode = off",
        "23:onIfAny = 13",
    ]


def _p4(particle) -> np.ndarray:
    return np.array([particle.e(), particle.px(), particle.py(), particle.pz()])


def _generate_chunk(task: tuple) -> dict:
    """Generate ``n_events`` accepted events with one Pythia seed (runs in a worker process)."""
    chunk_index, n_events, seed, max_tries = task
    import fastjet
    import pythia8mc

    start = time.perf_counter()
    muons = np.zeros((n_events, 2, 4))
    jets = np.zeros((n_events, MAX_JETS, 4))
    n_jets = np.zeros(n_events, dtype=np.int64)
    weight = np.zeros(n_events)
    jet_counts = np.zeros(MAX_JETS + 2, dtype=np.int64)  # 0, 1, 2, 3, more
    n_kept = n_tried = 0
    with stdout_silenced():
        pythia = pythia8mc.Pythia("", False)
        for setting in _pythia_settings(_chunk_seed(seed, chunk_index)):
            if not pythia.readString(setting):
                raise RuntimeError(f"Pythia rejected the setting {setting!r}")
        if not pythia.init():
            raise RuntimeError("Pythia failed to initialise")
        jet_definition = fastjet.JetDefinition(fastjet.antikt_algorithm, JET_RADIUS)
        while n_kept < n_events:
            if n_tried >= max_tries:
                raise RuntimeError(f"chunk {chunk_index}: {n_kept} of {n_events} events kept")
            n_tried += 1
            if not pythia.next():
                continue
            event = pythia.event
            candidates = {+1: [], -1: []}
            others = []
            for index in range(event.size()):
                particle = event[index]
                if not (particle.isFinal() and particle.isVisible()):
                    continue
                if (
                    particle.idAbs() == 13
                    and particle.pT() > MUON_PT_MIN
                    and abs(particle.eta()) < MUON_ETA_MAX
                ):
                    candidates[-1 if particle.id() == 13 else +1].append(particle)
                elif abs(particle.eta()) < PARTICLE_ETA_MAX:
                    others.append(particle)
            if not candidates[+1] or not candidates[-1]:
                continue
            mu_plus = max(candidates[+1], key=lambda p: p.pT())
            mu_minus = max(candidates[-1], key=lambda p: p.pT())
            # muons that are not the pair are ordinary visible particles for the jets
            others += [p for p in candidates[+1] + candidates[-1] if p not in (mu_plus, mu_minus)]
            pseudojets = [fastjet.PseudoJet(p.px(), p.py(), p.pz(), p.e()) for p in others]
            sequence = fastjet.ClusterSequence(pseudojets, jet_definition)
            selected = [
                jet
                for jet in fastjet.sorted_by_pt(sequence.inclusive_jets(JET_PT_MIN))
                if abs(jet.eta()) < JET_ETA_MAX
            ]
            jet_counts[min(len(selected), MAX_JETS + 1)] += 1
            if not 1 <= len(selected) <= MAX_JETS:
                continue
            muons[n_kept, 0], muons[n_kept, 1] = _p4(mu_plus), _p4(mu_minus)
            for slot, jet in enumerate(selected):
                jets[n_kept, slot] = (jet.e(), jet.px(), jet.py(), jet.pz())
            n_jets[n_kept] = len(selected)
            weight[n_kept] = pythia.infoPython().weight()
            n_kept += 1
    return {
        "chunk_index": chunk_index,
        "muons": muons,
        "jets": jets,
        "n_jets": n_jets,
        "weight": weight,
        "n_tried": n_tried,
        "jet_counts": jet_counts,
        "seconds": time.perf_counter() - start,
    }


def generate(
    n_events: int,
    *,
    seed: int = 1,
    n_workers: int = 2,
    chunk_size: int = 1000,
    progress: bool = True,
) -> tuple[ZJetsSample, dict]:
    """Generate ``n_events`` Z -> mu mu + 1, 2 or 3 jet events with Pythia 8 and FastJet.

    Chunk k uses the Pythia seed ``1 + (seed * 10^6 + 7 * 10^5 + k) mod 9 * 10^8``, so the result
    depends on ``seed`` and ``chunk_size`` but not on ``n_workers``; chunks are concatenated in
    order (no shuffle: the events of a chunk are already independent).

    Returns:
        The :class:`ZJetsSample` and a dict of statistics (events tried, wall and worker seconds,
        events per second per core, the jet-multiplicity counts before the 1-3 jet selection).

    Raises:
        ImportError: pythia8mc or fastjet is missing (with the install hint).
    """
    n_events = check_count("n_events", n_events)
    seed = check_count("seed", seed)
    n_workers = check_count("n_workers", n_workers)
    chunk_size = check_count("chunk_size", chunk_size)
    if min(n_events, n_workers, chunk_size) == 0:
        raise ValueError("n_events, n_workers and chunk_size must be positive")
    if math.ceil(n_events / chunk_size) >= 100_000:
        raise ValueError("too many chunks: raise chunk_size")
    require_pythia_and_fastjet("Z + jets generator")

    tasks = [
        (k, min(chunk_size, n_events - first), seed, 20 * chunk_size + 1000)
        for k, first in enumerate(range(0, n_events, chunk_size))
    ]
    results: list[dict] = []

    def record(result: dict) -> int:
        results.append(result)
        return result["n_jets"].size

    wall = run_chunks(
        _generate_chunk,
        tasks,
        n_workers,
        record,
        total=n_events,
        unit="event",
        desc="Z+jets",
        progress=progress,
    )
    results.sort(key=lambda r: r["chunk_index"])
    n_tried = sum(r["n_tried"] for r in results)
    worker_seconds = sum(r["seconds"] for r in results)
    stats = {
        "events_tried": n_tried,
        "events_kept": n_events,
        "wall_seconds": wall,
        "worker_seconds": worker_seconds,
        "events_per_second_per_core": n_tried / worker_seconds,
        "kept_per_second_wall": n_events / wall,
        "jet_multiplicity_before_selection": {
            label: int(sum(r["jet_counts"][i] for r in results))
            for i, label in enumerate(("0", "1", "2", "3", ">3"))
        },
        "n_workers": n_workers,
    }
    sample = ZJetsSample(
        muons=np.concatenate([r["muons"] for r in results]),
        jets=np.concatenate([r["jets"] for r in results]),
        n_jets=np.concatenate([r["n_jets"] for r in results]),
        weight=np.concatenate([r["weight"] for r in results]),
        metadata={
            "seed": seed,
            "n_events": n_events,
            "chunk_size": chunk_size,
            "sqrt_s_gev": SQRT_S,
            "pthat_min_gev": PTHAT_MIN,
            "mass_range_gev": list(MASS_RANGE),
            "jet_radius": JET_RADIUS,
            "jet_pt_min_gev": JET_PT_MIN,
            "jet_eta_max": JET_ETA_MAX,
            "muon_pt_min_gev": MUON_PT_MIN,
            "muon_eta_max": MUON_ETA_MAX,
            "pythia8mc": importlib.metadata.version("pythia8mc"),
            "fastjet": importlib.metadata.version("fastjet"),
            "generation": stats,
            "command": (
                f"python -m lhcbnn.data.zjets --n-events {n_events} --seed {seed} "
                f"--chunk-size {chunk_size}"
            ),
        },
    )
    return sample, stats


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m lhcbnn.data.zjets --n-events N --out FILE``."""
    parser = argparse.ArgumentParser(
        prog="python -m lhcbnn.data.zjets",
        description="Generate Z -> mu mu + 1-3 jet events (Pythia 8 + FastJet) into an .npz file.",
    )
    parser.add_argument("--n-events", type=int, required=True, help="events to keep")
    parser.add_argument("--out", required=True, help="output file (.npz)")
    parser.add_argument("--seed", type=int, default=1, help="run seed (default 1)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes")
    parser.add_argument("--chunk-size", type=int, default=1000, help="events per Pythia seed")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    sample, stats = generate(
        args.n_events,
        seed=args.seed,
        n_workers=args.workers,
        chunk_size=args.chunk_size,
        progress=not args.no_progress,
    )
    path = save(sample, args.out)
    print(json.dumps(stats, indent=1))
    print(f"wrote {len(sample)} events to {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    # Re-import so that worker processes pickle functions of lhcbnn.data.zjets, not of __main__.
    from lhcbnn.data.zjets import main as _main

    raise SystemExit(_main())
