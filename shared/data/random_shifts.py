"""Random-shift augmentation of images (upstream's RandomShiftsAug, model/common/modules.py), drawn in numpy.

Upstream pads a (n, c, h, h) float batch by `pad` pixels on each side, repeating the border pixels
(`F.pad(..., "replicate")`), draws one integer shift per image and axis with
`torch.randint(0, 2 pad + 1, (n, 1, 1, 2))` on the batch's device (torch's own generator), and resamples with
`grid_sample(align_corners=False, padding_mode="zeros")` on a grid whose points sit at the centres of the padded
image's pixels, moved by the shift: output pixel (i, j) is padded pixel (i + shift[1], j + shift[0]) (shift[0]
moves columns, shift[1] rows). Bilinear sampling at pixel centres is a crop of the padded image; upstream computes
it in floating point (its grid's rounding mixes neighbours by ~1e-7 of their difference).

Here the shifts are drawn once from numpy (`draw_shifts`, the same numbers for both frameworks, from the caller's
keyed generator), and both twins crop exactly: output pixel (i, j) = input pixel (clip(i + dy - pad, 0, h - 1),
clip(j + dx - pad, 0, w - 1)), the replicate padding written as a clamp of the index (`shift_indices`). Augmented
batches are therefore identical across the twins, and equal to upstream's for the same shifts up to upstream's
grid rounding. A network with two cameras augments each with its own draw, camera 1 first (upstream's order).
"""

from __future__ import annotations

import numpy as np

SHIFT_PAD = 4  # RandomShiftsAug(pad=4): every upstream network that augments builds it so


def draw_shifts(rng: np.random.Generator, batch: int, num_img: int = 1, pad: int = SHIFT_PAD) -> np.ndarray:
    """(num_img, batch, 2) int64 shifts in [0, 2 pad], [..., 0] along columns (x), [..., 1] along rows (y)."""
    return rng.integers(0, 2 * pad + 1, size=(num_img, batch, 2), dtype=np.int64)


def shift_indices(shifts: np.ndarray, height: int, width: int, pad: int = SHIFT_PAD) -> tuple[np.ndarray, np.ndarray]:
    """shifts (B, 2) -> source rows (B, height) and columns (B, width) int64 of each output pixel: the
    replicate-padded image cropped at the shift."""
    shifts = np.asarray(shifts, dtype=np.int64)
    if shifts.ndim != 2 or shifts.shape[1] != 2 or shifts.min(initial=0) < 0 or shifts.max(initial=0) > 2 * pad:
        raise ValueError(f"shifts must be (batch, 2) integers in [0, {2 * pad}], got shape {shifts.shape}")
    rows = np.clip(np.arange(height)[None, :] + shifts[:, 1:2] - pad, 0, height - 1)  # (B, H)
    cols = np.clip(np.arange(width)[None, :] + shifts[:, 0:1] - pad, 0, width - 1)  # (B, W)
    return rows, cols


def apply_shifts(images: np.ndarray, shifts: np.ndarray, pad: int = SHIFT_PAD) -> np.ndarray:
    """images (B, C, H, W), shifts (B, 2) -> the shifted batch (B, C, H, W), in numpy (the twins' reference)."""
    rows, cols = shift_indices(shifts, images.shape[2], images.shape[3], pad)
    b = np.arange(images.shape[0])[:, None, None]
    return np.moveaxis(images[b, :, rows[:, :, None], cols[:, None, :]], -1, 1)  # (B, H, W, C) -> (B, C, H, W)


def shift_frames(rgb: np.ndarray, shifts: np.ndarray, pad: int = SHIFT_PAD) -> np.ndarray:
    """Camera frames (B, T, 3 num_img, H, W) (any dtype; uint8 stays uint8), shifts (num_img, B, 2) ->
    each camera's frames of every time step cropped at that camera's shift: what an image network with
    augment does to its input (core_*/networks/vision.py), done once in numpy on the batch."""
    B, T, C, H, W = rgb.shape
    num_img = shifts.shape[0]
    cams = rgb.reshape(B, T, num_img, 3, H, W)
    out = np.empty_like(cams)
    for i in range(num_img):
        flat = cams[:, :, i].reshape(B, T * 3, H, W)  # (B, T 3, H, W): the camera's frames stacked
        out[:, :, i] = apply_shifts(flat, shifts[i], pad).reshape(B, T, 3, H, W)
    return out.reshape(B, T, C, H, W)
