"""A policy's observation on the TF side: a state tensor (B, To, Do), or a camera observation's
(state, rgb) pair (rgb (B, T, C, H, W) uint8, scaled inside the image networks). shared/data/observations.py
is the numpy side; this is the one place here that tells the two forms apart."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from core_tf.runtime.precision import float_dtype
from shared.data import observations as ob
from shared.param_spec.vit import IMAGE_NETWORK_CONFIGS

Cond = tf.Tensor | tuple[tf.Tensor, ...]


def obs_tensors(obs: ob.Obs) -> Cond:
    """numpy observation -> its tensor form: the state tensor, or (state, rgb) (frames kept uint8)."""
    if ob.is_image(obs):
        return tuple(tf.constant(a) for a in ob.network_inputs(obs))
    return tf.constant(obs)


def cond_inputs(obs: Cond) -> tuple[tf.Tensor, ...]:
    """The positional inputs a network's condition / call takes: (state,) or (state, rgb)."""
    return tuple(obs) if isinstance(obs, (tuple, list)) else (obs,)


def state_input(obs: Cond) -> tf.Tensor:
    """The state part (B, To, Do)."""
    return cond_inputs(obs)[0]


def repeat_rows(obs: Cond, k: int) -> Cond:
    """Every row repeated k times in place (row b -> rows b k .. b k + k - 1), on each part."""
    if isinstance(obs, (tuple, list)):
        return tuple(tf.repeat(x, k, axis=0) for x in obs)
    return tf.repeat(obs, k, axis=0)


def step_inputs(obs: ob.Obs) -> Any:
    """A numpy observation as a compiled step takes it: the state array, or the (state, rgb) tuple."""
    return ob.network_inputs(obs) if ob.is_image(obs) else obs


def to_tensors(obs: Cond | ob.Obs) -> Cond:
    """Tensors of an observation given as numpy or tensors: the state in the compute dtype, frames as they are."""
    if ob.is_image(obs):
        obs = ob.network_inputs(obs)
    if isinstance(obs, (tuple, list)):
        return (tf.convert_to_tensor(obs[0], float_dtype()), *(tf.convert_to_tensor(x) for x in obs[1:]))
    return tf.convert_to_tensor(obs, float_dtype())


def obs_signature(network: Any, cond_steps: int | None, obs_dim: int | None
                  ) -> tf.TensorSpec | tuple[tf.TensorSpec, ...]:
    """The TensorSpec of the observation `network` (its config) reads: the state (B, To, Do), and for an image
    network also the frames (B, T, 3 num_img, H, W) uint8 (any history length T: it reads the last
    img_cond_steps). None: that axis is left open."""
    state = tf.TensorSpec([None, cond_steps, obs_dim], float_dtype())
    if not isinstance(network, IMAGE_NETWORK_CONFIGS):
        return state
    bb = network.backbone
    return state, tf.TensorSpec([None, None, 3 * network.num_img, bb.img_h, bb.img_w], tf.uint8)
