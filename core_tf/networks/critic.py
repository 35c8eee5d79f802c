"""CriticObs: state value V(s) from the flattened observation history; CriticObsAct: Q(s, a) with one
or two Q networks on the flattened history and the flattened action chunk; CriticEnsemble: n single-head
CriticObsAct members (twin of core_torch/networks/critic.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import tensorflow as tf

from core_tf.networks.mlp import build_mlp
from core_tf.runtime.module import Module
from shared.param_spec import CriticObsActConfig, CriticObsConfig, as_tuple


class CriticObs(Module):
    def __init__(
        self,
        cond_dim: int,
        mlp_dims: Sequence[int] = (256, 256),
        activation_type: str = "Mish",
        use_layernorm: bool = False,
        residual_style: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.config = CriticObsConfig(cond_dim, as_tuple(mlp_dims), activation_type, use_layernorm, residual_style)
        self.Q1 = self.add_child("Q1", build_mlp(self.config.q1()))

    @classmethod
    def from_config(cls, cfg: CriticObsConfig) -> CriticObs:
        return cls(**cfg.__dict__)

    def call(self, state: tf.Tensor) -> tf.Tensor:
        """state (B, To, Do) or (B, To*Do) -> (B, 1)."""
        return self.Q1(tf.reshape(state, [tf.shape(state)[0], self.config.cond_dim]))


class CriticObsAct(Module):
    def __init__(self, cfg: CriticObsActConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.config = cfg
        for head in cfg.heads:
            self.add_child(head, build_mlp(cfg.q()))

    def call(self, state: tf.Tensor, action: tf.Tensor) -> tuple[tf.Tensor, ...]:
        """state (B, To, Do), action (B, Ta, Da) -> (q1 (B,), q2 (B,)), or (q1,) without double_q."""
        c = self.config
        x = tf.concat([tf.reshape(state, [-1, c.cond_dim]), tf.reshape(action, [-1, c.action_steps * c.action_dim])],
                      axis=-1)
        return tuple(self.child(head)(x)[:, 0] for head in c.heads)


class CriticEnsemble(Module):
    """n single-head Q networks, members named 0..n-1."""

    def __init__(self, cfg: CriticObsActConfig, n: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.members = [self.add_child(str(i), CriticObsAct(replace(cfg, double_q=False))) for i in range(n)]

    def call(self, state: tf.Tensor, action: tf.Tensor) -> tf.Tensor:
        """state (B, To, Do), action (B, Ta, Da) or (B, Ta*Da) -> every member's Q (n, B)."""
        return tf.stack([member(state, action)[0] for member in self.members])

    def min_of_pair(self, state: tf.Tensor, action: tf.Tensor, pair: tf.Tensor) -> tf.Tensor:
        """min(Q_i, Q_j) (B,) of the two members `pair` (2,) int: every member runs and two are gathered, so one
        compiled step serves every drawn pair."""
        return tf.reduce_min(tf.gather(self(state, action), pair), axis=0)
