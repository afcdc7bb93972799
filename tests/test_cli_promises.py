"""What the README and `--help` promise of the command line, on a fresh data directory each time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from chatsmith.base_model import PACKAGED_BASE_MODEL
from chatsmith.cli import main
from db.engine import create_database_engine, immediate
from db.registry import create_version, mark_candidate, promote
from db.scopes import Scope, get_or_create_channel, get_or_create_workspace

REPOSITORY = Path(__file__).resolve().parent.parent


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every setting pointing into tmp_path, with no base model."""
    monkeypatch.setenv("CHATSMITH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHATSMITH_DATABASE_URL", f"sqlite:///{tmp_path / 'data' / 'chatsmith.db'}")
    monkeypatch.setenv("CHATSMITH_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("CHATSMITH_BASE_MODEL_PATH", "none")
    return tmp_path


def _add_version(tmp_path: Path, platform: str, workspace: str, channel: str, note: str = "") -> int:
    """An active version (with an empty bundle folder) for platform:workspace #channel; returns its id."""
    engine = create_database_engine(f"sqlite:///{tmp_path / 'data' / 'chatsmith.db'}")
    try:
        with Session(immediate(engine), expire_on_commit=False) as session, session.begin():
            ws = get_or_create_workspace(session, platform, workspace)
            ch = get_or_create_channel(session, ws, channel)
            session.flush()
            version = create_version(session, Scope(ws.id, ch.id), tokenizer_kind="byte", spec={})
            bundle = tmp_path / "models" / f"{platform}-{workspace}-{channel}"
            bundle.mkdir(parents=True)
            mark_candidate(session, version, bundle_path=str(bundle))
            promote(session, version)
            version.note = note
            return version.id
    finally:
        engine.dispose()


def test_models_list_platform_filter_applies_without_a_workspace(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade"]) == 0
    _add_version(cli_env, "console", "home", "general")
    _add_version(cli_env, "discord", "123", "456")
    capsys.readouterr()

    assert main(["models", "list", "--platform", "discord"]) == 0
    listing = capsys.readouterr().out
    assert "discord:123" in listing and "console:home" not in listing

    assert main(["models", "list"]) == 0
    everything = capsys.readouterr().out
    assert "discord:123" in everything and "console:home" in everything


def test_models_list_shows_the_whole_note_wrapped(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade"]) == 0
    note = "promoted: " + "scored well on the held-out part of the channel " * 4 + "; withdrawn: member left"
    _add_version(cli_env, "console", "home", "general", note=note)
    capsys.readouterr()

    assert main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    assert "withdrawn: member left" in listing
    assert " ".join(listing.split()).count("held-out part of the channel") == 4
    assert all(len(line) <= 160 for line in listing.splitlines())


def _import_lines(tmp_path: Path, workspace: str = "W", channel: str = "C", lines: int = 3) -> None:
    log = tmp_path / f"{workspace}-{channel}.txt"
    log.write_text("".join(f"line number {index} here\n" for index in range(lines)), encoding="utf-8")
    assert (
        main(["import", "--workspace", workspace, "--channel", channel, "--format", "lines", str(log)]) == 0
    )


def test_generate_with_an_unknown_scope_or_platform_fails_instead_of_using_the_base_model(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHATSMITH_BASE_MODEL_PATH", str(PACKAGED_BASE_MODEL))
    assert main(["db", "upgrade"]) == 0
    _import_lines(cli_env)
    capsys.readouterr()

    assert main(["generate", "--scope", "NOPE", "--max-tokens", "5"]) == 2
    err = capsys.readouterr().err
    assert "console:NOPE is not in the database" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as exited:
        main(["generate", "--scope", "W", "C", "--platform", "bogus"])
    assert exited.value.code == 2
    capsys.readouterr()

    assert main(["generate", "--scope", "W", "C", "--max-tokens", "5", "--seed", "1"]) == 0
    assert "using the base model" in capsys.readouterr().err


def test_generate_without_a_model_names_both_ways_to_give_one(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate"]) == 2
    err = capsys.readouterr().err
    assert "--model DIR" in err and "--scope WORKSPACE" in err


def test_generate_scope_samples_pass_the_bots_output_filter(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHATSMITH_BASE_MODEL_PATH", str(PACKAGED_BASE_MODEL))
    assert main(["db", "upgrade"]) == 0
    _import_lines(cli_env)
    capsys.readouterr()
    prompt = "what the fuck, see https://example.com/x?token=abcdef123456 "
    argv = ["generate", "--scope", "W", "C", "--prompt", prompt, "--max-tokens", "5", "--seed", "1", "--json"]
    assert main(argv) == 0
    [sample] = json.loads(capsys.readouterr().out)["samples"]
    assert "fuck" not in sample and "f***" in sample
    assert "abcdef123456" not in sample

    # --model is a bundle on disk, not a bot's scope: nothing is filtered.
    assert (
        main(["generate", "--model", str(PACKAGED_BASE_MODEL), "--prompt", prompt, "--max-tokens", "5"]) == 0
    )
    assert "fuck" in capsys.readouterr().out


def test_import_counts_read_as_english_and_say_the_guess_once(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade"]) == 0
    log = cli_env / "one.log"
    log.write_text("[12:00] <alice> hello there\n[12:01] -!- bob has joined #c\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["import", "--workspace", "W", "--channel", "C", str(log)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("imported 1 of 1 message (irc format, guessed)")
    assert (captured.out + captured.err).count("pass --format to override") == 1
    assert main(["import", "--workspace", "W", "--channel", "C", "--format", "irc", str(log)]) == 0
    assert "0 of 1 message (irc format) into console:W #C; 1 was already stored" in capsys.readouterr().out


def test_rollback_of_the_only_version_returns_to_the_base_model(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHATSMITH_BASE_MODEL_PATH", str(PACKAGED_BASE_MODEL))
    assert main(["db", "upgrade"]) == 0
    _import_lines(cli_env)
    version_id = _add_version(cli_env, "console", "W", "C")
    capsys.readouterr()

    assert main(["models", "rollback", "W", "C"]) == 0
    said = capsys.readouterr().out
    assert "v1 set aside" in said and "the base model serves it again" in said
    assert main(["models", "list", "W", "C"]) == 0
    assert (
        f"{version_id:>5}  console:W #C" in (listing := capsys.readouterr().out) and " rejected " in listing
    )
    assert main(["generate", "--scope", "W", "C", "--max-tokens", "3"]) == 0
    assert "using the base model" in capsys.readouterr().err
    # Nothing is active any more: a second rollback has nothing to set aside.
    assert main(["models", "rollback", "W", "C"]) == 2
    assert "no earlier model version" in capsys.readouterr().err


def test_config_check_refuses_a_data_directory_that_cannot_be_created(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHATSMITH_DATA_DIR", "/proc/chatsmith-nonexistent")
    monkeypatch.delenv("CHATSMITH_DATABASE_URL")
    monkeypatch.delenv("CHATSMITH_MODEL_DIR")
    assert main(["config", "check", "--no-connect"]) == 2
    out = capsys.readouterr().out
    assert "data directory /proc/chatsmith-nonexistent (SQLite database) cannot be created" in out
    assert "configuration OK" not in out


def test_console_creates_and_migrates_a_new_sqlite_file_named_by_the_url(tmp_path: Path) -> None:
    database = tmp_path / "elsewhere" / "new.db"
    env = {
        **os.environ,
        "CHATSMITH_DATA_DIR": str(tmp_path / "data"),
        "CHATSMITH_DATABASE_URL": f"sqlite:///{database}",
        "CHATSMITH_BASE_MODEL_PATH": "none",
        "PYTHONPATH": str(REPOSITORY),
    }
    done = subprocess.run(
        [sys.executable, "-m", "chatsmith.cli", "console"],
        input="/stats\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "no chatsmith schema" not in done.stderr + done.stdout
    assert database.exists()


def test_train_and_eval_point_at_import_for_a_private_channel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from chatsmith.commands.corpus_input import load_messages
    from tests.trainer.test_importing import slack_zip

    load_messages(slack_zip(tmp_path), "auto")
    err = capsys.readouterr().err
    assert "import one by naming it with `chatsmith import --channel`" in err


def test_irc_actions_keep_who_acted(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sqlalchemy import select

    from db.models import Message

    assert main(["db", "upgrade"]) == 0
    log = cli_env / "acts.log"
    log.write_text("[12:00] <alice> hello\n[12:01] * alice waves\n", encoding="utf-8")
    assert main(["import", "--workspace", "W", "--channel", "C", "--irc-actions", str(log)]) == 0
    engine = create_database_engine(f"sqlite:///{cli_env / 'data' / 'chatsmith.db'}")
    with Session(engine) as session:
        texts = list(session.scalars(select(Message.text).order_by(Message.id)))
    engine.dispose()
    assert texts == ["hello", "alice waves"]


@pytest.mark.slow
def test_train_output_is_the_bar_and_the_summary_only(tmp_path: Path) -> None:
    """With stderr redirected (a pipe), log lines do not interleave with the bar's lines."""
    corpus = tmp_path / "chat.txt"
    corpus.write_text(
        "".join(f"message number {index} of the chat\n" for index in range(200)), encoding="utf-8"
    )
    argv = ["train", "--corpus", str(corpus), "--format", "lines", "--out", str(tmp_path / "out")]
    argv += ["--units", "8", "--embedding", "4", "--seq-len", "8", "--epochs", "1"]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPOSITORY),
        "CUDA_VISIBLE_DEVICES": "",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    done = subprocess.run(
        [sys.executable, "-m", "chatsmith.cli", *argv], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert " INFO " not in done.stderr
    assert ", 1 epoch, " in done.stderr and "epoch 1/1 [" in done.stderr
