"""One module per `dppo` subcommand, each with `register(subparsers)` (its options) and `run(args)` (argument
checks, then a call into the layers below). COMMANDS is the order `dppo --help` lists them in."""

COMMANDS = ("parity", "pretrain", "data", "finetune", "evaluate", "main_job", "compare", "export", "bench", "convert",
            "guide", "ddpo")
