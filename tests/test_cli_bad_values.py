"""Every option of every `chatsmith` command, fed a bad value: one line on stderr and exit 2, never a traceback.

The options come from walking the real parser, so a new option without a bad value here fails the
completeness test below.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatsmith.base_model import PACKAGED_BASE_MODEL
from chatsmith.cli import build_parser, main
from tests.schema_template import copy_migrated_schema

MISSING = "/nonexistent/chatsmith-test"
UNWRITABLE = "/proc/chatsmith-test/out"

# A valid command line per command; the bad value replaces or joins it. {corpus} is a small chat log.
VALID = {
    "train": [
        "--corpus",
        "{corpus}",
        "--out",
        "{tmp}/out",
        "--units",
        "8",
        "--embedding",
        "4",
        "--epochs",
        "1",
    ],
    "generate": ["--model", str(PACKAGED_BASE_MODEL), "--max-tokens", "5"],
    "eval": ["--model", str(PACKAGED_BASE_MODEL), "--corpus", "{corpus}"],
    "demo": ["--out", "{tmp}/demo", "--time-budget", "1"],
    "db upgrade": [],
    "import": ["{corpus}", "--workspace", "W", "--channel", "C"],
    "train-scope": ["W", "C"],
    "models list": [],
    "models activate": ["1"],
    "models rollback": ["W", "C"],
    "config check": ["--no-connect"],
}

# Options whose every value is valid (free names and texts), or that start a long-running process.
ANY_VALUE = {
    ("import", "--workspace"),
    ("import", "--channel"),
    ("train-scope", "--requested-by"),
    ("train-scope", "channel"),
    ("models list", "channel"),
    ("models rollback", "channel"),
    ("generate", "--prompt"),
    ("trainer", "--worker-id"),
    ("console", "--workspace"),
    ("console", "--channel"),
    ("console", "--user"),
}

# Bad values for options whose type says nothing (plain strings).
STRING_BAD_VALUES = {
    "--format": ["bogus"],
    "--platform": ["bogus"],
    "--revision": ["bogus"],
    "--scope": ["NOPE"],
    "workspace": ["NOPE"],
}


def _value_options(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _value_options(sub, (*path, name))
        elif action.nargs != 0 and not isinstance(action, argparse._HelpAction):
            yield " ".join(path), action


def _bad_values(action: argparse.Action) -> list[str]:
    name = action.option_strings[-1] if action.option_strings else action.dest
    if action.choices is not None:
        return ["bogus"]
    if action.type is Path:
        return [UNWRITABLE] if name == "--out" else [MISSING]
    if action.type is not None:
        # Numbers, and the command's own number types (seeds, seconds).
        return ["x", "-1"]
    return STRING_BAD_VALUES.get(name, [])


def _cases() -> Iterator[tuple[str, str, str]]:
    for command, action in _value_options(build_parser()):
        name = action.option_strings[-1] if action.option_strings else action.dest
        if (command, name) in ANY_VALUE:
            continue
        for value in _bad_values(action):
            yield command, name, value


def test_every_option_has_a_bad_value() -> None:
    untested = [
        (command, action.option_strings or action.dest)
        for command, action in _value_options(build_parser())
        if command
        and not _bad_values(action)
        and (command, action.option_strings[-1] if action.option_strings else action.dest) not in ANY_VALUE
    ]
    assert untested == []


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHATSMITH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHATSMITH_DATABASE_URL", f"sqlite:///{tmp_path / 'data' / 'chatsmith.db'}")
    monkeypatch.setenv("CHATSMITH_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("CHATSMITH_BASE_MODEL_PATH", "none")
    (tmp_path / "corpus.txt").write_text("hello there\nhow are you\n" * 20, encoding="utf-8")
    copy_migrated_schema(f"sqlite:///{tmp_path / 'data' / 'chatsmith.db'}")
    assert main(["db", "upgrade"]) == 0  # at the newest schema already: says so
    return tmp_path


def _argv(command: str, name: str, value: str, tmp: Path) -> list[str]:
    valid = [part.format(corpus=tmp / "corpus.txt", tmp=tmp) for part in VALID.get(command, [])]
    if not name.startswith("-"):
        # A positional: the valid line's value at its place is swapped for the bad one.
        return [*command.split(), value, *valid[1:]] if valid else [*command.split(), value]
    if name in valid:
        index = valid.index(name)
        valid[index + 1] = value
        return [*command.split(), *valid]
    return [*command.split(), *valid, name, value]


@pytest.mark.parametrize(("command", "name", "value"), list(_cases()))
def test_a_bad_value_is_one_line_and_exit_2(
    command: str, name: str, value: str, fresh: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _argv(command, name, value, fresh)
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exit:
        code = exit.code
    err = capsys.readouterr().err
    assert code == 2, f"chatsmith {' '.join(argv)} exited {code}: {err}"
    assert "Traceback" not in err
    message = [line for line in err.splitlines() if "error:" in line]
    assert len(message) == 1 and message[0] == err.splitlines()[-1], err
