r"""Checks against truth that hold on every machine.

A number that comes out of training, or out of any floating-point reduction, differs in its
last digits between CPUs, GPUs and torch builds, and a trained number also moves from seed to
seed. The chapters therefore never compare printed strings of such numbers. Each one is held
against its truth (an analytic value, a known noise, an exact density) by :func:`check`, with
a band set at the physics claim the chapter makes and never inside about four standard
deviations of the seed-to-seed spread measured for it::

    import lhcbnn as lb
    lb.checks.check("pull width", width, truth=1.0, atol=0.1, spread=0.012)

prints one readable line (quantity, value, truth, allowed band, measured spread, verdict) and
raises :class:`CheckFailed`, an ``AssertionError`` naming the quantity, when the value is
outside the band, so that the notebook (and nbval) fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lhcbnn._validate import real_number

__all__ = ["CheckFailed", "CheckResult", "check", "MIN_SPREADS_IN_BAND"]

MIN_SPREADS_IN_BAND = 4.0
"""A band's half-width must be at least this many measured seed-to-seed standard deviations."""


class CheckFailed(AssertionError):
    """A checked quantity lies outside its allowed band."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one :func:`check`.

    Attributes:
        quantity: what was checked, as printed.
        value: the measured value.
        low, high: the allowed band (``-inf``/``inf`` for a one-sided check).
        truth: the truth or reference the band is centred on, if any.
        spread: the measured seed-to-seed standard deviation, if given.
        passed: whether ``low <= value <= high``.
    """

    quantity: str
    value: float
    low: float
    high: float
    truth: float | None
    spread: float | None
    passed: bool

    def __str__(self) -> str:
        parts = [f"check {self.quantity}: {_fmt(self.value)}"]
        if self.truth is not None:
            parts.append(f"truth {_fmt(self.truth)}")
        parts.append(f"allowed [{_fmt(self.low)}, {_fmt(self.high)}]")
        if self.spread is not None:
            parts.append(f"seed spread {_fmt(self.spread)}")
        parts.append("PASS" if self.passed else "FAIL")
        return " | ".join(parts)


def _fmt(number: float) -> str:
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    return f"{number:.4g}"


def _scalar(value: Any, name: str) -> float:
    """A Python float from a number, a NumPy scalar or a one-element array or tensor; NaN
    and infinity pass (a NaN value fails its check, an infinite band limit is open)."""
    return real_number(value, name, finite=False)


def check(
    quantity: str,
    value: Any,
    truth: Any = None,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    band: tuple[float | None, float | None] | None = None,
    spread: float | None = None,
    quiet: bool = False,
) -> CheckResult:
    r"""Hold ``value`` against its truth and print the verdict.

    Either give ``truth`` with a tolerance, allowed band
    :math:`|v - t| \le \mathrm{atol} + \mathrm{rtol}\,|t|`, or give an explicit ``band``
    ``(low, high)`` (``None`` for an open side), optionally with ``truth`` for the record.

    Args:
        quantity: what is checked, e.g. ``"sigma_stoch / true noise - 1"``.
        value: the measured number (Python or NumPy scalar, one-element array or tensor).
        truth: the analytic or known value the band is centred on.
        atol, rtol: absolute and relative tolerance around ``truth``.
        band: explicit allowed interval, e.g. ``(0.9, 1.1)`` or ``(None, 0.05)``.
        spread: the seed-to-seed standard deviation measured for this quantity; a two-sided
            band narrower than :data:`MIN_SPREADS_IN_BAND` times it is refused, since such a
            check would fail on another machine or seed for no physics reason.
        quiet: do not print the line.

    Returns:
        The :class:`CheckResult` (its ``str`` is the printed line).

    Raises:
        CheckFailed: the value is NaN or outside the band (the message names the quantity).
        ValueError: the band is ill-defined or narrower than the measured spread allows.
    """
    if not isinstance(quantity, str) or not quantity.strip():
        raise ValueError("quantity must be a non-empty string naming what is checked")
    measured = _scalar(value, f"value of {quantity!r}")
    reference = None if truth is None else _scalar(truth, f"truth of {quantity!r}")
    if reference is not None and not math.isfinite(reference):
        raise ValueError(f"truth of {quantity!r} is {reference}, not a finite number")
    if band is not None:
        if atol is not None or rtol is not None:
            raise ValueError(f"{quantity!r}: give either band or atol/rtol, not both")
        if len(band) != 2 or band == (None, None):
            raise ValueError(f"{quantity!r}: band must be (low, high) with at least one bound")
        low = -math.inf if band[0] is None else _scalar(band[0], "band low")
        high = math.inf if band[1] is None else _scalar(band[1], "band high")
    else:
        if reference is None:
            raise ValueError(f"{quantity!r}: give truth with atol/rtol, or a band")
        if atol is None and rtol is None:
            raise ValueError(f"{quantity!r}: give atol and/or rtol around the truth")
        tolerance = (atol or 0.0) + (rtol or 0.0) * abs(reference)
        if not tolerance > 0:
            raise ValueError(f"{quantity!r}: the tolerance must be positive, got {tolerance}")
        low, high = reference - tolerance, reference + tolerance
    if not low < high:
        raise ValueError(f"{quantity!r}: empty band [{low}, {high}]")
    if spread is not None:
        spread = _scalar(spread, f"spread of {quantity!r}")
        if not (math.isfinite(spread) and spread >= 0):
            raise ValueError(f"spread of {quantity!r} must be a finite number >= 0, got {spread}")
        half_width = (high - low) / 2
        if math.isfinite(half_width) and half_width < MIN_SPREADS_IN_BAND * spread:
            raise ValueError(
                f"{quantity!r}: the band [{_fmt(low)}, {_fmt(high)}] is narrower than "
                f"{MIN_SPREADS_IN_BAND:g} measured seed spreads ({_fmt(spread)}); widen it to "
                "the physics claim or reduce the spread"
            )
    passed = math.isfinite(measured) and low <= measured <= high
    result = CheckResult(quantity, measured, low, high, reference, spread, passed)
    if not quiet:
        print(result, flush=True)
    if not passed:
        raise CheckFailed(f"{quantity}: {result}")
    return result
