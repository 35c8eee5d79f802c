"""Why DDPO-ISKL with the report's KL estimate walks away from its reference (docs/evidence/ddpo.md), on the
pre-trained digit denoiser, with the torch twin:

    kl-only   ISKL with the policy-gradient term off (advantages 0) from a perturbed copy of the pre-trained
              model: on-policy chains each iteration, two updates; prints the report's estimate
              (1/2)(sum_t logp_theta - logp_ref)^2 and the Gaussian KL of the steps, sum_t mean_pixels
              (mu_theta - mu_ref)^2 / (2 s_t^2), as they evolve. --estimator picks the term the updates follow;
              key=value overrides change the config (configs/ddpo/digits_compress_iskl.yaml).
    gradient  at a perturbed model: the report's estimate's gradient averaged over 1, 4, 16, M batches of 8
              on-policy chains against the pathwise gradient of the true chain KL E_z[sum_t KL_t] (the
              states differentiated through the sampler): unbiased but noisy, or biased?
    distance  the Gaussian KL of fine-tuned runs' final models to the pre-trained one on the 64 evaluation
              prompts and noises (the mean over chains of sum_t mean_pixels (mu - mu_ref)^2 / (2 s_t^2)).

    .venv/bin/python scripts/experiments/ddpo_iskl_diagnosis.py kl-only --base PRETRAIN_LOGDIR --estimator chain
    .venv/bin/python scripts/experiments/ddpo_iskl_diagnosis.py gradient --base PRETRAIN_LOGDIR
    .venv/bin/python scripts/experiments/ddpo_iskl_diagnosis.py distance --base PRETRAIN_LOGDIR RUN_LOGDIR...
"""

from __future__ import annotations

import argparse
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dppo.checkpoints.formats import read_checkpoint  # noqa: E402
from dppo.runs.files import RunDir  # noqa: E402
from dppo.training import ddpo  # noqa: E402
from shared.settings.ddpo import DDPOConfig, load_ddpo_settings  # noqa: E402

CONFIG = "configs/ddpo/digits_compress_iskl.yaml"


def _setup(base: str, overrides: list[str]) -> tuple[DDPOConfig, OrderedDict]:
    cfg = load_ddpo_settings(CONFIG, [f"base={base}", "logdir=/tmp/ddpo-iskl-diagnosis", *overrides])
    return cfg, ddpo.load_base(cfg.base, cfg.model)


def _perturbed(agent: Any, scale: float) -> None:
    """Every weight moved by scale times its tensor's standard deviation (a fixed draw)."""
    import torch

    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in agent.model.parameters():
            p.add_(scale * p.std() * torch.randn(p.shape, generator=g, dtype=p.dtype))


def _terms(agent: Any, chains: Any, labels: Any) -> tuple[Any, Any, Any]:
    """Per chain (B,): the report's estimate (1/2)(sum_t logp - logp_ref)^2 and the Gaussian KL of the steps;
    and the policy's log-probabilities (B, S) (with gradient)."""
    import torch

    mean, nxt, std = agent.transitions(agent.model, chains, labels)
    new = agent.chain_logprobs(agent.model, chains, labels)
    with torch.no_grad():
        ref = agent.chain_logprobs(agent.ref, chains, labels)
        ref_mean = agent.transitions(agent.ref, chains, labels)[0]
    gauss = (((mean - ref_mean) ** 2) / (2 * std**2)).mean(-1).reshape(new.shape).sum(1)
    return 0.5 * (new - ref).sum(1) ** 2, gauss, new


def kl_only(args: argparse.Namespace) -> None:
    import torch

    from core_torch.runtime.optim import clip_grad_norm

    cfg, base = _setup(args.base, [*args.overrides, f"train.kl_estimator={args.estimator}"])
    agent = ddpo.make_agent(cfg, "torch", base, base)
    _perturbed(agent, args.scale)
    params = [p for _, p in agent.named]
    optimizer = agent.optimizer if args.optimizer == "adamw" else torch.optim.SGD(params, lr=args.sgd_lr)
    print(f"estimator {args.estimator}, optimizer {args.optimizer}, perturbation {args.scale}")
    for k in range(1, args.iterations + 1):
        labels, noise = ddpo.iteration_draws(cfg, k)
        smp = agent.sample(labels, noise)
        for u in range(cfg.train.updates_per_iteration):
            rows = np.random.default_rng([k, u]).permutation(len(labels))[: cfg.minibatch]
            chains, y = torch.as_tensor(smp["chains"][rows]), torch.as_tensor(labels[rows])
            estimate, gauss, _ = _terms(agent, chains, y)
            loss = (estimate if args.estimator == "chain" else gauss).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = clip_grad_norm(params, cfg.train.max_grad_norm)
            optimizer.step()
            if u == 0:
                print(f"iteration {k:3d}: report's estimate {float(estimate.mean()):10.4g}  Gaussian KL "
                      f"{float(gauss.mean()):10.4g}  gradient norm {grad_norm:8.3g}", flush=True)


