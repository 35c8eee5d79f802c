"""Rewards of a batch of images, in numpy: r(images (B, 64) in [-1, 1], prompts (B,)) -> (B,) float64.

    jpeg_size_kb:       size of the image's JPEG (Pillow, fixed quality, grey levels, the 8x8 image first
                        upscaled `upscale` times by pixel repetition so JPEG's 8x8 blocks see pixel edges)
    compressibility:    -jpeg_size_kb                  (DDPO's "compressibility")
    incompressibility:  +jpeg_size_kb                  (DDPO's "incompressibility")
    alignment:          log p(prompt | image) under a multinomial logistic-regression classifier trained
                        (scikit-learn, deterministic) on the same digits: the prompt-alignment reward

Any numpy callable on a batch of images becomes a reward with `image_reward(fn)`; REWARDS names the
built-in ones for configs.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable

import numpy as np

from shared.ddpo.digits import digits, to_uint8

Reward = Callable[[np.ndarray, np.ndarray], np.ndarray]

JPEG_QUALITY = 95  # DDPO's
JPEG_UPSCALE = 4


def jpeg_size_kb(images: np.ndarray, quality: int = JPEG_QUALITY, upscale: int = JPEG_UPSCALE) -> np.ndarray:
    """JPEG size in kB (1000 bytes) of every image (B, 64).  (B,)"""
    from PIL import Image

    out = np.empty(len(images), np.float64)
    for i, img in enumerate(to_uint8(images)):
        big = np.kron(img, np.ones((upscale, upscale), np.uint8)) if upscale > 1 else img
        buf = io.BytesIO()
        Image.fromarray(big, "L").save(buf, format="JPEG", quality=quality)
        out[i] = len(buf.getvalue()) / 1000.0
    return out


def image_reward(fn: Callable[[np.ndarray], np.ndarray]) -> Reward:
    """A reward from any numpy callable on a batch of images (B, 64) -> (B,) that ignores the prompt."""
    return lambda images, prompts: np.asarray(fn(images), np.float64).reshape(len(images))


@functools.cache
def classifier() -> object:
    """Multinomial logistic regression on all digits in [-1, 1] (lbfgs, C=1, deterministic)."""
    from sklearn.linear_model import LogisticRegression

    x, y = digits()
    return LogisticRegression(C=1.0, max_iter=2000).fit(x.astype(np.float64), y)


def class_log_probs(images: np.ndarray) -> np.ndarray:
    """log p(c | image) (B, 10) under the classifier (images clipped to [-1, 1] first)."""
    clf = classifier()
    return clf.predict_log_proba(np.clip(np.asarray(images, np.float64), -1.0, 1.0))  # type: ignore[attr-defined]


def alignment(images: np.ndarray, prompts: np.ndarray) -> np.ndarray:
    """log p(prompt | image).  (B,)"""
    return class_log_probs(images)[np.arange(len(images)), np.asarray(prompts, np.int64)]


def prompt_accuracy(images: np.ndarray, prompts: np.ndarray) -> np.ndarray:
    """1.0 where the classifier's top class is the prompt, else 0.0: how recognizable the digit stays.  (B,)"""
    return (np.argmax(class_log_probs(images), axis=1) == np.asarray(prompts)).astype(np.float64)


REWARDS: dict[str, Reward] = {
    "compressibility": image_reward(lambda im: -jpeg_size_kb(im)),
    "incompressibility": image_reward(jpeg_size_kb),
    "alignment": alignment,
}
