"""`dppo eval`: a policy's return over whole episodes, deterministic sampling; with --as-logged, the evaluation
iteration a fine-tuning run saved a checkpoint at, rerun as the run ran it."""

from __future__ import annotations

import argparse

from dppo.commands.arguments import BACKEND_HELP, positive_int, seed
from dppo.runs.paths import check_output_file, write_json
from shared.data.frames import write_grid
from shared.errors import ConfigError

DEFAULT_EPISODES, DEFAULT_SEED = 10, 10_000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a policy (deterministic sampling) over whole episodes")
    p.add_argument("--config", required=True, help="YAML fine-tuning config or upstream eval config")
    p.add_argument("--backend", required=True, choices=("torch", "tf"), help=BACKEND_HELP)
    p.add_argument("--episodes", type=positive_int, default=None,
                   help=f"episodes to run, one env each, all at once (default {DEFAULT_EPISODES})")
    p.add_argument("--seed", type=seed, default=None,
                   help="env i is reset with seed SEED+i; the sampling noise is seeded from it too "
                        f"(default {DEFAULT_SEED})")
    p.add_argument("--as-logged", action="store_true",
                   help="base_policy_path is a checkpoint a fine-tuning run saved at an evaluation iteration: rerun "
                        "that iteration as the run did (its envs where the iteration started, its noise, its "
                        "train.n_steps steps, episodes that finished within it), giving the logged per-episode "
                        "returns and success; needs the run's config and overrides")
    p.add_argument("--frames", metavar="PNG",
                   help="image policies: write a PNG grid of the camera frames the policy was given (after the env's "
                        "wrappers, uint8, every camera side by side): the first 4 episodes (rows) at 6 policy steps "
                        "spread over each (columns), drawn at 2x")
    p.add_argument("--json", help="write the result (returns, means, D4RL scores, success per episode) here")
    p.add_argument("overrides", nargs="*", help="key=value overrides (base_policy_path=CKPT)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dppo.training.evaluate import evaluate, replay_eval_iteration
    from shared.settings import load_settings

    check_output_file(args.json, "--json")
    check_output_file(args.frames, "--frames")
    if args.as_logged and (args.episodes is not None or args.seed is not None):
        raise ConfigError("--as-logged reruns the run's own envs, seeds and episode count: drop --episodes and --seed")
    if args.as_logged and args.frames is not None:
        raise ConfigError("--frames draws the episodes dppo eval runs itself, not a rerun iteration: drop --frames or "
                          "--as-logged")
    cfg = load_settings(args.config, args.overrides, ("finetune", "eval"))
    if args.as_logged:
        result = replay_eval_iteration(cfg, args.backend)
        what = f" iteration {result['iteration']} as logged ({result['envs']} envs, {result['steps']} steps):"
    else:
        result = evaluate(cfg, args.backend, args.episodes or DEFAULT_EPISODES,
                          DEFAULT_SEED if args.seed is None else args.seed, frames=args.frames is not None)
        what = ""
    score = "" if result["d4rl_score_mean"] is None else (
        f"; D4RL score {result['d4rl_score_mean']:.1f} +- {result['d4rl_score_std']:.1f}")
    success = "" if result["success_rate"] is None else f"; success rate {result['success_rate']:.3f}"
    ret = "no episode finished" if result["return_mean"] is None else (
        f"return {result['return_mean']:.1f} +- {result['return_std']:.1f}")
    frames = "" if result.get("frames_per_s") is None else f"; {result['frames_per_s']:.1f} frames/s in the envs"
    print(f"{args.backend}:{what} {ret} over {result['episodes']} episodes{score}{success}{frames}")
    if args.frames is not None:
        print(write_grid(result.pop("frames"), args.frames, 2))
    if args.json:
        write_json(args.json, result)
    return 0
