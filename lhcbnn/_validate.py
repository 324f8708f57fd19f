"""Argument checks shared by the package: one place for "a positive number" and its kin.

Every public function that takes a width, a rate or a count checks it here, so that a
Python number, a NumPy scalar (``np.float32(0.5)``) and a 0-d tensor are accepted alike
and a bad value gets the same clear error everywhere.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

__all__ = ["finite_array", "positive_integer", "positive_number", "real_number"]


def real_number(value: object, name: str, *, finite: bool = True) -> float:
    """``value`` as a Python float, finite unless ``finite=False``.

    Accepts Python and NumPy integers and floats and 0-d (or one-element) real tensors
    and arrays; rejects booleans, strings and anything with more than one element.

    Raises:
        TypeError: not a real number.
        ValueError: NaN or infinite (with ``finite=True``).
    """
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a number, got the boolean {value!r}")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.dtype == torch.bool or value.is_complex():
            raise TypeError(f"{name} must be a single real number, got a tensor {value!r}")
        value = value.item()
    elif isinstance(value, np.ndarray):
        if value.size != 1 or value.dtype.kind not in "iuf":
            raise TypeError(f"{name} must be a single real number, got an array {value!r}")
        value = value.item()
    if not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    result = float(value)
    if finite and not math.isfinite(result):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return result


def finite_array(values: object, name: str, *, flatten: bool = False) -> np.ndarray:
    """``values`` (array-like or tensor, on any device) as a float64 NumPy array.

    With ``flatten=True`` the result is 1-d ``(n,)``; otherwise it keeps its shape.

    Raises:
        TypeError: not convertible to real numbers.
        ValueError: a NaN or infinite entry.
    """
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be an array of real numbers: {error}") from error
    if flatten:
        array = array.reshape(-1)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def positive_number(value: object, name: str) -> float:
    """``value`` as a positive finite Python float (see :func:`real_number` for the types).

    Raises:
        TypeError: not a real number.
        ValueError: NaN, infinite, zero or negative.
    """
    result = real_number(value, name)
    if result <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return result


def positive_integer(value: object, name: str) -> int:
    """``value`` as a positive Python int: a Python or NumPy integer, or an integer 0-d tensor.

    Raises:
        TypeError: not an integer (a float such as 3.0 and a boolean included).
        ValueError: smaller than 1.
    """
    if isinstance(value, torch.Tensor | np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
