"""Helpers for the deployment tests: the repository root, and CLI commands checked by the real parser."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Compose and entrypoint variables that are not chatsmith settings; .env.example documents them too.
CONTAINER_VARIABLES = frozenset(
    {
        "POSTGRES_PASSWORD",
        "COMPOSE_PROFILES",
        "CHATSMITH_IMAGE",
        "CHATSMITH_CUDA_IMAGE",
        "CHATSMITH_BOT_IMAGE",
        "CHATSMITH_SLACK_PUBLISH_PORT",
        "CHATSMITH_DB_WAIT_SECONDS",
        "TF_CONFIG",
    }
)


def parse_cli(argv: list[str]) -> argparse.Namespace:
    """Parse `chatsmith <argv>` with the real parser; fail the test (not exit) when it is not a command."""
    from chatsmith.cli import build_parser

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as error:
        pytest.fail(f"`chatsmith {' '.join(argv)}` is not a chatsmith command (argparse exit {error.code})")
    assert callable(getattr(args, "handler", None)), f"`chatsmith {' '.join(argv)}` names no command"
    return args
