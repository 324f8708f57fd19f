"""Data with known truth: 2D and regression toys, simulated jets, exact amplitudes.

Submodules (imported on first attribute access, so ``import lhcbnn.data`` stays light and never
imports Pythia or FastJet):

* :mod:`lhcbnn.data.toys` -- wedge ramp, kicker ramp, Gaussian ring, the two-class tagging toy and
  the heteroskedastic regression toy, each with its exact density or noise;
* :mod:`lhcbnn.data.jets` -- top and QCD jets from Pythia 8 + FastJet and the shipped sample;
* :mod:`lhcbnn.data.amplitudes` -- RAMBO phase space and the exact tree-level gg -> ggg
  squared matrix element (Parke-Taylor);
* :mod:`lhcbnn.data.regression` -- the 1D regression toy (also re-exported by ``toys``);
* :mod:`lhcbnn.data.top_pt` -- inputs and labels for top-pT regression from top jets.
* :mod:`lhcbnn.data.generator_toys` -- a 2D bump on a Gaussian with a cut, the truth and flawed
  training sets of chapter 9 with exact densities.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["toys", "jets", "zjets", "amplitudes", "regression", "top_pt", "generator_toys"]


def __getattr__(name: str) -> ModuleType:
    if name in __all__:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
