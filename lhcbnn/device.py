"""Device selection and seeding: the one place that decides where tensors live."""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch

__all__ = ["device", "seed_everything", "as_tensor"]

_ENV_VAR = "LHCBNN_DEVICE"


def device() -> torch.device:
    """The device every tensor of the package goes to.

    Returns the device named by the environment variable ``LHCBNN_DEVICE`` when it is
    set (for example ``cpu``, ``cuda:1`` or ``mps``), else the first CUDA device when
    one is available, else the CPU.

    Raises:
        ValueError: ``LHCBNN_DEVICE`` names no valid torch device.
    """
    requested = os.environ.get(_ENV_VAR, "").strip()
    if requested:
        try:
            return torch.device(requested)
        except RuntimeError as error:
            raise ValueError(
                f"{_ENV_VAR}={requested!r} is not a valid torch device: {error}"
            ) from error
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


_package_device = device  # as_tensor's argument ``device`` shadows the function


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (all devices)."""
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)  # noqa: NPY002 (seeds legacy global users)
    torch.manual_seed(int(seed))


def as_tensor(
    value: object,
    name: str = "input",
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Convert ``value`` (array, list or tensor) to a floating tensor.

    Args:
        value: array-like data.
        name: how the value is called in error messages.
        dtype: the floating dtype; default keeps a floating tensor's dtype, else float32.
        device: where the tensor goes; default :func:`device`. Functions that use a
            model pass the device of its parameters.

    Raises:
        TypeError: the value cannot be converted to a numeric tensor.
        ValueError: the value contains NaN or infinite entries.
    """
    if isinstance(value, torch.Tensor):
        tensor = value
    else:
        try:
            tensor = torch.as_tensor(np.asarray(value))
        except (TypeError, ValueError) as error:
            raise TypeError(f"{name} cannot be converted to a tensor: {error}") from error
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise TypeError(f"{name} must be real-valued, got dtype {tensor.dtype}")
    if dtype is None:
        dtype = tensor.dtype if tensor.is_floating_point() else torch.get_default_dtype()
    tensor = tensor.to(device=_package_device() if device is None else device, dtype=dtype)
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return tensor


def forked_rng(where: torch.device) -> contextlib.AbstractContextManager:
    """``torch.random.fork_rng`` for the generator of the device ``where`` (the CPU generator is
    always forked): random numbers drawn inside leave the caller's global state untouched."""
    devices = [where] if where.type != "cpu" else []
    return torch.random.fork_rng(devices=devices, device_type=where.type)
