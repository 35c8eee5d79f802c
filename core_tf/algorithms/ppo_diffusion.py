"""DPPO: a diffusion policy fine-tuned with PPO over the environment x denoising MDP (TF side).

Twin of core_torch/algorithms/ppo_diffusion.py. Shapes: B env samples, K fine-tuned denoising
steps, S all reverse steps, Ta horizon, Da action dim, To history, Do obs dim.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import tensorflow as tf

from core_tf.algorithms.ppo_agent import PPOAgent
from core_tf.algorithms.ppo_loss import (
    LOGPROB_MAX,
    LOGPROB_MIN,
    clip_advantages,
    clipped_policy_loss,
    normal_logprob,
    normalize_advantages,
    value_loss,
)
from core_tf.diffusion.eta import Eta
from core_tf.diffusion.model import chain_transitions, reverse_mean
from core_tf.networks.inputs import Cond, cond_inputs, obs_signature, obs_tensors, repeat_rows, state_input
from core_tf.networks.registry import build_network
from core_tf.runtime.canonical import load_state
from core_tf.runtime.module import Module
from core_tf.runtime.precision import constant, float_dtype
from shared.algorithms.ppo_math import clip_coefficients, denoising_discount
from shared.data import observations as ob
from shared.diffusion.sampling_plan import SamplingPlan, ddim_step_arrays, finetune_tables, sampling_plan
from shared.errors import CheckpointError
from shared.param_spec import CriticObsConfig
from shared.precision import as_compute
from shared.settings import DiffusionConfig, DPPOSettings, PPOSettings

_COEFS = ("recon_x", "recon_eps", "mean_x0", "mean_xt")


def ddim_mean_sigma(x: tf.Tensor, net_out: tf.Tensor, c: dict[str, tf.Tensor | float], eta: tf.Tensor,
                    predict_epsilon: bool, denoised_clip_value: float | None,
                    eps_clip_value: float | None) -> tuple[tf.Tensor, tf.Tensor]:
    """DDIM step with eta a tensor (upstream p_mean_var); twin of core_torch.algorithms.ppo_diffusion.ddim_mean_sigma.
    x (N, Ta, Da), eta (N, 1, E) or 0-d, c scalars or (N, 1, 1) -> (mean (N, Ta, Da), sigma)."""
    x0 = c["recon_x"] * x - c["recon_eps"] * net_out if predict_epsilon else net_out
    if denoised_clip_value is not None:
        x0 = tf.clip_by_value(x0, -denoised_clip_value, denoised_clip_value)
    eps = (x - c["sqrt_a"] * x0) / c["sqrt_1ma"]
    if eps_clip_value is not None:
        eps = tf.clip_by_value(eps, -eps_clip_value, eps_clip_value)
    sigma = tf.maximum(eta * c["sigma_unit"], 1e-10)
    dir_coef = tf.sqrt(tf.maximum(1.0 - c["a_prev"] - tf.square(sigma), 0.0))
    return c["sqrt_a_prev"] * x0 + dir_coef * eps, sigma


class PPODiffusionModel(Module):
    """Frozen base `actor`, fine-tuned copy `actor_ft` (last K steps only), `critic`, and the DDIM `eta`.

    K (`ft_steps`) and the exploration std floor (`min_sampling_std`) can change between iterations
    (`step_schedules`, upstream VPGDiffusion.step); every table sized by K is rebuilt then, and compiled
    callers must retrace (they read these as constants).
    """

    def __init__(self, dc: DiffusionConfig, critic: CriticObsConfig, d: DPPOSettings, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dc, self.d = dc, d
        self.actor = self.add_child("actor", build_network(dc.network))
        self.actor_ft = self.add_child("actor_ft", build_network(dc.network))
        self.critic = self.add_child("critic", build_network(critic))  # CriticObs, or a ViTCritic
        self.eta = self.add_child("eta", Eta(d.eta)) if d.eta is not None else None
        self.num_steps = dc.ddim_steps if dc.use_ddim else dc.denoising_steps
        self.in_graph_eta = dc.use_ddim and (dc.eps_clip_value is not None
                                             or (d.eta is not None and d.eta.kind != "EtaFixed"))
        self.fixed_eta = d.eta.fixed_value() if d.eta is not None and d.eta.kind == "EtaFixed" else 0.0
        self.ft_steps = d.ft_denoising_steps
        self.iterations = 0  # step_schedules calls so far
        self.min_sampling_std = d.min_sampling_std(0)
        self._build_tables()

    def _build_tables(self) -> None:
        dc, d = self.dc, self.d

        def plan(deterministic: bool) -> SamplingPlan:  # std floors are applied per call (the floor can change)
            return sampling_plan(dc.denoising_steps, dc.use_ddim, dc.ddim_steps, self.fixed_eta, deterministic, 0.0)

        self.plans = {det: plan(det) for det in (True, False)}
        self.step_coefs = {det: [dict(step) for step in p.step_scalars] for det, p in self.plans.items()}
        if dc.use_ddim:
            for p, steps in zip(self.plans.values(), self.step_coefs.values()):
                for i, step in enumerate(steps):
                    step.update({k: float(as_compute(v[i])) for k, v in ddim_step_arrays(p).items()})
        ft = finetune_tables(self.plans[False], self.ft_steps, d.min_logprob_denoising_std)
        self.ft_t = tf.constant(ft.timesteps)  # (K,)
        self.ft_coefs = {k: constant(getattr(ft, k)) for k in _COEFS}  # each (K,)
        if dc.use_ddim:
            last = slice(self.num_steps - self.ft_steps, self.num_steps)
            self.ft_coefs.update({k: constant(v) for k, v in ddim_step_arrays(self.plans[False], last).items()})
        self.ft_std = constant(ft.logprob_std)

    # ---------- eta ----------
    def eta_values(self, obs: Cond) -> tf.Tensor:
        """eta per sample (B, E) for stochastic steps; none configured: 0 (B, 1)."""
        state = state_input(obs)
        if self.eta is None:
            return tf.zeros([tf.shape(state)[0], 1], state.dtype)
        return self.eta(state)

    def entropy_eta(self, obs: Cond) -> tf.Tensor:
        """What upstream's loss averages into its entropy term: eta (B, E) for DDIM, ones for DDPM."""
        if not self.dc.use_ddim:
            state = state_input(obs)
            return tf.ones([tf.shape(state)[0], 1], state.dtype)
        return self.eta_values(obs)

    # ---------- schedules (upstream VPGDiffusion.step) ----------
    def step_schedules(self) -> bool:
        """Once per iteration: advance the std floor; every ft_denoising_steps_t-th call, K -= ft_denoising_steps_d
        and the base actor becomes the current actor_ft. Returns whether K or the floor changed."""
        d = self.d
        self.iterations += 1
        old = (self.ft_steps, self.min_sampling_std)
        self.min_sampling_std = d.min_sampling_std(self.iterations)
        if d.ft_denoising_steps_d > 0 and d.ft_denoising_steps_t > 0 and self.iterations % d.ft_denoising_steps_t == 0:
            # floor 1: at K = 0 no transition is left to score (upstream's loss would average nothing)
            new_k = max(1, self.ft_steps - d.ft_denoising_steps_d)
            for (_, base), (_, ft) in zip(self.actor.named_parameters(), self.actor_ft.named_parameters()):
                base.assign(ft)
            if new_k != self.ft_steps:
                self.ft_steps = new_k
                self._build_tables()
        return (self.ft_steps, self.min_sampling_std) != old

    def schedule_state(self) -> OrderedDict:
        return OrderedDict(ft_denoising_steps=np.array(self.ft_steps, np.int64),
                           iterations=np.array(self.iterations, np.int64))

    def load_schedule_state(self, state: dict) -> None:
        self.iterations = int(state["iterations"])
        self.min_sampling_std = self.d.min_sampling_std(self.iterations)
        self.ft_steps = int(state["ft_denoising_steps"])
        self._build_tables()

    def check_fixed_eta(self) -> None:
        """The precomputed tables assume EtaFixed's configured value: a loaded logit must give it."""
        if self.eta is not None and self.d.eta.kind == "EtaFixed":
            got = float(self.eta(tf.zeros([1, 1], float_dtype()))[0, 0])
            if abs(got - self.fixed_eta) > 1e-6:
                raise CheckpointError(f"eta.eta_logit gives eta={got}, but model.eta configures {self.fixed_eta}")

    # ---------- sampling and log-probabilities ----------
    def sample(self, state: Cond, noise: tf.Tensor, deterministic: bool,
               use_base_policy: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
        """state (B, To, Do) (or an image network's (state, rgb)), noise (S+1, B, Ta, Da) -> actions (B, Ta, Da),
        chain (B, K+1, Ta, Da).

        Steps before the last K run the base actor only; the last K run actor_ft (or the base
        actor when use_base_policy), so no network output is computed and thrown away.
        Deterministic sampling is upstream's: DDIM with eta = 0 and no noise, DDPM floored at 1e-3.
        """
        plan, K, S, dc = self.plans[deterministic], self.ft_steps, self.num_steps, self.dc
        ft_net = self.actor if use_base_policy else self.actor_ft
        steps = tf.constant(plan.timesteps)  # (S,)
        base_in = (self.actor.time_embedding(steps), self.actor.condition(*cond_inputs(state)))  # once per chain
        ft_in = (ft_net.time_embedding(steps), ft_net.condition(*cond_inputs(state)))
        z = tf.clip_by_value(noise[1:], -dc.randn_clip_value, dc.randn_clip_value)  # (S, B, Ta, Da)
        eta = None
        if self.in_graph_eta:
            eta = (tf.zeros((), state_input(state).dtype) if deterministic
                   else self.eta_values(state)[:, None, :])  # (B, 1, E)
        x = noise[0]
        chain = [x] if K == S else []
        for i, coefs in enumerate(self.step_coefs[deterministic]):
            net, (t_embs, cond) = (self.actor, base_in) if i < S - K else (ft_net, ft_in)
            net_out = net.denoise(x, t_embs[i : i + 1], cond)
            if eta is not None:
                mean, sigma = ddim_mean_sigma(x, net_out, coefs, eta, dc.predict_epsilon, dc.denoised_clip_value,
                                              dc.eps_clip_value)
                std = 0.0 if deterministic else tf.maximum(sigma, self.min_sampling_std)
            else:
                mean = reverse_mean(x, net_out, coefs, dc.predict_epsilon, dc.denoised_clip_value)
                std = coefs["std"] if deterministic else max(coefs["std"], self.min_sampling_std)
            x = mean + std * z[i]
            if i == S - 1 and dc.final_action_clip_value is not None:
                x = tf.clip_by_value(x, -dc.final_action_clip_value, dc.final_action_clip_value)
            if i >= S - K - 1:
                chain.append(x)
        return tf.stop_gradient(x), tf.stop_gradient(tf.stack(chain, axis=1))

    def logprobs(self, state: Cond, chains: tf.Tensor) -> tf.Tensor:
        """Log-density of every fine-tuned transition chain[j] -> chain[j+1] under actor_ft.  (B, K, Ta, Da)"""
        K, Ta, Da = self.ft_steps, self.dc.horizon_steps, self.dc.action_dim
        if chains.shape[1] is not None and chains.shape[1] != K + 1:
            raise ValueError(f"chains hold {chains.shape[1] - 1} fine-tuned transitions, the model fine-tunes {K}")
        B = tf.shape(chains)[0]
        prev, nxt, coefs = chain_transitions(chains, {**self.ft_coefs, "logprob_std": self.ft_std})
        std_table = coefs.pop("logprob_std")  # (B*K, 1, 1)
        t = tf.tile(self.ft_t, [B])
        net = self.actor_ft
        if self.dc.condition_once_per_row:  # row b's features, encoded once, at rows b*K .. b*K + K - 1
            net_out = net.denoise(prev, net.time_embedding(t), repeat_rows(net.condition(*cond_inputs(state)), K))
        else:  # (B*K, To, Do) (and frames), row b*K + j: each step encodes (and draws dropout) anew
            net_out = net(prev, t, *cond_inputs(repeat_rows(state, K)))
        dc = self.dc
        if self.in_graph_eta:
            eta = tf.repeat(self.eta_values(state), K, axis=0)[:, None, :]  # (B*K, 1, E)
            mean, sigma = ddim_mean_sigma(prev, net_out, coefs, eta, dc.predict_epsilon, dc.denoised_clip_value,
                                          dc.eps_clip_value)
            std = tf.maximum(sigma, self.d.min_logprob_denoising_std)
        else:
            mean = reverse_mean(prev, net_out, coefs, dc.predict_epsilon, dc.denoised_clip_value)
            std = std_table
        return tf.reshape(normal_logprob(nxt, mean, tf.broadcast_to(std, tf.shape(mean))), [B, K, Ta, Da])


class PPODiffusionAgent(PPOAgent):
    """act / evaluate / update on numpy arrays for DPPO."""

    def __init__(self, dc: DiffusionConfig, critic: CriticObsConfig, settings: PPOSettings, d: DPPOSettings,
                 init_params: OrderedDict) -> None:
        model = PPODiffusionModel(dc, critic, d)
        load_state(model, init_params)
        model.check_fixed_eta()
        trainable = {n for n, _ in model.named_parameters()
                     if not n.startswith("actor.") and (d.learn_eta or not n.startswith("eta."))}
        super().__init__(model, "actor_ft.", settings, trainable)
        self._k_tables()

    def _k_tables(self) -> None:
        """Everything sized by K or read as a constant by the compiled functions: discount and clip
        coefficients (K,), and the compiled sampler and update (retraced on first use)."""
        d, K, c = self.model.d, self.model.ft_steps, self.model.dc
        self.discount = constant(denoising_discount(K, d.gamma_denoising))
        self.clip_coefs = constant(clip_coefficients(K, self.settings.clip_ploss_coef, d.clip_ploss_coef_base,
                                                 d.clip_ploss_coef_rate))
        obs_spec = obs_signature(c.network, c.cond_steps, c.obs_dim)  # (state, rgb) for an image network
        noise_spec = tf.TensorSpec([self.model.num_steps + 1, None, c.horizon_steps, c.action_dim], float_dtype())
        self._act = {det: tf.function(lambda o, n, det=det: self.model.sample(o, n, det), jit_compile=True,
                                      input_signature=[obs_spec, noise_spec]) for det in (True, False)}
        self._compiled = {}

    @property
    def ft_denoising_steps(self) -> int:
        """Current K: chains are (N, K+1, Ta, Da), log-probs (N, K, Ta, Da); it shrinks when annealed."""
        return self.model.ft_steps

    @property
    def min_sampling_std(self) -> float:
        return self.model.min_sampling_std

    def end_iteration(self, update_actor: bool) -> None:
        """Learning-rate schedules, then upstream's model.step(): the std-floor schedule and K's annealing."""
        super().end_iteration(update_actor)
        if self.model.step_schedules():
            self._k_tables()

    def state_groups(self) -> dict[str, OrderedDict]:
        return {**super().state_groups(), "dppo_schedule": self.model.schedule_state()}

    def load_groups(self, groups: dict[str, OrderedDict], actor_steps: int, critic_steps: int) -> None:
        super().load_groups(groups, actor_steps, critic_steps)
        self.model.check_fixed_eta()
        if "dppo_schedule" in groups:  # K and the std floor are constants of the compiled functions
            before = (self.model.ft_steps, self.model.min_sampling_std)
            self.model.load_schedule_state(groups["dppo_schedule"])
            if (self.model.ft_steps, self.model.min_sampling_std) != before:
                self._k_tables()

    def act(self, obs: ob.Obs, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        actions, chains = self._act[deterministic](obs_tensors(obs), tf.constant(noise))
        return {"actions": actions.numpy(), "chains": chains.numpy()}

    def evaluate(self, obs: ob.Obs, sample: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(values (N,), log-probs (N, K, Ta, Da)) of the rollout's chains under the current actor_ft.
        The driver calls it in chunks of train.logprob_batch_size rows (dppo.algorithms.ppo.evaluate_in_chunks)."""
        o = obs_tensors(obs)
        return (tf.reshape(self.model.critic(*cond_inputs(o)), [-1]).numpy(),
                self.model.logprobs(o, tf.constant(sample["chains"])).numpy())

    def value(self, obs: ob.Obs) -> np.ndarray:
        return tf.reshape(self.model.critic(*cond_inputs(obs_tensors(obs))), [-1]).numpy()

    def _mean_logprob(self, logprobs: tf.Tensor) -> tf.Tensor:
        """Clamp element-wise, keep the executed actions (reward_horizon), average: (B, K, Ta, Da) -> (B*K,)."""
        h = self.model.d.reward_horizon
        clamped = tf.clip_by_value(logprobs, LOGPROB_MIN, LOGPROB_MAX)[:, :, :h]
        return tf.reshape(tf.reduce_mean(clamped, axis=[-1, -2]), [-1])

    def loss_terms(self, b: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        s, K = self.settings, self.model.ft_steps
        B = tf.shape(state_input(b["obs"]))[0]
        newlogprobs = self._mean_logprob(self.model.logprobs(b["obs"], b["chains"]))
        oldlogprobs = self._mean_logprob(b["logprobs"])
        adv = b["advantages"]
        if s.norm_adv:
            adv = normalize_advantages(adv)
        adv = clip_advantages(adv, s.clip_advantage_lower_quantile, s.clip_advantage_upper_quantile)
        adv = tf.repeat(adv, K) * tf.tile(self.discount, [B])  # (B*K,), row b*K + j
        pg_loss, approx_kl, clipfrac = clipped_policy_loss(newlogprobs, oldlogprobs, adv,
                                                           tf.tile(self.clip_coefs, [B]))
        v_loss = value_loss(tf.reshape(self.model.critic(*cond_inputs(b["obs"])), [-1]), b["returns"], b["values"],
                            s.clip_vloss_coef)
        # upstream's entropy term: -mean eta over the scored rows (ones for DDPM); ent_coef weights it
        terms = {"pg_loss": pg_loss, "entropy_loss": -tf.reduce_mean(self.model.entropy_eta(b["obs"])),
                 "v_loss": v_loss, "approx_kl": approx_kl, "clipfrac": clipfrac}
        if self.model.d.use_bc_loss:
            _, base_chains = self.model.sample(b["obs"], tf.transpose(b["bc_noise"], [1, 0, 2, 3]), False,
                                               use_base_policy=True)
            bc = tf.reduce_mean(tf.clip_by_value(self.model.logprobs(b["obs"], base_chains), LOGPROB_MIN,
                                                 LOGPROB_MAX), axis=[-1, -2])
            terms.update(bc_loss=-tf.reduce_mean(bc), bc_coef=tf.constant(self.model.d.bc_loss_coeff, float_dtype()))
        return terms
