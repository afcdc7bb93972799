"""The `chatsmith` command line: one parser, one sub-command module per area."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence

from chatsmith.commands import registered_command_modules

# Commands that never import TensorFlow start faster and need no quiet import. The bots and `generate`
# decode with NumPy only, and the bot image has no TensorFlow to import.
_COMMANDS_WITHOUT_TENSORFLOW = frozenset(
    {"db", "config", "import", "train-scope", "models", "bot", "console", "generate"}
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatsmith",
        description="Train small recurrent language models on chat channels and serve them as a bot.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging detail")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in registered_command_modules():
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Time budgets count from here: importing TensorFlow and reading the corpus are part of the run.
    started = time.monotonic()
    parser = build_parser()
    args = parser.parse_args(argv)
    args.started = started
    # TensorFlow's C++ chatter ("failed call to cuInit" on machines without a GPU) hides the output
    # people came for; --verbose keeps it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1" if args.verbose else "3")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # Alembic narrates every migration step at INFO; `chatsmith db upgrade` prints its own summary.
        logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.command not in _COMMANDS_WITHOUT_TENSORFLOW:
        from textgen.tensorflow_import import import_tensorflow

        import_tensorflow(quiet=not args.verbose)
    from chatsmith.errors import run_reporting_errors

    return run_reporting_errors(lambda: args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
