"""lhcbnn: Bayesian neural networks and uncertainties for LHC physics.

The reference package of the lhcbnn book: Bayesian layers held to analytic truth, the
losses and predictive uncertainties of the chapters, data with known truth, and the
autograder of the exercises.
"""

from lhcbnn import checks, conjugate, losses, validation
from lhcbnn.baselines import DeepEnsemble, DeterministicMLP, MCDropout, MCDropoutMLP
from lhcbnn.device import as_tensor, device, seed_everything
from lhcbnn.layers import BayesianModule, VBLinear, kl_divergence, map_mode, resample
from lhcbnn.models import BayesianMLP
from lhcbnn.predict import Prediction, predict, predictive_samples, pulls
from lhcbnn.train import History, train

__version__ = "0.1.0"

__all__ = [
    "BayesianMLP",
    "BayesianModule",
    "DeepEnsemble",
    "DeterministicMLP",
    "History",
    "MCDropout",
    "MCDropoutMLP",
    "Prediction",
    "VBLinear",
    "as_tensor",
    "checks",
    "conjugate",
    "data",
    "device",
    "kl_divergence",
    "losses",
    "map_mode",
    "predict",
    "predictive_samples",
    "pulls",
    "resample",
    "seed_everything",
    "train",
    "validation",
]


def __getattr__(name: str) -> object:
    # Subpackages loaded on first use, so `import lhcbnn` stays light.
    if name in ("data", "grading", "plotting", "stats", "flows", "reweight"):
        import importlib

        return importlib.import_module(f"lhcbnn.{name}")
    raise AttributeError(f"module 'lhcbnn' has no attribute {name!r}")
