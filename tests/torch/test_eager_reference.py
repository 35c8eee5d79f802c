"""The benchmark's upstream-style eager reference computes the same numbers as the project's model."""

import numpy as np
import torch

from dppo.algorithms.agents import make_agent
from dppo.bench.eager_reference import UpstreamStyleDPPO
from dppo.bench.kernels import format_table
from dppo.bench.roofline import forward_flops
from shared.settings import load_settings


def test_eager_reference_logprobs_and_chain_match_the_model():
    cfg = load_settings("configs/hopper/finetune_ppo_diffusion_mlp.yaml", [
        "base_policy_path=null", "model.actor.mlp_dims=[32,32,32]", "model.critic.mlp_dims=[16,16,16]"])
    agent = make_agent(cfg, "torch")
    m = agent.model
    ref = UpstreamStyleDPPO(m.actor, m.actor_ft, 20, 10, randn_clip=3.0)
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (6, 1, 11)).astype(np.float32)
    chains = agent.act(obs, rng.standard_normal((21, 6, 4, 3)).astype(np.float32), False)["chains"]
    with torch.no_grad():
        ours = m.logprobs(torch.from_numpy(obs), torch.from_numpy(chains)).numpy()
        theirs = ref.logprobs(torch.from_numpy(obs), torch.from_numpy(chains)).numpy().reshape(ours.shape)
    np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-5)
    x, chain = ref.sample(torch.from_numpy(obs))
    assert x.shape == (6, 4, 3) and chain.shape == (6, 11, 4, 3)
    assert forward_flops(m.actor.config) == 2 * (39 * 32 + 2 * 32 * 32 + 32 * 12)  # in, residual block, out


def test_bench_table_reports_speedups_and_roofline_fraction():
    result = {"threads": 2, "matmul_gflops": {"torch_mkl": 50.0, "tf_xla": 100.0}, "peak_gflops": 100.0, "rows": [
        {"work": "sample", "flops": 1e9, "roofline_s": 0.01, "shape_roofline_s": 0.005, "eager_ref_s": 0.04,
         "torch_s": 0.02, "tf_s": 0.01},
        {"work": "serve", "flops": 1e6, "roofline_s": 1e-5, "in_process_tf_s": 0.001, "saved_model_s": 0.0011}]}
    table = format_table(result)
    assert "2.0x" in table and "4.0x" in table and "(1.10x)" in table
    assert "100.0 GFLOP/s" in table and "torch_mkl 50" in table
