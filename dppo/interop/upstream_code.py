"""Running upstream irom-lab/dppo's own classes beside ours: the checkout on sys.path (with stubs for the imports
only its drivers need), the pinned-commit check, noise injection into its samplers, canonical weights loaded
into its modules, and its DiffusionModel / PPODiffusion built from our settings.

The golden-fixture generator (scripts/golden) and `dppo bench --upstream` both use this module; nothing in
the training or export paths imports it. Upstream's modules are imported lazily, inside the functions, after
`activate_upstream` has put the checkout first on sys.path.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import subprocess
import sys
import types
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from shared.errors import ConfigError, UserError
from shared.param_spec import CriticObsActConfig, CriticObsConfig, DiffusionMLPConfig
from shared.settings import DiffusionConfig

PINNED_COMMIT = "7b10df690d54f3d29524f20daa8cf78288a21a9b"
# a file every upstream checkout this project reads has: tells an unrelated git repository from upstream's
_MARKER = "model/diffusion/diffusion_ppo.py"


# ---------------------------------------------------------------- the checkout


def upstream_commit(upstream: Path) -> str:
    out = subprocess.run(["git", "-C", str(upstream), "rev-parse", "HEAD"], capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def upstream_dirty(upstream: Path) -> bool:
    out = subprocess.run(["git", "-C", str(upstream), "status", "--porcelain", "--untracked-files=no"],
                         capture_output=True, text=True, check=True)
    return bool(out.stdout.strip())


def check_checkout(upstream: Path, allow_other_commit: bool) -> tuple[str, str | None]:
    """(HEAD commit, warning or None) of an upstream checkout; ConfigError (one line) when `upstream` is not a
    git checkout of irom-lab/dppo, or is at another commit than the pinned one and allow_other_commit is off."""
    if not (upstream / _MARKER).is_file():
        raise ConfigError(f"{upstream} is not an irom-lab/dppo checkout (no {_MARKER})")
    try:
        commit = upstream_commit(upstream)
    except (subprocess.CalledProcessError, OSError):
        raise ConfigError(f"{upstream} is not a git checkout (git rev-parse HEAD failed there)") from None
    warning = None
    if commit != PINNED_COMMIT:
        warning = f"upstream HEAD is {commit}, not the pinned {PINNED_COMMIT}"
        if not allow_other_commit:
            raise ConfigError(f"{warning} (pass --allow-other-commit to use it anyway)")
    return commit, warning


def stub_module(name: str, **attrs: Any) -> None:
    """Make `import name` succeed: the real module where installed, else an empty one holding attrs."""
    if name in sys.modules:
        return
    try:
        importlib.import_module(name)
        return
    except ImportError:
        pass
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    sys.modules[name] = mod


UPSTREAM_NEEDS = ("einops",)  # what upstream's model code imports beyond torch and numpy


def activate_upstream(upstream: Path) -> None:
    """Put the checkout first on sys.path and stub the imports only upstream's drivers need.

    wandb and hydra are only used by upstream's agents/configs; we call none of their functions.
    d4rl and gym are stubbed by the golden d4rl section itself (it drives the script on a synthetic dict).
    """
    missing = [m for m in UPSTREAM_NEEDS if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"upstream's code at {upstream} imports {', '.join(missing)}, which is not installed: "
                        f"pip install {' '.join(missing)}")
    if sys.path[:1] != [str(upstream)]:
        sys.path.insert(0, str(upstream))
    stub_module("wandb")
    stub_module("hydra", main=lambda *a, **k: (lambda f: f), utils=types.SimpleNamespace())


# ---------------------------------------------------------------- noise injection


class NoiseSource(Protocol):
    """Where a NoiseProxy takes its draws: a queue of pre-drawn arrays, and whether the run is float64."""

    queue: deque
    float64: bool


class NoiseProxy:
    """Stands in for the `torch` name inside one upstream module.

    randn / randn_like / randint pop pre-drawn arrays from `source.queue` (checked for shape) instead of
    drawing; with `source.float64`, `torch.float32` reads as float64, so upstream's explicit casts of its
    DDIM tables do not drop a float64 run back to float32. Everything else is real torch.
    """

    def __init__(self, torch_mod: Any, source: NoiseSource) -> None:
        self._torch = torch_mod
        self._source = source

    def __getattr__(self, name: str) -> Any:
        if name == "float32" and self._source.float64:
            return self._torch.float64
        return getattr(self._torch, name)

    def _pop(self, shape: tuple[int, ...], dtype: Any, what: str) -> Any:
        if not self._source.queue:
            raise RuntimeError(f"upstream drew {what}{list(shape)} but the noise queue is empty")
        arr = self._source.queue.popleft()
        if tuple(arr.shape) != tuple(shape):
            raise RuntimeError(f"upstream drew {what}{list(shape)}, next injected array is {list(arr.shape)}")
        return self._torch.from_numpy(np.array(arr)).to(dtype)

    def randn(self, *size: Any, **kw: Any) -> Any:
        shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)
        return self._pop(shape, self._torch.get_default_dtype(), "randn")

    def randn_like(self, x: Any, **kw: Any) -> Any:
        return self._pop(tuple(x.shape), x.dtype, "randn_like")

    def randint(self, low: int, high: int, size: Any, **kw: Any) -> Any:
        return self._pop(tuple(size), self._torch.int64, "randint")


class _Queue:
    def __init__(self, arrays: Sequence[np.ndarray]) -> None:
        self.queue, self.float64 = deque(arrays), False


@contextlib.contextmanager
def injected_noise(module_names: Sequence[str], arrays: Sequence[np.ndarray]) -> Iterator[None]:
    """Within the block, upstream's random draws in these modules take `arrays` in order (float32 run); all must be
    used. The modules' own `torch` comes back afterwards, so timed calls outside draw as upstream does."""
    import torch

    source = _Queue(arrays)
    mods = [importlib.import_module(n) for n in module_names]
    before = [m.__dict__.get("torch") for m in mods]
    for m in mods:
        m.torch = NoiseProxy(torch, source)
    try:
        yield
        if source.queue:
            raise RuntimeError(f"{len(source.queue)} injected noise arrays were not consumed")
    finally:
        for m, t in zip(mods, before):
            m.torch = t


