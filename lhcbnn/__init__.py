"""lhcbnn: Bayesian neural networks and uncertainties for LHC physics.

The reference package of the lhcbnn book: Bayesian layers held to analytic truth, the
losses and predictive uncertainties of the chapters, data with known truth, and the
autograder of the exercises.
"""

from lhcbnn import checks, conjugate, losses, validation
from lhcbnn.baselines import DeepEnsemble, DeterministicMLP, MCDropout, MCDropoutMLP
from lhcbnn.device import as_tensor, device, seed_everything
from lhcbnn.layers import (
    BayesianModule,
    VBLinear,
    draws,
    fixed_draw,
    is_stochastic,
    kl_divergence,
    map_mode,
)
from lhcbnn.models import BayesianMLP, RegressionMLP
from lhcbnn.predict import Prediction, PredictionArrays, predict, predictive_samples, pulls
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
    "PredictionArrays",
    "RegressionMLP",
    "VBLinear",
    "as_tensor",
    "checks",
    "conjugate",
    "data",
    "device",
    "draws",
    "fixed_draw",
    "is_stochastic",
    "kl_divergence",
    "losses",
    "map_mode",
    "predict",
    "predictive_samples",
    "pulls",
    "seed_everything",
    "train",
    "validation",
]


def __getattr__(name: str) -> object:
    """Subpackages and submodules loaded on first use, so ``import lhcbnn`` stays light.

    Any ``lhcbnn.<name>`` that exists as a module is imported on first access; a name
    without a module is an AttributeError (so ``hasattr(lhcbnn, "flows")`` is False until
    ``lhcbnn/flows`` exists), while an ImportError raised inside an existing module
    propagates unchanged.
    """
    import importlib
    import importlib.util

    if name.startswith("_") or importlib.util.find_spec(f"{__name__}.{name}") is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return importlib.import_module(f"{__name__}.{name}")
