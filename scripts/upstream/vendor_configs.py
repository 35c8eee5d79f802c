"""Copy upstream irom-lab/dppo's gym and robomimic configs into tests/fixtures/upstream_cfg.

The files keep upstream's keys and values exactly (they are what a migrating user runs); only
YAML comments are stripped. The pinned commit is recorded beside them. Usage:

    python scripts/upstream/vendor_configs.py --upstream /path/to/irom-lab/dppo
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PINNED_COMMIT = "7b10df690d54f3d29524f20daa8cf78288a21a9b"
ENVS = {"hopper": ("hopper-medium-v2", "hopper-v2"), "walker2d": ("walker2d-medium-v2", "walker2d-v2"),
        "halfcheetah": ("halfcheetah-medium-v2", "halfcheetah-v2")}



ROBOMIMIC_TASKS = ("lift", "can", "square", "transport")
PRETRAINING = ("pre_diffusion_mlp", "pre_gaussian_mlp")  # upstream's pre-training configs of every env


def config_paths(root: Path) -> list[Path]:
    """Each env's pre-training configs, every config the algorithm table names (shared/settings/algorithms.py,
    `upstream_configs`) where upstream ships it for that task (under finetune/<task>, or under
    pretrain/<dataset> for an offline phase such as Cal-QL's), and every gym eval config."""
    from shared.settings.algorithms import ALGORITHMS

    paths = []
    for data_env, task in ENVS.values():
        dirs = (Path("cfg/gym/pretrain") / data_env, Path("cfg/gym/finetune") / task)
        stems = [*PRETRAINING, *(stem for a in ALGORITHMS.values() for stem in a.upstream_configs)]
        for stem in stems:
            for d in dirs:
                if (root / d / f"{stem}.yaml").is_file():  # e.g. the exact-likelihood configs exist for two tasks
                    paths.append(d / f"{stem}.yaml")
    paths += sorted(p.relative_to(root) for p in (root / "cfg/gym/eval").rglob("*.yaml"))
    for kind in ("pretrain", "finetune", "eval"):  # robomimic: every config, state-based and camera (*_img)
        for task in ROBOMIMIC_TASKS:
            task_dir = root / "cfg/robomimic" / kind / task
            if task_dir.is_dir():
                paths += sorted(p.relative_to(root) for p in task_dir.glob("*.yaml"))
    return paths


def strip_comments(text: str) -> str:
    """Drop full-line and trailing `#` comments (upstream's gym configs have no '#' inside values)."""
    out = []
    for line in text.splitlines():
        line = re.sub(r"\s+#.*$", "", line) if not line.lstrip().startswith("#") else ""
        if line.strip() or (out and out[-1].strip()):
            out.append(line.rstrip())
    return "\n".join(out).strip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="a checkout of irom-lab/dppo")
    parser.add_argument("--out", default="tests/fixtures/upstream_cfg")
    args = parser.parse_args()
    root = Path(args.upstream)
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    if commit != PINNED_COMMIT:
        print(f"upstream checkout is at {commit}, not the pinned {PINNED_COMMIT}", file=sys.stderr)
        return 2
    out = Path(args.out)
    files = []
    for rel in config_paths(root):
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(strip_comments((root / rel).read_text()))
        files.append(str(rel))
    (out / "SOURCE.json").write_text(json.dumps({"repository": "irom-lab/dppo", "commit": commit, "files": files,
                                                 "note": "values unchanged; YAML comments stripped"}, indent=1))
    print(f"wrote {len(files)} configs to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
