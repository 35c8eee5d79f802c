"""`dppo bench`: the hot paths on the hopper configuration, for both frameworks, beside the
upstream-style eager reference and a matmul roofline. Prints a table; writes JSON on request."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from dppo.runs.paths import write_json

HOPPER_FT = "configs/hopper/finetune_ppo_diffusion_mlp.yaml"
HOPPER_PRE = "configs/hopper/pretrain_diffusion_mlp.yaml"


def time_interleaved(fns: dict[str, Callable[[], Any]], repeats: int, rounds: int = 3,
                     warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each fn over `repeats` timed calls, taken in `rounds` alternating
    blocks. The machine's speed drifts by up to 2x over seconds; alternating makes a slow spell hit
    every contender alike. Each block starts with `warmup` untimed calls, because the previous
    framework's idle worker threads keep spinning for a moment and slow the first calls down."""
    block = max(1, -(-repeats // rounds))
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range(warmup):
                fn()
            for _ in range(block):
                tic = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - tic)
    return {name: statistics.median(t) for name, t in times.items()}


def run_bench(repeats: int = 20) -> dict[str, Any]:
    import tensorflow as tf
    import torch

    from dppo.algorithms.agents import make_agent
    from dppo.bench.eager_reference import UpstreamStyleDPPO, upstream_pretrain_loss, with_plain_linears
    from dppo.bench.roofline import chained_matmul_gflops, forward_flops, matmul_gflops
    from shared.config.loading import load_config
    from shared.settings import load_settings

    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    cfg = load_settings(HOPPER_FT, ["base_policy_path=null"], ("finetune",))
    agents = {b: make_agent(cfg, b) for b in ("torch", "tf")}
    agents["torch"].compile_small_batches = True  # as DPPO_TORCH_COMPILE=1: torch.compile below 8 rows
    th_model = agents["torch"].model
    K, S = cfg.model.ft_denoising_steps, cfg.model.denoising_steps
    ref = UpstreamStyleDPPO(th_model.actor, th_model.actor_ft, S, K, randn_clip=3.0)
    ref_critic = with_plain_linears(th_model.critic)
    opt_ref = torch.optim.AdamW(list(th_model.actor_ft.parameters()) + list(th_model.critic.parameters()), lr=1e-4)
    net = th_model.actor.config
    matmul = matmul_gflops()
    gflops = max(matmul.values())
    rows: list[dict[str, Any]] = []

    def row(work: str, flops: float, times: dict[str, float], gemm_rows: int) -> None:
        """gemm_rows: rows of the work's hidden-layer products, for the roofline at its own shape."""
        at_shape = chained_matmul_gflops(gemm_rows, net.mlp_dims[0], 40 if gemm_rows < 1000 else 4)
        rows.append({"work": work, "flops": flops, "roofline_s": flops / (gflops * 1e9),
                     "shape_gflops": at_shape, "shape_roofline_s": flops / (max(at_shape.values()) * 1e9),
                     **{f"{k}_s": v for k, v in times.items()}})

    rng = np.random.default_rng(0)
    for batch in (1, 40):
        obs = rng.uniform(-1, 1, (batch, 1, 11)).astype(np.float32)
        noise = rng.standard_normal((S + 1, batch, 4, 3)).astype(np.float32)
        obs_t = torch.from_numpy(obs)
        times = time_interleaved({
            "eager_ref": lambda o=obs_t: ref.sample(o),
            "torch": lambda o=obs, n=noise: agents["torch"].act(o, n, False),
            "tf": lambda o=obs, n=noise: agents["tf"].act(o, n, False),
        }, repeats)
        row(f"sample chunk, batch {batch} ({S} steps, {K} fine-tuned)", batch * S * forward_flops(net), times, batch)

    n_rows = 500
    obs = rng.uniform(-1, 1, (n_rows, 1, 11)).astype(np.float32)
    noise = rng.standard_normal((S + 1, n_rows, 4, 3)).astype(np.float32)
    sample = agents["torch"].act(obs, noise, False)
    values, logprobs = agents["torch"].evaluate(obs, sample)
    mb = {"obs": obs, **sample, "logprobs": logprobs, "values": values,
          "advantages": rng.standard_normal(n_rows).astype(np.float32),
          "returns": rng.standard_normal(n_rows).astype(np.float32)}
    obs_t, chains_t = torch.from_numpy(obs), torch.from_numpy(sample["chains"])
    old_t = torch.from_numpy(logprobs)

    def ref_update() -> None:
        lp = ref.logprobs(obs_t, chains_t).clamp(-5, 2)[:, :4].mean(dim=(-1, -2)).view(-1)
        ratio = (lp - old_t.clamp(-5, 2).reshape(n_rows * K, 4, 3)[:, :4].mean(dim=(-1, -2))).exp()
        adv = torch.from_numpy(mb["advantages"]).repeat_interleave(K)
        loss = torch.max(-adv * ratio, -adv * ratio.clamp(0.99, 1.01)).mean()
        loss = loss + 0.5 * ((ref_critic(obs_t).view(-1) - torch.from_numpy(mb["returns"])) ** 2).mean()
        opt_ref.zero_grad()
        loss.backward()
        opt_ref.step()

    flops_update = n_rows * K * forward_flops(net) * 3  # forward + backward of actor_ft on every (row, step)
    row(f"PPO update minibatch ({n_rows} env steps x {K} denoising steps)", flops_update, time_interleaved({
        "eager_ref": ref_update,
        "torch": lambda: agents["torch"].update(mb, True),
        "tf": lambda: agents["tf"].update(mb, True)}, max(6, repeats // 3)), n_rows * K)

    from core_tf.algorithms.pretrain import PretrainBackend as TFPre
    from core_torch.algorithms.pretrain import PretrainBackend as TorchPre
    from shared.lr_schedule import CosineWarmupRestarts
    from shared.param_spec import torch_default_init
    from shared.param_spec.families import network_spec

    dc = load_settings(HOPPER_PRE, (), ("pretrain",)).model
    init = torch_default_init(network_spec(dc.network, "network."), 0)
    kw = dict(config=dc, init_params=init, learning_rate=1e-3, weight_decay=1e-6,
              schedule=CosineWarmupRestarts(100, 1e-3, 1e-4, 1), steps_per_epoch=10)
    pre = {"torch": TorchPre(**kw), "tf": TFPre(**kw)}
    x0 = rng.uniform(-1, 1, (128, 4, 3)).astype(np.float32)
    st = rng.uniform(-1, 1, (128, 1, 11)).astype(np.float32)
    tt = rng.integers(0, S, 128).astype(np.int64)
    nz = rng.standard_normal((128, 4, 3)).astype(np.float32)
    ref_net = with_plain_linears(pre["torch"].model.network)
    ref_opt = torch.optim.AdamW(ref_net.parameters(), lr=1e-3, weight_decay=1e-6)

    def ref_pre() -> None:
        loss = upstream_pretrain_loss(ref_net, torch.from_numpy(x0), torch.from_numpy(st), S)
        ref_opt.zero_grad()
        loss.backward()
        ref_opt.step()

    row("pretraining step (batch 128)", 128 * forward_flops(net, True) * 3, time_interleaved({
        "eager_ref": ref_pre,
        "torch": lambda: pre["torch"].train_step(x0, st, tt, nz),
        "tf": lambda: pre["tf"].train_step(x0, st, tt, nz)}, repeats), 128)

    from dppo.interop.export import build_serving_policy
    from shared.checkpoint import Checkpoint, save_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        pre_cfg = load_config(HOPPER_PRE, ["normalization_path=data/hopper-medium-v2/normalization.npz"])
        save_checkpoint(f"{tmp}/c.npz", Checkpoint({"model": init, "ema": init}, {"config": pre_cfg}))
        serving, _ = build_serving_policy(f"{tmp}/c.npz")
        serving.save(f"{tmp}/sm")
        loaded = tf.saved_model.load(f"{tmp}/sm").signatures["serving_default"]
        state = tf.constant(rng.uniform(-1, 1, (1, 1, 11)).astype(np.float32))
        row("SavedModel serving_default, batch 1", S * forward_flops(net), time_interleaved({
            "in_process_tf": lambda: serving.serve(state),
            "saved_model": lambda: loaded(state=state)}, repeats), 1)
    return {"threads": threads, "matmul_gflops": matmul, "peak_gflops": gflops, "rows": rows}


def format_table(result: dict[str, Any]) -> str:
    measured = ", ".join(f"{k} {v:.0f}" for k, v in result["matmul_gflops"].items())
    lines = [f"threads {result['threads']}; fp32 1024^3 matmul GFLOP/s: {measured}; "
             f"roofline at the best, {result['peak_gflops']:.1f} GFLOP/s. 'shape roof': the best library's rate "
             "on the work's own hidden-layer product shape (rows x 512 x 512). torch samples below 8 rows "
             "through torch.compile (DPPO_TORCH_COMPILE=1)",
             f"{'work':<58} {'eager ref':>10} {'torch':>10} {'tf':>10} {'torch x':>8} {'tf x':>7} {'roof':>9} "
             f"{'torch/roof':>10} {'tf/roof':>8} {'shape roof':>10} {'torch/shape':>11} {'tf/shape':>8}"]
    for r in result["rows"]:
        if "eager_ref_s" in r:
            ms = {k: r[f"{k}_s"] * 1e3 for k in ("eager_ref", "torch", "tf")}
            roof, shape = r["roofline_s"], r["shape_roofline_s"]
            lines.append(
                f"{r['work']:<58} {ms['eager_ref']:>8.2f}ms {ms['torch']:>8.2f}ms {ms['tf']:>8.2f}ms "
                f"{r['eager_ref_s'] / r['torch_s']:>7.1f}x {r['eager_ref_s'] / r['tf_s']:>6.1f}x "
                f"{roof * 1e3:>7.2f}ms {r['torch_s'] / roof:>9.1f}x {r['tf_s'] / roof:>7.1f}x "
                f"{shape * 1e3:>8.2f}ms {r['torch_s'] / shape:>10.1f}x {r['tf_s'] / shape:>7.1f}x")
        else:
            lines.append(f"{r['work']:<58} in-process TF {r['in_process_tf_s'] * 1e3:.2f}ms, SavedModel "
                         f"{r['saved_model_s'] * 1e3:.2f}ms ({r['saved_model_s'] / r['in_process_tf_s']:.2f}x)")
    return "\n".join(lines)


def main_bench(json_path: str | None, repeats: int) -> dict[str, Any]:
    result = run_bench(repeats)
    print(format_table(result))
    if json_path:
        write_json(json_path, result)
    return result
