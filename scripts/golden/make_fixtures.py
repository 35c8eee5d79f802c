"""Generate the golden fixtures from upstream irom-lab/dppo's own classes.

    python scripts/golden/make_fixtures.py --upstream /work/upstream-dppo --out tests/golden/fixtures

Needs torch and einops (upstream's model code imports it); the tests that read the fixtures need neither.
Refuses a checkout whose HEAD is not the pinned commit unless --allow-other-commit is given, in which
case the manifest records the actual commit under "upstream_commit" and "WARNING".
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from dppo.interop.upstream_code import PINNED_COMMIT, activate_upstream, check_checkout, upstream_dirty  # noqa: E402
from scripts.golden.common import Context  # noqa: E402
from shared.errors import ConfigError  # noqa: E402


def sections() -> list[str]:
    """Every module under scripts/golden that defines `build(ctx)`, by name: a new section is a new module."""
    here = Path(__file__).resolve().parent
    return sorted(f.stem for f in here.glob("*.py") if re.search(r"^def build\(ctx", f.read_text(), re.M))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--upstream", type=Path, required=True, help="irom-lab/dppo git checkout")
    p.add_argument("--out", type=Path, default=REPO / "tests/golden/fixtures")
    p.add_argument("--sections", nargs="*", default=sections(), choices=sections())
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--allow-other-commit", action="store_true")
    args = p.parse_args(argv)

    try:
        commit, warning = check_checkout(args.upstream, args.allow_other_commit)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if warning:
        print(f"WARNING: {warning}", file=sys.stderr)
    if upstream_dirty(args.upstream):
        warning = (warning + "; " if warning else "") + "upstream work tree has local modifications"
        print(f"WARNING: {warning}", file=sys.stderr)

    import torch

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)  # reproducible float32 reductions
    activate_upstream(args.upstream)
    ctx = Context(upstream=args.upstream, seed=args.seed)
    for name in args.sections:
        ctx.current = name
        torch.manual_seed(args.seed)  # a section's numbers do not depend on which sections ran before it
        importlib.import_module(f"scripts.golden.{name}").build(ctx)
        print(f"{name}: {len(ctx.manifest.get(name, {}))} cases")

    sizes = ctx.write(args.out)
    manifest_path = args.out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"sections": {}}
    manifest.update({
        "upstream_repo": "irom-lab/dppo",
        "upstream_commit": commit,
        "pinned_commit": PINNED_COMMIT,
        "command": "python " + " ".join(shlex.quote(a) for a in
                                        ["scripts/golden/make_fixtures.py", *(argv or sys.argv[1:])]),
        "torch_version": torch.__version__,
        "seed": args.seed,
        "layout": "<section>.npz holds '<case>/in/<name>' (inputs, float32 params as 'in/param/<canonical name>'), "
                  "'<case>/up32/<name>' (upstream run in float32, as upstream runs) and '<case>/up64/<name>' "
                  "(the same upstream code run in float64, its DDPM tables included, on the same float32 "
                  "inputs); per-case options "
                  "are in sections.<section>.<case>",
    })
    if warning:
        manifest["WARNING"] = warning
    for name in args.sections:
        manifest["sections"][name] = {"file": f"{name}.npz", "bytes": sizes.get(name, 0),
                                      "cases": ctx.manifest.get(name, {})}
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    total = sum(s["bytes"] for s in manifest["sections"].values())
    print(f"wrote {args.out} ({total / 1e3:.1f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
