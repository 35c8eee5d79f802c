"""`dppo bench --upstream PATH`: upstream irom-lab/dppo's own classes timed beside both twins in one run, on the
same inputs and the same canonical weights (hopper configs), with the ratios upstream time / ours and the
targets of issue 25: every op at least TARGET_X faster than upstream in both frameworks, sampling at batch 1
at least TARGET_B1 faster, and torch at most TORCH_OVER_TF slower than tf.

Rows: the pre-training step (DiffusionModel.loss + AdamW), sampling at batch 1 and 40 (PPODiffusion forward),
one PPO minibatch (PPODiffusion.loss + backward + clipping + AdamW steps), one DQL minibatch (DQLDiffusion's
critic and actor losses, steps, target update) and one DIPO critic update (DIPODiffusion.loss_critic, step,
Polyak updates). DIPO's actor update and the other off-policy algorithms are not timed here (see the docs).

Before timing, each row runs upstream and both twins once on the same inputs and noise (upstream's draws
injected) and records how far their outputs are apart: the sampled chunk, the losses. That is what makes the
timings a comparison of the same work. Timed calls after that draw their own noise, as upstream does.
"""

from __future__ import annotations

import os
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dppo.bench.kernels import HOPPER_FT, HOPPER_PRE, time_interleaved
from dppo.interop import upstream_code
from dppo.runs.paths import write_json

TARGET_X = 2.0  # every op, both frameworks
TARGET_B1 = 8.0  # sampling at batch 1
TORCH_OVER_TF = 1.5  # torch time / tf time, at most
HOPPER_DQL = "configs/hopper/ft_dql_diffusion_mlp.yaml"
HOPPER_DIPO = "configs/hopper/ft_dipo_diffusion_mlp.yaml"
PPO_ROWS = 500  # env steps in the timed PPO minibatch (x K denoising steps each)
PRE_BATCH = 128