# ---------------------------------------------------------------- weights and models


def load_weights(module: Any, params: dict[str, np.ndarray], prefix_map: dict[str, str] | None = None) -> None:
    """Copy canonical float32 params into an upstream module, in the module's own dtype.

    prefix_map maps upstream name prefixes to canonical ones (e.g. {"network.": ""}); upstream tensors
    that are not learned (Gaussian_MLP's logvar_min/max) keep their values; every canonical param must land.
    """
    import torch

    state = module.state_dict()
    used = set()
    with torch.no_grad():
        for up_name, tensor in state.items():
            name = up_name
            for up_prefix, ours in (prefix_map or {}).items():
                if up_name.startswith(up_prefix):
                    name = ours + up_name[len(up_prefix):]
                    break
            if name in params:
                tensor.copy_(torch.from_numpy(params[name]).to(tensor.dtype))
                used.add(name)
    missing = set(params) - used
    if missing:
        raise RuntimeError(f"canonical params not found upstream: {sorted(missing)}")


def diffusion_mlp(net: DiffusionMLPConfig) -> Any:
    """Upstream DiffusionMLP with net's architecture (weights as upstream initialises them)."""
    from model.diffusion.mlp_diffusion import DiffusionMLP

    return DiffusionMLP(net.action_dim, net.horizon_steps, net.cond_dim, time_dim=net.time_dim,
                        mlp_dims=list(net.mlp_dims),
                        cond_mlp_dims=None if net.cond_mlp_dims is None else list(net.cond_mlp_dims),
                        activation_type=net.activation_type, out_activation_type=net.out_activation_type,
                        use_layernorm=net.use_layernorm, residual_style=net.residual_style)


def critic_obs(critic: CriticObsConfig) -> Any:
    from model.common.critic import CriticObs

    return CriticObs(critic.cond_dim, list(critic.mlp_dims), activation_type=critic.activation_type,
                     use_layernorm=critic.use_layernorm, residual_style=critic.residual_style)


def critic_obs_act(critic: CriticObsActConfig) -> Any:
    from model.common.critic import CriticObsAct

    return CriticObsAct(critic.cond_dim, list(critic.mlp_dims), critic.action_dim, critic.action_steps,
                        activation_type=critic.activation_type, use_layernorm=critic.use_layernorm,
                        residual_style=critic.residual_style)


def model_kwargs(dc: DiffusionConfig) -> dict[str, Any]:
    """Upstream DiffusionModel's constructor arguments from our DiffusionConfig."""
    return dict(horizon_steps=dc.horizon_steps, obs_dim=dc.obs_dim, action_dim=dc.action_dim, device="cpu",
                denoised_clip_value=dc.denoised_clip_value, randn_clip_value=dc.randn_clip_value,
                final_action_clip_value=dc.final_action_clip_value, denoising_steps=dc.denoising_steps,
                predict_epsilon=dc.predict_epsilon, use_ddim=dc.use_ddim, ddim_steps=dc.ddim_steps)


def diffusion_model(dc: DiffusionConfig, params: dict[str, np.ndarray]) -> Any:
    """Upstream DiffusionModel (pre-training / evaluation class) with network.* = params (no prefix)."""
    from model.diffusion.diffusion import DiffusionModel

    model = DiffusionModel(network=diffusion_mlp(dc.network), **model_kwargs(dc))
    load_weights(model, {f"network.{k}": v for k, v in params.items()})
    return model


def ppo_diffusion(dc: DiffusionConfig, critic: CriticObsConfig, dppo: dict[str, Any], params: dict[str, np.ndarray],
                  eta: Any = None, learn_eta: bool = False, **ppo_kw: Any) -> Any:
    """Upstream PPODiffusion from canonical actor.*, actor_ft.*, critic.* (and eta.*) params; dppo holds
    ft_denoising_steps and the two min stds; ppo_kw the loss options (gamma_denoising, clip_ploss_coef, ...)."""
    from model.diffusion.diffusion_ppo import PPODiffusion

    critic_net = critic_obs(critic)  # built before the actor, as the golden fixtures were first made
    model = PPODiffusion(actor=diffusion_mlp(dc.network), critic=critic_net, eta=eta, learn_eta=learn_eta,
                         ft_denoising_steps=dppo["ft_denoising_steps"],
                         min_sampling_denoising_std=dppo["min_sampling_denoising_std"],
                         min_logprob_denoising_std=dppo["min_logprob_denoising_std"], **ppo_kw, **model_kwargs(dc))
    load_weights(model, params, {"network.": "actor."})
    return model
