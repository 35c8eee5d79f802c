"""Numeric command-line options checked before any work starts: argparse types, so a bad value gets
argparse's usage line and one error, exit 2 (output paths: dppo/runs/paths.py)."""

from __future__ import annotations

import argparse

from shared.config.reader import MAX_SEED


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (>= 1), got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer (>= 0), got {text!r}")
    return value


def seed(text: str) -> int:
    """argparse type: a seed every RNG takes, in [0, MAX_SEED]."""
    value = _int(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be in [0, {MAX_SEED}], got {text!r}")
    return value


BACKEND_HELP = "framework to run: torch or tf (same numbers, checkpoints interchangeable)"
