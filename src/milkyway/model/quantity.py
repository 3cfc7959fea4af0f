"""Kubernetes resource quantities as exact numbers, to compare a limit with its request.

``500m`` is 0.5, ``2Gi`` is 2 * 2**30, ``1e3`` is 1000; :class:`~fractions.Fraction`
keeps them exact so that ``1000m`` equals ``1``.
"""

from __future__ import annotations

import re
from fractions import Fraction

_SUFFIXES = {
    "": Fraction(1),
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
}
_FORM = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d{1,3})|([numkMGTPE]i?)?)$")


def quantity_value(text: str) -> Fraction | None:
    """The value of ``text``, or ``None`` when it is not a quantity."""
    match = _FORM.match(text.strip())
    if match is None:
        return None
    number, exponent, suffix = match.groups()
    value = Fraction(number)
    if exponent:
        return value * Fraction(10) ** int(exponent[1:])
    factor = _SUFFIXES.get(suffix or "")
    return None if factor is None else value * factor
