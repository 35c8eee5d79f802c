"""Golden fixtures for reward-guided diffusion from the author's own code (Freeky7819/diffusion-policy-engine,
dpe_main.py at the pinned commit), written beside upstream DPPO's as section `dpe`.

    python scripts/golden/dpe_fixtures.py --repo /path/to/diffusion-policy-engine   # a clone or its git dir

Runs the author's CondDenoiser, cosine schedule, q_sample, reconstruction, reward, training-step body
(AdamW, clip_grad_norm_) and ddpm_sample with and without MPPI on seeded inputs, twice: in float32 as the
author runs it and in float64 (the schedule's float32 `arange` switched to float64 as well), with every
torch.randn / randn_like / randint the code draws replaced by arrays drawn here, which the fixtures store.
The reward term's gradient is recorded both as the author's code computes it (p0_hat detached: none) and
with the detach removed (the `train.reward_gradient: true` variant this project adds).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import subprocess
import sys
import tempfile
import types
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from scripts.golden.common import Context, NoiseProxy, f32, load_weights, to_np  # noqa: E402
from shared.param_spec import CondDenoiserConfig, cond_denoiser_spec, torch_default_init  # noqa: E402

PINNED = "74e1c912af44f69742f94e8055d9c21be4b443f4"
SECTION = "dpe"
HIDDEN, TIME_DIM, T = 32, 8, 12


def load_dpe(repo: Path, commit: str) -> types.ModuleType:
    """dpe_main.py at `commit`, imported from a temp copy (its module code seeds torch and picks a device)."""
    text = subprocess.run(["git", "-C", str(repo), "show", f"{commit}:dpe_main.py"], capture_output=True, text=True,
                          check=True).stdout
    tmp = Path(tempfile.mkdtemp()) / "dpe_main.py"
    tmp.write_text(text)
    spec = importlib.util.spec_from_file_location("dpe_main", tmp)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.device = "cpu"
    return mod


@contextlib.contextmanager
def precision(ctx: Context, dpe: types.ModuleType, float64: bool, noise: list[np.ndarray]) -> Iterator[None]:
    import torch

    old, arange = torch.get_default_dtype(), torch.arange
    ctx.float64, ctx.queue = float64, deque(noise)
    torch.set_default_dtype(torch.float64 if float64 else torch.float32)
    if float64:  # cosine_beta_schedule builds its grid with an explicit dtype=torch.float32
        torch.arange = lambda *a, dtype=None, **k: arange(*a, dtype=torch.float64 if dtype is not None else None, **k)
    try:
        yield
        if ctx.queue:
            raise RuntimeError(f"{len(ctx.queue)} injected noise arrays were not consumed")
    finally:
        torch.set_default_dtype(old)
        torch.arange = arange
        ctx.float64, ctx.queue = False, deque()


def trained_params(cfg: CondDenoiserConfig, denoising_steps: int, steps: int) -> dict[str, np.ndarray]:
    """The denoiser after `steps` AdamW steps (lr 1e-3, batch 64, no reward term) of the torch twin."""
    from dppo.training.guided import make_agent
    from shared.guided import rosenbrock
    from shared.settings.guided import load_guided_settings

    over = [f"model.denoising_steps={denoising_steps}", f"model.hidden_dim={cfg.hidden_dim}",
            f"model.time_dim={cfg.time_dim}", "train.learning_rate=1e-3", "train.reward_weight=0"]
    settings = load_guided_settings(str(REPO / "configs/reward_guided/rosenbrock.yaml"), over)
    agent = make_agent(settings, "torch", torch_default_init(cond_denoiser_spec(cfg), 11))
    x, p = rosenbrock.dataset(4096, 11)
    rng = np.random.default_rng(12)
    for _ in range(steps):
        rows = rng.integers(0, len(x), 64)
        agent.train_step(x[rows], p[rows], rng.integers(0, denoising_steps, 64), f32(rng.standard_normal((64, 2))),
                         0.0)
    return {k: f32(v) for k, v in agent.state_groups()["model"].items()}


def build(ctx: Context, dpe: types.ModuleType, commit: str) -> None:
    import torch

    dpe.torch = NoiseProxy(torch, ctx)  # the author's torch.randn / randn_like / randint draw our arrays
    cfg = CondDenoiserConfig(2, 2, HIDDEN, TIME_DIM)
    spec = cond_denoiser_spec(cfg)

    def run_twice(run, noise=()):  # noqa: ANN001, ANN202
        out = {}
        for f64 in (False, True):
            with precision(ctx, dpe, f64, list(noise)):
                out[f64] = {k: np.asarray(to_np(v)) for k, v in run(f64).items()}
        return out[False], out[True]

    def model(params, f64):  # noqa: ANN001, ANN202
        m = dpe.CondDenoiser(2, 2, d_hidden=HIDDEN, d_t=TIME_DIM)
        m = m.double() if f64 else m
        load_weights(m, params)
        return m

    def tensor(a, f64):  # noqa: ANN001, ANN202
        return torch.from_numpy(np.asarray(a, np.float64 if f64 else np.float32))

    rng = ctx.rng("dpe")
    params = {k: f32(v) for k, v in torch_default_init(spec, 7).items()}
    B = 16
    x = f32(rng.standard_normal((B, 2)))
    p0 = f32(rng.standard_normal((B, 2)) * 0.5 + 0.5)
    t = rng.integers(0, T, B).astype(np.int64)
    noise = f32(rng.standard_normal((B, 2)))
    lam = 0.5
    inputs = {**{f"param/{k}": v for k, v in params.items()}, "x": x, "p0": p0, "t": t, "noise": noise}

    # the schedule of Diffusion1D(T=200) and of the small chain the other cases use
    def schedule(f64):  # noqa: ANN001, ANN202
        return {f"{n}/{name}": getattr(dpe.Diffusion1D(T=n), name) for n in (200, T)
                for name in ("betas", "alphas_cumprod")}

    up32, up64 = run_twice(schedule)
    ctx.case("schedule", {"T": [200, T]}, {}, up32, up64)

    # one training step's body, as train() runs it, with the reward's gradient cut (the author's) or not
    def step(reward_gradient):  # noqa: ANN001, ANN202
        def run(f64):  # noqa: ANN001, ANN202
            m, diff = model(params, f64), dpe.Diffusion1D(T=T)
            xt, tt = tensor(x, f64), torch.from_numpy(t)
            p_t, eps = diff.q_sample(tensor(p0, f64), tt)  # draws the noise: ours, from the queue
            eps_hat = m(xt, p_t, (tt.float() if not f64 else tt.double()).unsqueeze(-1) / diff.T)
            loss_denoise = torch.nn.functional.mse_loss(eps_hat, eps)
            ab = diff.alphas_cumprod[tt].view(-1, 1)
            p0_pred = (p_t - (1 - ab).sqrt() * eps_hat) / ab.sqrt()
            scored = dpe.ema_update(None, p0_pred if reward_gradient else p0_pred.detach(), tau=0.9)
            R = dpe.rosenbrock_reward(xt, scored)
            loss = loss_denoise - lam * R.mean()
            opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
            opt.zero_grad()
            loss.backward()
            grads = {f"grad/{k}": v.grad.detach().clone() for k, v in m.named_parameters()}
            torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
            opt.step()
            after = {f"after/{k}": v.detach().clone() for k, v in m.named_parameters()}
            return {"p_t": p_t, "eps_hat": eps_hat, "p0_hat": p0_pred, "reward": R, "loss": loss,
                    "denoise_loss": loss_denoise, **grads, **after}

        return run

    for name, rg in (("train_step", False), ("train_step_reward_gradient", True)):
        up32, up64 = run_twice(step(rg), [noise])
        ctx.case(name, {"T": T, "hidden_dim": HIDDEN, "time_dim": TIME_DIM, "reward_weight": lam, "lr": 1e-3,
                        "weight_decay": 0.01, "max_grad_norm": 1.0, "reward_gradient": rg}, inputs, up32, up64)

    # ddpm_sample with and without MPPI: the initial draw, then per step K jitters and (t > 0) the step noise
    # sampling needs a denoiser that denoises: random weights send the chain far from the bowl, where the
    # reward is -1 for every candidate and MPPI's weights are all equal. The sampling cases take weights our
    # torch twin trained for a few hundred steps on the benchmark (inputs like any other: how they were made
    # does not matter to the comparison)
    K, lam_mppi = 3, 0.5
    params = trained_params(cfg, T, steps=600)
    p_init = f32(rng.standard_normal((B, 2)))
    jitter = f32(rng.standard_normal((T, K, B, 2)))
    step_noise = f32(rng.standard_normal((T, B, 2)))
    for name, k in (("sample_mppi", K), ("sample_plain", 0)):
        queue = [p_init]
        for i in range(T):  # sampling order: t = T-1 .. 0
            queue += [jitter[i, j] for j in range(k)]  # randn_like, which their code scales by 0.05
            if T - 1 - i > 0:
                queue.append(step_noise[i])

        def sample(f64, k=k):  # noqa: ANN001, ANN202
            m, diff = model(params, f64), dpe.Diffusion1D(T=T)
            p = dpe.ddpm_sample(m, diff, tensor(x, f64), 2, mppi_K=k, lam=lam_mppi)
            return {"p": p, "reward": dpe.rosenbrock_reward(tensor(x, f64), p)}

        up32, up64 = run_twice(sample, queue)
        ctx.case(name, {"T": T, "mppi_candidates": k, "mppi_temperature": lam_mppi, "mppi_jitter": 0.05},
                 {**{f"param/{kk}": v for kk, v in params.items()}, "x": x, "p_init": p_init,
                  "jitter": jitter[:, :max(k, 1)], "step_noise": step_noise}, up32, up64)

    # the reward on its own, over a wide range of p
    pr = f32(rng.standard_normal((64, 2)) * 1.5)
    xr = f32(rng.standard_normal((64, 2)))
    up32, up64 = run_twice(lambda f64: {"reward": dpe.rosenbrock_reward(tensor(xr, f64), tensor(pr, f64))})
    ctx.case("reward", {}, {"x": xr, "p": pr}, up32, up64)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", type=Path, required=True, help="diffusion-policy-engine clone or git dir")
    p.add_argument("--commit", default=PINNED)
    p.add_argument("--out", type=Path, default=REPO / "tests/golden/fixtures")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    dpe = load_dpe(args.repo, args.commit)
    ctx = Context(upstream=args.repo, seed=args.seed)
    ctx.current = SECTION
    build(ctx, dpe, args.commit)
    sizes = ctx.write(args.out)
    manifest_path = args.out / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["sections"][SECTION] = {
        "file": f"{SECTION}.npz", "bytes": sizes[SECTION], "cases": ctx.manifest[SECTION],
        "repository": "Freeky7819/diffusion-policy-engine", "commit": args.commit,
        "command": "python scripts/golden/dpe_fixtures.py --repo PATH", "torch_version": torch.__version__}
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    print(f"wrote {SECTION}: {len(ctx.manifest[SECTION])} cases, {sizes[SECTION] / 1e3:.1f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