def _max_diff(a: Any, b: Any) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def run_upstream_bench(upstream: Path, allow_other_commit: bool, repeats: int = 20) -> dict[str, Any]:
    """Time upstream's classes and the twins on the hopper configs; rows with times, ratios and agreement."""
    commit, warning = upstream_code.check_checkout(upstream, allow_other_commit)
    import torch

    from dppo.algorithms.agents import initial_params, make_agent
    from dppo.bench.roofline import chained_matmul_gflops, forward_flops
    from shared.settings import load_settings

    upstream_code.activate_upstream(upstream)
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    rounds, trials = min(3, repeats), max(2, min(5, repeats))
    cfg = load_settings(HOPPER_FT, ["base_policy_path=null"], ("finetune",))
    init = initial_params(cfg)
    agents = {b: make_agent(cfg, b, init) for b in ("torch", "tf")}
    compiled = os.environ.get("DPPO_TORCH_COMPILE", "1") == "1"
    agents["torch"].compile_small_batches = compiled  # the bench's default: torch.compile below 8 rows
    dc, net = cfg.diffusion, cfg.diffusion.network
    S, K, Ta, Da = dc.denoising_steps, cfg.dppo.ft_denoising_steps, dc.horizon_steps, dc.action_dim
    ppo, d = cfg.ppo, cfg.dppo
    params = {k: np.asarray(v) for k, v in init.items()}
    up = upstream_code.ppo_diffusion(
        dc, cfg.critic, dict(ft_denoising_steps=K, min_sampling_denoising_std=d.min_sampling_denoising_std,
                             min_logprob_denoising_std=d.min_logprob_denoising_std),
        params, gamma_denoising=d.gamma_denoising, clip_ploss_coef=ppo.clip_ploss_coef,
        clip_ploss_coef_base=d.clip_ploss_coef_base, clip_ploss_coef_rate=d.clip_ploss_coef_rate,
        clip_vloss_coef=ppo.clip_vloss_coef, clip_advantage_lower_quantile=ppo.clip_advantage_lower_quantile,
        clip_advantage_upper_quantile=ppo.clip_advantage_upper_quantile, norm_adv=ppo.norm_adv)
    sampler_modules = ("model.diffusion.diffusion", "model.diffusion.diffusion_vpg")
    rows: list[dict[str, Any]] = []

    def row(work: str, op: str, flops: float, gemm_rows: int, fns: dict[str, Callable[[], Any]], n: int,
            agreement: dict[str, float]) -> None:
        times = time_interleaved(fns, n, rounds, min(2, repeats))
        shape = chained_matmul_gflops(gemm_rows, net.mlp_dims[0], 40 if gemm_rows < 1000 else 4, trials)
        rows.append({"work": work, "op": op, "target": TARGET_B1 if op == "sample_b1" else TARGET_X,
                     "flops": flops, "shape_roofline_s": flops / (max(shape.values()) * 1e9),
                     "agreement": agreement, **{f"{k}_s": v for k, v in times.items()}})

    rng = np.random.default_rng(0)
    # ---- pre-training step: upstream DiffusionModel.loss + AdamW step vs the twins' train_step
    pc = load_settings(HOPPER_PRE, (), ("pretrain",))
    from shared.param_spec import torch_default_init
    from shared.param_spec.families import network_spec

    pre_init = torch_default_init(network_spec(pc.model.network, "network."), 0)
    pre = _pretrain_backends(pc, pre_init)
    up_pre = upstream_code.diffusion_model(pc.model, {k[len("network."):]: np.asarray(v) for k, v in pre_init.items()})
    up_pre_opt = torch.optim.AdamW(up_pre.parameters(), lr=pc.train.learning_rate, weight_decay=pc.train.weight_decay)
    x0 = rng.uniform(-1, 1, (PRE_BATCH, Ta, Da)).astype(np.float32)
    st = rng.uniform(-1, 1, (PRE_BATCH, dc.cond_steps, dc.obs_dim)).astype(np.float32)
    tt = rng.integers(0, pc.model.denoising_steps, PRE_BATCH).astype(np.int64)
    nz = rng.standard_normal((PRE_BATCH, Ta, Da)).astype(np.float32)
    x0_t, st_t = torch.from_numpy(x0), {"state": torch.from_numpy(st)}

    def up_pre_step() -> float:
        loss = up_pre.loss(x0_t, st_t)
        up_pre_opt.zero_grad()
        loss.backward()
        up_pre_opt.step()
        return float(loss.detach())

    with upstream_code.injected_noise(["model.diffusion.diffusion"], [tt, nz]):
        up_loss = up_pre_step()
    agreement = {f"loss_{b}": abs(pre[b].train_step(x0, st, tt, nz) - up_loss) / abs(up_loss) for b in pre}
    row(f"pre-training step (batch {PRE_BATCH}, AdamW)", "pretrain_b128", PRE_BATCH * forward_flops(net, True) * 3,
        PRE_BATCH, {"upstream": up_pre_step, "torch": lambda: pre["torch"].train_step(x0, st, tt, nz),
                    "tf": lambda: pre["tf"].train_step(x0, st, tt, nz)}, repeats, agreement)

    # ---- sampling: upstream PPODiffusion forward vs the twins' act
    for batch in (1, 40):
        obs = rng.uniform(-1, 1, (batch, dc.cond_steps, dc.obs_dim)).astype(np.float32)
        noise = rng.standard_normal((S + 1, batch, Ta, Da)).astype(np.float32)
        cond = {"state": torch.from_numpy(obs)}

        def up_sample(cond: dict = cond) -> Any:
            with torch.no_grad():
                return up(cond, deterministic=False, return_chain=True)

        with upstream_code.injected_noise(sampler_modules, list(noise)):
            ref = up_sample()
        agreement = {}
        for b, agent in agents.items():
            ours = agent.act(obs, noise, False)
            agreement[f"actions_{b}"] = _max_diff(ours["actions"], ref.trajectories)
            agreement[f"chains_{b}"] = _max_diff(ours["chains"], ref.chains)
        row(f"sampling, batch {batch} ({S} steps, {K} fine-tuned)", f"sample_b{batch}", batch * S * forward_flops(net),
            batch, {"upstream": up_sample, "torch": lambda o=obs, n=noise: agents["torch"].act(o, n, False),
                    "tf": lambda o=obs, n=noise: agents["tf"].act(o, n, False)}, repeats, agreement)

    # ---- PPO update of one minibatch: upstream PPODiffusion.loss + backward + clip + AdamW steps vs update()
    obs = rng.uniform(-1, 1, (PPO_ROWS, dc.cond_steps, dc.obs_dim)).astype(np.float32)
    noise = rng.standard_normal((S + 1, PPO_ROWS, Ta, Da)).astype(np.float32)
    sample = agents["torch"].act(obs, noise, False)
    values, logprobs = agents["torch"].evaluate(obs, sample)
    mb = {"obs": obs, "chains": sample["chains"], "logprobs": logprobs, "values": values,
          "advantages": rng.standard_normal(PPO_ROWS).astype(np.float32),
          "returns": (values + rng.standard_normal(PPO_ROWS)).astype(np.float32)}
    mb_t = {k: torch.from_numpy(v) for k, v in mb.items()}
    actor_opt = torch.optim.AdamW(up.actor_ft.parameters(), lr=ppo.actor_lr, weight_decay=ppo.actor_weight_decay)
    critic_opt = torch.optim.AdamW(up.critic.parameters(), lr=ppo.critic_lr, weight_decay=ppo.critic_weight_decay)

    def up_update() -> tuple[float, float]:
        pg, ent, v, *_ = up.loss({"state": mb_t["obs"]}, mb_t["chains"], mb_t["returns"], mb_t["values"],
                                 mb_t["advantages"], mb_t["logprobs"], use_bc_loss=False,
                                 reward_horizon=d.reward_horizon)
        loss = pg + ent * ppo.ent_coef + v * ppo.vf_coef
        actor_opt.zero_grad()
        critic_opt.zero_grad()
        loss.backward()
        if ppo.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(up.actor_ft.parameters(), ppo.max_grad_norm)
        actor_opt.step()
        critic_opt.step()
        return float(pg.detach()), float(v.detach())

    pg, v = up_update()
    agreement = {}
    for b, agent in agents.items():
        terms = agent.update(mb, True)
        agreement[f"pg_loss_{b}"] = abs(terms["pg_loss"] - pg)
        agreement[f"v_loss_{b}"] = abs(terms["v_loss"] - v) / abs(v)
    row(f"PPO update, one minibatch ({PPO_ROWS} env steps x {K} denoising steps)", "ppo_update",
        PPO_ROWS * K * forward_flops(net) * 3, PPO_ROWS * K,
        {"upstream": up_update, "torch": lambda: agents["torch"].update(mb, True),
         "tf": lambda: agents["tf"].update(mb, True)}, max(1, repeats // 3), agreement)
    rows.append(_dql_row(rng, repeats, rounds, trials))
    rows.append(_dipo_critic_row(rng, repeats, rounds, trials))
    for r in rows:
        r["torch_x"], r["tf_x"] = r["upstream_s"] / r["torch_s"], r["upstream_s"] / r["tf_s"]
        r["torch_over_tf"] = r["torch_s"] / r["tf_s"]
    return {"upstream": str(upstream), "upstream_commit": commit, "warning": warning, "threads": threads,
            "torch_compile_small_batches": compiled, "load_average": list(os.getloadavg()), "rows": rows,
            "targets": {"every_op_x": TARGET_X, "sample_b1_x": TARGET_B1, "torch_over_tf_at_most": TORCH_OVER_TF}}


def _dql_row(rng: np.random.Generator, repeats: int, rounds: int, trials: int) -> dict[str, Any]:
    """One DQL minibatch on the hopper DQL config: upstream's critic step (TD targets from next chunks its policy
    samples) then actor step (denoising loss + eta * Q loss through the sampled chain, clipped) and target update,
    as upstream's agent runs them, against the twins' update() doing the same."""
    import model.diffusion.diffusion_dql as dql_mod
    import torch

    from dppo.algorithms.agents import initial_params, make_agent
    from dppo.bench.roofline import chained_matmul_gflops, forward_flops
    from shared.settings import load_settings

    cfg = load_settings(HOPPER_DQL, ["base_policy_path=null"], ("finetune",))
    s, dc = cfg.dql, cfg.diffusion
    init = initial_params(cfg)
    agents = {b: make_agent(cfg, b, init) for b in ("torch", "tf")}
    up = dql_mod.DQLDiffusion(
        actor=upstream_code.diffusion_mlp(dc.network), min_sampling_denoising_std=s.min_sampling_denoising_std,
        critic=upstream_code.critic_obs_act(cfg.critic), **upstream_code.model_kwargs(dc))
    upstream_code.load_weights(up, {k: np.asarray(v) for k, v in init.items()}, {"actor.": "network."})
    actor_opt = torch.optim.AdamW(up.network.parameters(), lr=s.actor_lr, weight_decay=s.actor_weight_decay)
    critic_opt = torch.optim.AdamW(up.critic.parameters(), lr=s.critic_lr, weight_decay=s.critic_weight_decay)
    B, S = s.batch_size, dc.denoising_steps
    batch = _transitions(rng, dc, B)
    batch.update(chain_noise=rng.standard_normal(batch["next_noise"].shape).astype(np.float32),
                 noise=rng.standard_normal(batch["actions"].shape).astype(np.float32),
                 t=rng.integers(0, S, B).astype(np.int64), q1_head=np.float32(1.0))
    bt = {k: torch.from_numpy(batch[k]) for k in ("obs", "next_obs", "actions", "rewards", "terminated")}

    def up_update() -> tuple[float, float]:
        loss_c = up.loss_critic({"state": bt["obs"]}, {"state": bt["next_obs"]}, bt["actions"], bt["rewards"],
                                bt["terminated"], s.gamma)
        critic_opt.zero_grad()
        loss_c.backward()
        critic_opt.step()
        actor_opt.zero_grad()
        loss_a = up.loss_actor({"state": bt["obs"]}, s.eta, s.act_steps)
        loss_a.backward()
        if s.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(up.network.parameters(), s.max_grad_norm)
        actor_opt.step()
        up.update_target_critic(s.target_ema_rate)
        return float(loss_c.detach()), float(loss_a.detach())

    coin = types.SimpleNamespace(random=types.SimpleNamespace(uniform=lambda: 0.7))  # upstream's Q-head coin: Q1
    dql_mod.np = coin
    try:
        with upstream_code.injected_noise(["model.diffusion.diffusion", "model.diffusion.diffusion_dql"],
                                          [*batch["next_noise"], *batch["chain_noise"], batch["t"], batch["noise"]]):
            loss_c, loss_a = up_update()
    finally:
        dql_mod.np = np
    agreement = {}
    for b, agent in agents.items():
        terms = agent.update(batch, True)
        agreement[f"critic_loss_{b}"] = abs(terms["critic_loss"] - loss_c) / abs(loss_c)
        agreement[f"actor_loss_{b}"] = abs(terms["actor_loss"] - loss_a) / abs(loss_a)
    times = time_interleaved({"upstream": up_update, "torch": lambda: agents["torch"].update(batch, True),
                              "tf": lambda: agents["tf"].update(batch, True)},
                             max(1, repeats // 3), rounds, min(2, repeats))
    # next chunks (S forwards), the actor's chain with gradients (S forwards x 3), critic terms left out
    flops = B * S * forward_flops(dc.network) * 4
    shape = chained_matmul_gflops(B, dc.network.mlp_dims[0], 4, trials)
    return {"work": f"DQL minibatch: critic + actor + target (batch {B}, {S} steps)", "op": "dql_update",
            "target": TARGET_X, "flops": flops, "shape_roofline_s": flops / (max(shape.values()) * 1e9),
            "agreement": agreement, **{f"{k}_s": v for k, v in times.items()}}


def _transitions(rng: np.random.Generator, dc: Any, B: int) -> dict[str, np.ndarray]:
    """A replay minibatch of B transitions and the chain noise of its next actions, float32."""
    obs_shape, chain = (B, dc.cond_steps, dc.obs_dim), (dc.denoising_steps + 1, B, dc.horizon_steps, dc.action_dim)
    batch = {"obs": rng.uniform(-1, 1, obs_shape), "next_obs": rng.uniform(-1, 1, obs_shape),
             "actions": rng.uniform(-1, 1, chain[1:]), "rewards": rng.normal(0, 1, B),
             "terminated": rng.random(B) < 0.05, "next_noise": rng.standard_normal(chain)}
    return {k: np.asarray(v, np.float32) for k, v in batch.items()}


def _dipo_critic_row(rng: np.random.Generator, repeats: int, rounds: int, trials: int) -> dict[str, Any]:
    """One DIPO critic update on the hopper DIPO config: upstream DIPODiffusion.loss_critic (next chunks from its
    target actor) + AdamW step + both targets' Polyak updates, against the twins' update() without an actor batch
    (the same). DIPO's actor update (the action-gradient loop) lives in upstream's agent script, not in a class,
    so it is not timed against upstream."""
    import model.diffusion.diffusion_dipo as dipo_mod
    import torch

    from dppo.algorithms.agents import initial_params, make_agent
    from dppo.bench.roofline import chained_matmul_gflops, forward_flops
    from shared.settings import load_settings

    cfg = load_settings(HOPPER_DIPO, ["base_policy_path=null"], ("finetune",))
    s, dc = cfg.dipo, cfg.diffusion
    init = initial_params(cfg)
    agents = {b: make_agent(cfg, b, init) for b in ("torch", "tf")}
    up = dipo_mod.DIPODiffusion(
        actor=upstream_code.diffusion_mlp(dc.network), min_sampling_denoising_std=s.min_sampling_denoising_std,
        critic=upstream_code.critic_obs_act(cfg.critic), **upstream_code.model_kwargs(dc))
    upstream_code.load_weights(up, {k: np.asarray(v) for k, v in init.items()}, {"actor.": "network."})
    critic_opt = torch.optim.AdamW(up.critic.parameters(), lr=s.critic_lr, weight_decay=s.critic_weight_decay)
    B, S = s.batch_size, dc.denoising_steps
    batch = _transitions(rng, dc, B)
    bt = {k: torch.from_numpy(batch[k]) for k in ("obs", "next_obs", "actions", "rewards", "terminated")}

    def up_update() -> float:
        loss = up.loss_critic({"state": bt["obs"]}, {"state": bt["next_obs"]}, bt["actions"], bt["rewards"],
                              bt["terminated"], s.gamma)
        critic_opt.zero_grad()
        loss.backward()
        critic_opt.step()
        up.update_target_critic(s.target_ema_rate)
        up.update_target_actor(s.target_ema_rate)
        return float(loss.detach())

    with upstream_code.injected_noise(["model.diffusion.diffusion", "model.diffusion.diffusion_dipo"],
                                      list(batch["next_noise"])):
        loss = up_update()
    agreement = {f"critic_loss_{b}": abs(a.update(batch, None)[0]["critic_loss"] - loss) / abs(loss)
                 for b, a in agents.items()}
    times = time_interleaved({"upstream": up_update, "torch": lambda: agents["torch"].update(batch, None),
                              "tf": lambda: agents["tf"].update(batch, None)},
                             max(1, repeats // 3), rounds, min(2, repeats))
    flops = B * S * forward_flops(dc.network)  # the target actor's next chunks; critic terms left out
    shape = chained_matmul_gflops(B, dc.network.mlp_dims[0], 4, trials)
    return {"work": f"DIPO critic update (batch {B}, next chunks: {S} steps)", "op": "dipo_critic",
            "target": TARGET_X, "flops": flops, "shape_roofline_s": flops / (max(shape.values()) * 1e9),
            "agreement": agreement, **{f"{k}_s": v for k, v in times.items()}}


def _pretrain_backends(pc: Any, init: Any) -> dict[str, Any]:
    from core_tf.algorithms.pretrain import PretrainBackend as TFPre
    from core_torch.algorithms.pretrain import PretrainBackend as TorchPre
    from shared.lr_schedule import CosineWarmupRestarts

    lr = pc.train.learning_rate
    kw = dict(config=pc.model, init_params=init, learning_rate=lr, weight_decay=pc.train.weight_decay,
              schedule=CosineWarmupRestarts(100, lr, lr, 0), steps_per_epoch=10)
    return {"torch": TorchPre(**kw), "tf": TFPre(**kw)}


def _verdict(ratio: float, target: float) -> str:
    return "met" if ratio >= target else f"missed by {target / ratio:.1f}x"


def format_upstream_table(result: dict[str, Any]) -> str:
    t = result["targets"]
    la = ", ".join(f"{x:.2f}" for x in result["load_average"])
    lines = [f"upstream {result['upstream']} at {result['upstream_commit'][:7]}; threads {result['threads']}; "
             f"load average {la}; torch samples below 8 rows through torch.compile: "
             f"{'yes' if result['torch_compile_small_batches'] else 'no (DPPO_TORCH_COMPILE=0)'}",
             f"ratio = upstream time / ours; targets: >= {t['every_op_x']:g}x every op, >= {t['sample_b1_x']:g}x "
             f"sampling at batch 1, torch/tf <= {t['torch_over_tf_at_most']:g}",
             f"{'work':<62} {'upstream':>10} {'torch':>10} {'tf':>10} {'torch x':>8} {'tf x':>7} {'target':>7} "
             f"{'torch':>16} {'tf':>16} {'torch/tf':>14} {'roof':>9} {'roof x':>7}"]
    if result["warning"]:
        lines.insert(0, f"WARNING: {result['warning']}")
    for r in result["rows"]:
        ms = {k: r[f"{k}_s"] * 1e3 for k in ("upstream", "torch", "tf")}
        ot = r["torch_over_tf"]
        over = "met" if ot <= t["torch_over_tf_at_most"] else f"missed {ot / t['torch_over_tf_at_most']:.1f}x"
        lines.append(
            f"{r['work']:<62} {ms['upstream']:>8.2f}ms {ms['torch']:>8.2f}ms {ms['tf']:>8.2f}ms {r['torch_x']:>7.2f}x "
            f"{r['tf_x']:>6.2f}x {r['target']:>6g}x {_verdict(r['torch_x'], r['target']):>16} "
            f"{_verdict(r['tf_x'], r['target']):>16} {ot:>5.2f} {over:>8} {r['shape_roofline_s'] * 1e3:>7.2f}ms "
            f"{r['upstream_s'] / r['shape_roofline_s']:>6.1f}x")
    lines.append("agreement on the same inputs and noise (before timing): "
                 + "; ".join(f"{r['op']}: " + ", ".join(f"{k} {v:.1e}" for k, v in r["agreement"].items())
                             for r in result["rows"]))
    lines.append("roof: the row's FLOPs at the best library's rate on its own hidden-layer product shape "
                 "(dppo/bench/roofline.py); roof x: upstream / roof, the largest ratio an implementation running at "
                 "that roofline would reach here (a target above it is out of this machine's reach in fp32)")
    return "\n".join(lines)


def main_upstream_bench(upstream: Path, allow_other_commit: bool, json_path: str | None,
                        repeats: int) -> dict[str, Any]:
    result = run_upstream_bench(upstream, allow_other_commit, repeats)
    print(format_upstream_table(result))
    if json_path:
        write_json(json_path, result)
    return result
