"""scikit-learn's bundled 8x8 handwritten digits (1797 images, classes 0-9) as the image data set.

Pixels (0..16) are scaled to [-1, 1] by x / 8 - 1 and kept at 8x8: the denoiser sees a flat (64,) vector.
The class label plays the prompt; class NUM_CLASSES is the null ("no prompt") class of classifier-free
guidance.
"""

from __future__ import annotations

import functools

import numpy as np

SIDE = 8
PIXELS = SIDE * SIDE
NUM_CLASSES = 10
NULL_CLASS = NUM_CLASSES  # the unconditional "prompt"


@functools.cache
def _load() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.reshape(len(d.images), PIXELS) / 8.0 - 1.0).astype(np.float32)
    return x, d.target.astype(np.int64)


def digits() -> tuple[np.ndarray, np.ndarray]:
    """All images (N, 64) float32 in [-1, 1] and labels (N,) int64 in [0, 10)."""
    x, y = _load()
    return x.copy(), y.copy()


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Images (B, 64) in [-1, 1] -> (B, 8, 8) uint8 grey levels (clipped, rounded)."""
    a = np.asarray(images, np.float64).reshape(-1, SIDE, SIDE)
    return np.clip(np.round((a + 1.0) * 127.5), 0, 255).astype(np.uint8)


def one_hot(labels: np.ndarray) -> np.ndarray:
    """Labels (B,) in [0, 10] (10 = null) -> (B, 11) float32: the denoiser's context input."""
    return np.eye(NUM_CLASSES + 1, dtype=np.float32)[np.asarray(labels, np.int64)]


def prompts(seed: int, iteration: int, stream: int, n: int) -> np.ndarray:
    """n prompts (classes) drawn uniformly for one iteration's samples, int64."""
    return np.random.default_rng([seed, iteration, stream, 41]).integers(0, NUM_CLASSES, n).astype(np.int64)


def grid(images: np.ndarray, labels: np.ndarray, columns: int = 8, scale: int = 4) -> np.ndarray:
    """A (rows*(8*scale+2), columns*(8*scale+2)) uint8 picture of images (B, 64), one per cell, sorted by
    label so a row reads as prompts in order."""
    order = np.argsort(labels, kind="stable")
    tiles = to_uint8(images[order])
    rows = -(-len(tiles) // columns)
    cell = SIDE * scale + 2
    out = np.full((rows * cell, columns * cell), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        big = np.kron(tile, np.ones((scale, scale), np.uint8))
        out[r * cell + 1: r * cell + 1 + SIDE * scale, c * cell + 1: c * cell + 1 + SIDE * scale] = big
    return out
