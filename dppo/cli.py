"""`dppo` command line: the subcommands of dppo/commands/, one module each. Bad input gets one line on stderr
and exit code 2."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from dppo.commands import COMMANDS
from dppo.commands.tf_logging import quiet_tensorflow
from shared.errors import RunTerminated, UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dppo", description="DPPO twin implementation (PyTorch and TensorFlow)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"dppo.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from dppo.runs.stop import sigterm_raises

    quiet_tensorflow()
    args = build_parser().parse_args(argv)
    try:
        with sigterm_raises():
            return args.run(args)
    except UserError as exc:
        print(f"dppo {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except RunTerminated as exc:
        print(f"dppo {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"dppo {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
