"""Argument types and the usage error of the ``rnn-jax`` commands.

A command answers misuse with one line on stderr and exit status 2, before computing
anything: argparse checks what a type can (these), a command raises :class:`UsageError` for
the rest (files, combinations of options), and :func:`rnn_jax._src.cli.main` prints it.
"""

from __future__ import annotations

import argparse
import math
import os


class UsageError(Exception):
    """Misuse of a command; :func:`rnn_jax._src.cli.main` prints it on one line, exit 2."""


def _number(text: str, kind: type, low: float, strict: bool, what: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not math.isfinite(value) or (value <= low if strict else value < low):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An int >= 1."""
    return _number(text, int, 0, True, "a positive integer")


def positive_float(text: str) -> float:
    """A finite float > 0."""
    return _number(text, float, 0.0, True, "a positive number")


def nonnegative_float(text: str) -> float:
    """A finite float >= 0."""
    return _number(text, float, 0.0, False, "a number >= 0")


def nonnegative_int(text: str) -> int:
    """An int >= 0."""
    return _number(text, int, 0, False, "an integer >= 0")


def _listed(text: str, item, what: str) -> list:
    try:
        values = [item(v) for v in text.split(",") if v.strip()]
    except argparse.ArgumentTypeError:
        values = []
    if not values:
        raise argparse.ArgumentTypeError(f"expected {what} separated by commas, got {text!r}")
    return values


def positive_ints(text: str) -> list[int]:
    """Comma-separated ints >= 1, at least one."""
    return _listed(text, positive_int, "positive integers")


def positive_floats(text: str) -> list[float]:
    """Comma-separated finite floats > 0, at least one."""
    return _listed(text, positive_float, "positive numbers")


def fraction(text: str) -> float:
    """A float in (0, 1]."""
    value = _number(text, float, 0.0, True, "a number in (0, 1]")
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}")
    return value


def probability(text: str) -> float:
    """A float in [0, 1)."""
    value = _number(text, float, 0.0, False, "a number in [0, 1)")
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def writable_dir(path: str, argname: str) -> str:
    """``path`` created if needed and writable, or a :class:`UsageError` naming ``argname``."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise UsageError(f"{argname} {path}: cannot create the directory ({err.strerror})") \
            from None
    if not os.access(path, os.W_OK):
        raise UsageError(f"{argname} {path}: the directory is not writable")
    return path


def existing_dir(path: str, argname: str) -> str:
    """``path`` if it is a directory, or a :class:`UsageError` naming ``argname``."""
    if not os.path.isdir(path):
        raise UsageError(f"{argname} {path}: no such directory")
    return path
