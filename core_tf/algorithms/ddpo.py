"""DDPO on a small class-conditional image diffusion model, TF side (twin of core_torch/algorithms/ddpo.py):
pre-training with label dropout and an EMA copy, DDIM sampling (eta = 1, classifier-free guidance) that
records each chain and its per-step log-probabilities, and the losses of DDPO-SF, DDPO-IS (clipped ratio),
DDPO-ISKL, RWR and sparse RWR. The train steps and the sampling chain are tf.functions.

Shapes: B chains or images, S sampling steps, D = 64 pixels, C = 11 classes (10 digits + the null class).
A step's log-probability is the mean over the D pixels of the Gaussian log-density (DDPO's convention);
the chain scoring is DPPO's (core_tf/diffusion/model.py: chain_transitions, reverse_mean; PPO's
normal_logprob). Every random number comes from the driver, in numpy.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import tensorflow as tf

from core_tf.algorithms.ppo_loss import normal_logprob
from core_tf.diffusion.model import chain_transitions, reverse_mean
from core_tf.networks.cond_denoiser import CondDenoiser
from core_tf.runtime.canonical import export_state, load_state
from core_tf.runtime.module import Module
from core_tf.runtime.optim import AdamW, clip_grad_norm
from core_tf.runtime.precision import constant, float_dtype
from shared.ddpo.chain import DDPOChain
from shared.ddpo.digits import NULL_CLASS, NUM_CLASSES
from shared.param_spec import CondDenoiserConfig
from shared.settings.ddpo import DDPOPretrainSection, DDPOSampleConfig, DDPOTrainConfig

_COEFS = ("recon_x", "recon_eps", "mean_x0", "mean_xt")


def one_hot(labels: tf.Tensor) -> tf.Tensor:
    """(N,) int -> (N, C) in the compute dtype."""
    return tf.one_hot(labels, NUM_CLASSES + 1, dtype=float_dtype())


def guided_eps(net: Module, x: tf.Tensor, labels: tf.Tensor, t01: tf.Tensor, w: float) -> tf.Tensor:
    """eps_u + w (eps_c - eps_u) (N, D) for x (N, D), labels (N,), t01 (N, 1): one forward of 2N rows, the
    prompted half first, the null half second."""
    n = tf.shape(x)[0]
    both = tf.concat([labels, tf.fill(tf.shape(labels), tf.constant(NULL_CLASS, labels.dtype))], axis=0)
    out = net(one_hot(both), tf.concat([x, x], axis=0), tf.concat([t01, t01], axis=0))
    eps_c, eps_u = out[:n], out[n:]
    return eps_u + w * (eps_c - eps_u)


def _gather_rows(table: tf.Tensor, t: tf.Tensor) -> tf.Tensor:
    return tf.gather(table, t)[:, None]


def step_logprobs(mean: tf.Tensor, nxt: tf.Tensor, std: tf.Tensor, chains: tf.Tensor | int) -> tf.Tensor:
    """(chains, S) log-probabilities, averaged over the pixels, of the steps to nxt (B*S, D) from Gaussians of
    mean (B*S, D) and std (B*S, 1)."""
    return tf.reshape(tf.reduce_mean(normal_logprob(nxt, mean, tf.broadcast_to(std, tf.shape(mean))), -1), [chains, -1])


class DDPOPretrainer:
    """The denoising loss mean (eps_hat(c, x_t, t / T) - eps)^2 with labels given (dropout done by the driver),
    AdamW with the learning rate passed per step, gradient clipping and an EMA copy."""

    def __init__(self, model_cfg: CondDenoiserConfig, chain: DDPOChain, section: DDPOPretrainSection,
                 params: OrderedDict) -> None:
        self.section = section
        self.model = CondDenoiser(model_cfg)
        load_state(self.model, params)
        self.ema = CondDenoiser(model_cfg)
        load_state(self.ema, params, "ema")
        self.named = list(self.model.named_parameters())
        self.variables = [v for _, v in self.named]
        self.ema_variables = [v for _, v in self.ema.named_parameters()]
        self.optimizer = AdamW(self.named, section.weight_decay)
        self.sqrt_ab = constant(chain.tables.sqrt_alphas_cumprod)
        self.sqrt_1m_ab = constant(chain.tables.sqrt_one_minus_alphas_cumprod)
        self.time_input = constant(chain.time_input)
        self._train = tf.function(self._train_step, reduce_retracing=True)

    def loss(self, x0: tf.Tensor, labels: tf.Tensor, t: tf.Tensor, noise: tf.Tensor) -> tf.Tensor:
        """x0, noise (B, D), labels (B,) in [0, C), t (B,) int."""
        x_t = _gather_rows(self.sqrt_ab, t) * x0 + _gather_rows(self.sqrt_1m_ab, t) * noise
        return tf.reduce_mean(tf.square(self.model(one_hot(labels), x_t, _gather_rows(self.time_input, t)) - noise))

    def _train_step(self, x0: tf.Tensor, labels: tf.Tensor, t: tf.Tensor, noise: tf.Tensor, lr: tf.Tensor
                    ) -> dict[str, tf.Tensor]:
        with tf.GradientTape() as tape:
            loss = self.loss(x0, labels, t, noise)
        grads, grad_norm = clip_grad_norm(tape.gradient(loss, self.variables), self.section.max_grad_norm)
        self.optimizer.apply(grads, self.variables, lr)
        d = self.section.ema_decay
        for e, p in zip(self.ema_variables, self.variables):
            e.assign(e * d + p * (1.0 - d))
        return {"loss": loss, "grad_norm": grad_norm}

    def train_step(self, x0: np.ndarray, labels: np.ndarray, t: np.ndarray, noise: np.ndarray, lr: float
                   ) -> dict[str, float]:
        out = self._train(constant(x0), tf.constant(labels, tf.int64), tf.constant(t, tf.int64), constant(noise),
                          constant(lr))
        return {k: float(v) for k, v in out.items()}

    def state_groups(self) -> dict[str, OrderedDict]:
        return {"model": export_state(self.model), "ema": export_state(self.ema), "optimizer": self.optimizer.state()}

    def load_groups(self, groups: dict[str, OrderedDict]) -> None:
        load_state(self.model, groups["model"])
        load_state(self.ema, groups["ema"], "ema")
        self.optimizer.load_state(groups["optimizer"])


class DDPOAgent:
    """Sampling, chain scoring, the algorithm's loss and AdamW steps on numpy arrays; canonical weights in and
    out. `ref_params` (ISKL only) is the frozen pre-trained model the KL term holds the policy to."""

    def __init__(self, model_cfg: CondDenoiserConfig, chain: DDPOChain, sample: DDPOSampleConfig,
                 train: DDPOTrainConfig, algorithm: str, params: OrderedDict, ref_params: OrderedDict | None = None
                 ) -> None:
        self.sample_cfg, self.train_cfg, self.algorithm = sample, train, algorithm
        self.model = CondDenoiser(model_cfg)
        load_state(self.model, params)
        self.ref = None
        if algorithm == "iskl":
            self.ref = CondDenoiser(model_cfg)
            load_state(self.ref, ref_params if ref_params is not None else params, "reference")
        self.named = list(self.model.named_parameters())
        self.variables = [v for _, v in self.named]
        self.optimizer = AdamW(self.named, train.weight_decay)
        sc = chain.scoring
        # per sampling step (S,): the reverse-mean coefficients, the std, the time input t / T
        self.steps = {**{k: constant(getattr(sc, k)) for k in _COEFS}, "std": constant(sc.logprob_std),
                      "t01": constant(chain.time_input[sc.timesteps])}
        self.num_steps = chain.sampling_steps
        self.sqrt_ab = constant(chain.tables.sqrt_alphas_cumprod)
        self.sqrt_1m_ab = constant(chain.tables.sqrt_one_minus_alphas_cumprod)
        self.time_input = constant(chain.time_input)
        self._train = tf.function(self._train_step, reduce_retracing=True)
        self._sample = tf.function(self._sample_chain, reduce_retracing=True)

    def _eps(self, net: Module, x: tf.Tensor, labels: tf.Tensor, t01: tf.Tensor) -> tf.Tensor:
        return guided_eps(net, x, labels, t01, self.sample_cfg.guidance)

    def _sample_chain(self, labels: tf.Tensor, z: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x = z[0]
        ones = tf.ones([tf.shape(x)[0], 1], x.dtype)
        chain, logps = [x], []
        for i in range(self.num_steps):
            s = {k: v[i] for k, v in self.steps.items()}
            mean = reverse_mean(x, self._eps(self.model, x, labels, s["t01"] * ones), s, True, self.sample_cfg.clip_x0)
            x = mean + s["std"] * z[i + 1]
            logps.append(tf.reduce_mean(normal_logprob(x, mean, tf.broadcast_to(s["std"], tf.shape(mean))), -1))
            chain.append(x)
        return tf.stack(chain, 1), tf.stack(logps, 1)

    def sample(self, labels: np.ndarray, noise: np.ndarray) -> dict[str, np.ndarray]:
        """labels (B,), noise (S+1, B, D) standard normal (x_T first) -> chains (B, S+1, D) and the per-step
        log-probabilities (B, S) of the transitions taken."""
        chains, logps = self._sample(tf.constant(labels, tf.int64), constant(noise))
        return {"chains": chains.numpy(), "logprobs": logps.numpy()}

    def transitions(self, net: Module, chains: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Every step of chains (B, S+1, D) for prompts labels (B,) as rows b*S + j: net's mean (B*S, D) of the
        step's Gaussian, the state the chain went to (B*S, D) and the step's std (B*S, 1)."""
        prev, nxt, coefs = chain_transitions(chains, self.steps)
        std, t01 = coefs.pop("std"), coefs.pop("t01")  # (B*S, 1)
        mean = reverse_mean(prev, self._eps(net, prev, tf.repeat(labels, self.num_steps), t01), coefs, True,
                            self.sample_cfg.clip_x0)
        return mean, nxt, std

    def chain_logprobs(self, net: Module, chains: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        """Per-step log-probabilities (B, S) of chains (B, S+1, D) for prompts labels (B,) under net."""
        return step_logprobs(*self.transitions(net, chains, labels), tf.shape(chains)[0])

    def kl_penalty(self, mean: tf.Tensor, std: tf.Tensor, new: tf.Tensor, chains: tf.Tensor, labels: tf.Tensor
                   ) -> tf.Tensor:
        """ISKL's KL term, mean over the B chains of chains (B, S+1, D), from the policy's step means (B*S, D), the
        steps' stds (B*S, 1) and the log-probabilities (B, S); the reference model gets no gradient."""
        assert self.ref is not None
        if self.train_cfg.kl_estimator == "chain":  # (1/2)(sum_t logp_theta - logp_ref)^2
            ref = tf.stop_gradient(self.chain_logprobs(self.ref, chains, labels))
            return 0.5 * tf.reduce_mean(tf.square(tf.reduce_sum(new - ref, 1)))
        # sum_t KL(N(mu_theta, s_t^2) || N(mu_ref, s_t^2)), averaged over the pixels as the log-probabilities are
        ref_mean = tf.stop_gradient(self.transitions(self.ref, chains, labels)[0])
        per_step = tf.reshape(tf.reduce_mean(tf.square(mean - ref_mean) / (2 * tf.square(std)), -1), tf.shape(new))
        return tf.reduce_mean(tf.reduce_sum(per_step, 1))

    def losses(self, b: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """The algorithm's loss on a minibatch. Policy gradients (sf, is, iskl) read chains (B, S+1, D), labels
        (B,), advantages (B,) and (is, iskl) old_logprobs (B, S); RWR reads x0 (B, D), labels, t (B,), noise
        (B, D) and weights (B,)."""
        c, alg = self.train_cfg, self.algorithm
        if alg in ("rwr", "sparse_rwr"):
            t = b["t"]
            x_t = _gather_rows(self.sqrt_ab, t) * b["x0"] + _gather_rows(self.sqrt_1m_ab, t) * b["noise"]
            eps = self._eps(self.model, x_t, b["labels"], _gather_rows(self.time_input, t))
            per = tf.reduce_mean(tf.square(eps - b["noise"]), -1)
            return {"loss": tf.reduce_sum(b["weights"] * per), "denoise_loss": tf.reduce_mean(per)}
        adv = tf.clip_by_value(b["advantages"], -c.adv_clip_max, c.adv_clip_max)[:, None]  # (B, 1)
        mean, nxt, std = self.transitions(self.model, b["chains"], b["labels"])  # (B*S, D), (B*S, D), (B*S, 1)
        new = step_logprobs(mean, nxt, std, tf.shape(adv)[0])  # (B, S)
        if alg == "sf":
            return {"loss": -tf.reduce_mean(adv * new), "logprob": tf.stop_gradient(tf.reduce_mean(new))}
        ratio = tf.exp(new - b["old_logprobs"])
        clipped = tf.clip_by_value(ratio, 1.0 - c.clip_range, 1.0 + c.clip_range)
        pg = tf.reduce_mean(tf.maximum(-adv * ratio, -adv * clipped))
        out = {"loss": pg, "policy_loss": tf.stop_gradient(pg),
               "approx_kl": tf.stop_gradient(tf.reduce_mean(0.5 * tf.square(new - b["old_logprobs"]))),
               "clipfrac": tf.stop_gradient(tf.reduce_mean(tf.cast(tf.abs(ratio - 1.0) > c.clip_range, ratio.dtype)))}
        if alg == "iskl":
            kl = self.kl_penalty(mean, std, new, b["chains"], b["labels"])
            out.update(loss=pg + c.kl_coef * kl, kl=tf.stop_gradient(kl))
        return out

    def _train_step(self, b: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        with tf.GradientTape() as tape:
            out = self.losses(b)
        grads, grad_norm = clip_grad_norm(tape.gradient(out["loss"], self.variables), self.train_cfg.max_grad_norm)
        self.optimizer.apply(grads, self.variables, tf.constant(self.train_cfg.learning_rate, float_dtype()))
        return {**out, "grad_norm": grad_norm}

    def train_step(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One AdamW step (gradient norm clipped); the loss terms before it and the gradient norm."""
        b = {k: tf.constant(v, tf.int64) if v.dtype.kind == "i" else constant(v) for k, v in batch.items()}
        return {k: float(v) for k, v in self._train(b).items()}

    def state_groups(self) -> dict[str, OrderedDict]:
        return {"model": export_state(self.model), "optimizer": self.optimizer.state()}

    def load_groups(self, groups: dict[str, OrderedDict]) -> None:
        load_state(self.model, groups["model"])
        self.optimizer.load_state(groups["optimizer"])