def gradient(args: argparse.Namespace) -> None:
    import torch

    from core_torch.diffusion.model import reverse_mean

    cfg, base = _setup(args.base, [])
    agent = ddpo.make_agent(cfg, "torch", base, base)
    _perturbed(agent, args.scale)
    params = [p for _, p in agent.named]

    def flat(loss: Any) -> Any:
        return torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)])

    def cos(a: Any, b: Any) -> float:
        return float(a @ b / (a.norm() * b.norm()))

    def true_kl(labels: np.ndarray, noise: np.ndarray) -> Any:
        """E_z[sum_t KL_t] on one draw, the states differentiable through the sampler."""
        y, z = torch.as_tensor(labels), torch.as_tensor(noise)
        x, kl = z[0], 0.0
        ones = torch.ones((x.shape[0], 1), dtype=x.dtype)
        for i in range(z.shape[0] - 1):
            s = {k: v[i] for k, v in agent.steps.items()}
            mu = reverse_mean(x, agent._eps(agent.model, x, y, s["t01"] * ones), s, True, cfg.sample.clip_x0)
            mu_ref = reverse_mean(x, agent._eps(agent.ref, x, y, s["t01"] * ones), s, True, cfg.sample.clip_x0)
            kl = kl + ((mu - mu_ref) ** 2 / (2 * s["std"] ** 2)).mean(-1)
            x = mu + s["std"] * z[i + 1]
        return kl.mean()

    estimates, pathwise = [], []
    for m in range(args.batches):
        labels, noise = ddpo.iteration_draws(cfg, 5000 + m)
        if m < args.pathwise:
            pathwise.append(flat(true_kl(labels, noise)))
        smp = agent.sample(labels, noise)
        estimate, _, _ = _terms(agent, torch.as_tensor(smp["chains"]), torch.as_tensor(labels))
        # the pixel-mean log-probabilities make E[(1/2) L^2]'s gradient grad KL / D: times D to compare sizes
        estimates.append(64 * flat(estimate.mean()))
    est, path = torch.stack(estimates), torch.stack(pathwise).mean(0)
    print(f"perturbation {args.scale}; pathwise gradient of the true KL averaged over {args.pathwise} batches "
          f"of 8 chains (its two halves agree to cosine "
          f"{cos(torch.stack(pathwise[::2]).mean(0), torch.stack(pathwise[1::2]).mean(0)):.3f})")
    for n in sorted({1, 4, 16, args.batches}):
        print(f"the report's estimate averaged over {n:3d} batches: cosine with it {cos(est[:n].mean(0), path):6.3f}, "
              f"norm ratio {float(est[:n].mean(0).norm() / path.norm()):6.2f}")


def distance(args: argparse.Namespace) -> None:
    import torch

    cfg, base = _setup(args.base, [])
    labels, noise = ddpo.eval_draws(cfg)
    for logdir in args.runs:
        path = RunDir(logdir).latest_checkpoint()
        if path is None:
            print(f"{logdir}: no checkpoint")
            continue
        agent = ddpo.make_agent(cfg, "torch", read_checkpoint(path).group("model"), base)
        smp = agent.sample(labels, noise)
        with torch.no_grad():
            _, gauss, _ = _terms(agent, torch.as_tensor(smp["chains"]), torch.as_tensor(labels))
        print(f"{logdir}: Gaussian KL to the pre-trained model {float(gauss.mean()):.4g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("kl-only")
    p.add_argument("--base", required=True)
    p.add_argument("--estimator", choices=("chain", "gaussian"), default="chain")
    p.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw")
    p.add_argument("--sgd-lr", type=float, default=0.03)
    p.add_argument("--scale", type=float, default=0.05)
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("overrides", nargs="*", help="config overrides, e.g. train.samples_per_iteration=64 "
                                                "train.batch_size=64 or sample.min_std=0.1")
    p.set_defaults(run=kl_only)
    p = sub.add_parser("gradient")
    p.add_argument("--base", required=True)
    p.add_argument("--scale", type=float, default=0.05)
    p.add_argument("--batches", type=int, default=64)
    p.add_argument("--pathwise", type=int, default=16)
    p.set_defaults(run=gradient)
    p = sub.add_parser("distance")
    p.add_argument("--base", required=True)
    p.add_argument("runs", nargs="+")
    p.set_defaults(run=distance)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
