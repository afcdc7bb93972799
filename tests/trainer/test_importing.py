"""`chatsmith import` of every chat format: author ids, times and message ids kept, channels of an export
created under their own ids, imports that add nothing the second time, forget-me and opt-outs reaching
imported members, broken export files named, and one-line refusals."""

from __future__ import annotations

import json
import shutil
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from chatsmith.cli import main
from db.messages import forget_user, record_message
from db.models import Channel, Message, Workspace, utcnow
from db.scopes import Scope, get_or_create_channel, get_or_create_workspace
from tests.schema_template import copy_migrated_schema
from textgen.formats import open_source
from textgen.formats.records import ChatRecord
from trainer import importing
from trainer.corpus import load_scope_corpus
from trainer.errors import TrainerError
from trainer.importing import import_records

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
DATA = Path(__file__).resolve().parents[1] / "data"
FORMATS = DATA / "formats"


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A database in tmp_path, migrated."""
    monkeypatch.setenv("CHATSMITH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHATSMITH_DATABASE_URL", f"sqlite:///{tmp_path / 'data' / 'chatsmith.db'}")
    monkeypatch.setenv("CHATSMITH_MODEL_DIR", str(tmp_path / "models"))
    copy_migrated_schema(f"sqlite:///{tmp_path / 'data' / 'chatsmith.db'}")
    assert main(["db", "upgrade"]) == 0  # at the newest schema already: says so
    return tmp_path


def stored(engine: Engine) -> list[tuple[str, str, str, str, datetime]]:
    """(channel id, message id, author id, text, time) of every stored message, oldest first."""
    with Session(engine) as session:
        rows = session.execute(
            select(
                Channel.external_id,
                Message.platform_message_id,
                Message.author_id,
                Message.text,
                Message.created_at,
            )
            .join(Channel, Message.channel_id == Channel.id)
            .order_by(Message.created_at)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def cli_engine(cli_env: Path) -> Engine:
    from db.engine import create_database_engine

    return create_database_engine(f"sqlite:///{cli_env / 'data' / 'chatsmith.db'}")


def slack_zip(tmp_path: Path, folder: Path | None = None) -> Path:
    target = tmp_path / "acme-export.zip"
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted((folder or FORMATS / "slack-export").rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder or FORMATS / "slack-export").as_posix())
    return target


def test_slack_export_imports_every_channel_with_authors_and_times(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = slack_zip(cli_env)
    assert main(["import", "--workspace", "T0TEAM0001", str(export)]) == 0
    captured = capsys.readouterr()
    assert "guessed format 'slack-export'" in captured.err
    assert (
        "note: acme-export.zip: left out 2 private conversations: D0DM000001 (direct message), "
        "design-private (private channel); import one by naming it with --channel" in captured.err
    )
    assert captured.out.startswith("imported 7 of 7 messages (slack-export format, guessed")
    assert (
        "slack:T0TEAM0001 #C0GENERAL1, #C0RANDOM01;" in captured.out
        and "7 non-messages left out" in captured.out
    )

    engine = cli_engine(cli_env)
    rows = stored(engine)
    assert [(channel, author) for channel, _id, author, _text, _time in rows[:3]] == [
        ("C0GENERAL1", "U0ALICE001"),
        ("C0GENERAL1", "U0BOB00001"),
        ("C0GENERAL1", "U0BOB00001"),
    ]
    assert rows[0][1] == "1705312800.000200" and rows[0][4] == datetime(
        2024, 1, 15, 10, 0, 0, 200, tzinfo=UTC
    )
    with Session(engine) as session:
        workspace = session.scalars(select(Workspace)).one()
        channels = {channel.external_id: channel for channel in session.scalars(select(Channel))}
    assert workspace.platform == "slack"
    assert {key: (channel.name, channel.collecting) for key, channel in channels.items()} == {
        "C0GENERAL1": ("general", True),
        "C0RANDOM01": ("random", True),
    }

    assert main(["import", "--workspace", "T0TEAM0001", "--format", "slack-export", str(export)]) == 0
    assert capsys.readouterr().out.startswith("imported 0 of 7 messages (slack-export format)")
    assert len(stored(engine)) == 7
    engine.dispose()


def test_slack_export_one_channel_and_a_broken_day_file(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = cli_env / "export"
    shutil.copytree(FORMATS / "slack-export", folder)
    (folder / "general" / "2024-01-16.json").write_text("[{", encoding="utf-8")
    assert main(["import", "--workspace", "T", "--channel", "general", str(folder)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("imported 3 of 3 messages") and "slack:T #C0GENERAL1;" in captured.out
    assert "warning: export: could not read general/2024-01-16.json: not JSON" in captured.err

    assert main(["import", "--workspace", "T", "--channel", "ops", str(folder)]) == 2
    guess, error = capsys.readouterr().err.splitlines()
    assert "guessed format 'slack-export'" in guess
    assert error.startswith(
        "error: the export has no channel 'ops'; its channels are general, random, D0DM000001, design-private"
    )


def test_forget_me_and_opt_outs_reach_imported_members(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = slack_zip(cli_env)
    assert main(["import", "--workspace", "T", str(export)]) == 0
    engine = cli_engine(cli_env)
    with Session(engine) as session, session.begin():
        workspace = session.scalars(select(Workspace)).one()
        # The bot sees the same member by the same platform user id.
        result = forget_user(session, workspace.id, "U0BOB00001")
    assert result.deleted_messages == 4
    capsys.readouterr()
    assert main(["import", "--workspace", "T", str(export)]) == 0
    assert "3 were already stored, 4 from opted-out users skipped" in capsys.readouterr().out
    assert {author for _c, _i, author, _t, _time in stored(engine)} == {"U0ALICE001"}
    engine.dispose()


@SQLITE_ONLY
def test_imported_history_is_older_than_what_the_bot_collects(engine: Engine) -> None:
    source = open_source(FORMATS / "slack-export")
    import_records(
        engine, source.records(), platform="slack", workspace="T", channel=None, source_name="export"
    )
    with Session(engine) as session, session.begin():
        channel = session.scalars(select(Channel).where(Channel.external_id == "C0GENERAL1")).one()
        record_message(session, channel, "1790000000.000100", "U0ALICE001", "said today", utcnow())
        scope = Scope(channel.workspace_id)
    with Session(engine) as session:
        corpus = load_scope_corpus(session, scope, min_messages=2, holdout_fraction=0.25)
    # The gate's held-out messages are the newest: today's, then the export's last day.
    assert corpus.holdout == ["I do, posting them after lunch", "said today"]
    assert corpus.train[0] == "morning all, the build is green again"


@SQLITE_ONLY
def test_discord_export_meets_messages_the_bot_collected(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        workspace = get_or_create_workspace(session, "discord", "800000000000000001")
        channel = get_or_create_channel(session, workspace, "800000000000000010")
        channel.collecting = True
        record_message(
            session,
            channel,
            "810000000000000002",
            "900000000000000001",
            "Has anyone tried the new OO gauge points?",
            datetime(2024, 2, 10, 9, 1, 30, tzinfo=UTC),
        )
    source = open_source(FORMATS / "discord-export.json")
    result = import_records(
        engine,
        source.records(),
        platform="discord",
        workspace="800000000000000001",
        channel=None,
        source_name="x",
    )
    assert (result.messages, result.added, result.already_stored) == (3, 2, 1)
    assert result.channels == ("800000000000000010",)
    rows = stored(engine)
    assert [row[2] for row in rows] == ["900000000000000001", "900000000000000002", "900000000000000001"]
    assert rows[1][4] == datetime(2024, 2, 10, 10, 15, tzinfo=UTC)
    with Session(engine) as session:
        edited = session.scalars(
            select(Message).where(Message.platform_message_id == "810000000000000003")
        ).one()
    assert edited.edited_at == datetime(2024, 2, 10, 10, 20, tzinfo=UTC)


def test_irc_logs_keep_their_dates_and_channel(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The dated shape names its channel: no --channel needed.
    assert main(["import", "--workspace", "W", str(DATA / "stripe-irc-head.log")]) == 0
    out = capsys.readouterr().out
    assert (
        out.startswith("imported 1200 of 1200 messages (irc format, guessed") and "console:W #stripe;" in out
    )
    engine = cli_engine(cli_env)
    rows = stored(engine)
    assert rows[0][0] == "stripe" and rows[0][2] == "w1zeman1p"
    assert rows[0][4] == datetime(2019, 9, 4, 22, 44, 46, tzinfo=UTC)
    assert not rows[0][3].startswith("stripe 2019")
    engine.dispose()

    log = cli_env / "plain.log"
    log.write_text("[09:14] <alice> hello\n", encoding="utf-8")
    assert main(["import", "--workspace", "W", str(log)]) == 2
    assert (
        "plain.log does not say which channel its messages are from; pass --channel"
        in capsys.readouterr().err
    )


@SQLITE_ONLY
def test_undated_messages_are_placed_just_before_the_import_in_file_order(engine: Engine) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    records = [ChatRecord(f"message {index}", author_id="a") for index in range(5)]
    import_records(engine, records, platform="console", workspace="W", channel="C", source_name="f", now=now)
    times = [row[4] for row in stored(engine)]
    assert [row[3] for row in stored(engine)] == [f"message {index}" for index in range(5)]
    assert times == sorted(times) and times[-1] < now and times[0] > now - timedelta(hours=1)


@SQLITE_ONLY
def test_import_writes_in_batches_and_counts_repeats(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importing, "BATCH_SIZE", 3)
    records = [ChatRecord(f"m{index}", author_id="a", message_id=f"id{index % 8}") for index in range(10)]
    result = import_records(engine, records, platform="console", workspace="W", channel="C", source_name="f")
    assert (result.messages, result.added, result.already_stored) == (10, 8, 2)
    again = import_records(engine, records, platform="console", workspace="W", channel="C", source_name="f")
    assert (again.added, again.already_stored) == (0, 10)
    with pytest.raises(TrainerError, match="pass --channel"):
        import_records(
            engine, [ChatRecord("x")], platform="console", workspace="W", channel=None, source_name="f"
        )


def test_unknown_shapes_and_empty_exports_are_refused_in_one_line(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["import", "--workspace", "W", "--channel", "C", str(FORMATS / "irc" / "unknown-shape.log")])
        == 2
    )
    error = capsys.readouterr().err
    assert "look like a chat log in a shape chatsmith does not know" in error and error.count("\n") == 1

    empty = cli_env / "empty-export"
    empty.mkdir()
    (empty / "channels.json").write_text('[{"id": "C1", "name": "general"}]', encoding="utf-8")
    assert main(["import", "--workspace", "W", str(empty)]) == 2
    assert "has no messages in format 'slack-export'" in capsys.readouterr().err


def test_train_reads_an_export_and_says_what_it_guessed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from chatsmith.commands.corpus_input import load_messages

    messages = load_messages(slack_zip(tmp_path), "auto")
    assert len(messages) == 7 and messages[-1] == "I do, posting them after lunch"
    assert "guessed format 'slack-export' (7 messages" in capsys.readouterr().err


def test_a_big_discord_export_reads_in_bounded_memory(tmp_path: Path) -> None:
    import tracemalloc

    message = json.loads((FORMATS / "discord-export.json").read_text(encoding="utf-8"))["messages"][1]
    path = tmp_path / "big.json"
    with path.open("w", encoding="utf-8") as handle:
        handle.write('{"guild": {"id": "1", "name": "g"}, "channel": {"id": "2", "name": "c"}, "messages": [')
        for index in range(20000):
            handle.write(("," if index else "") + json.dumps({**message, "id": str(index)}))
        handle.write('], "messageCount": 20000}')
    assert path.stat().st_size > 12_000_000
    tracemalloc.start()
    count = sum(1 for _ in open_source(path).records())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == 20000 and peak < 8_000_000, peak  # json.load would hold all 20,000


def test_a_discord_server_folder_imports_each_channel(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.textgen.test_formats import discord_folder

    folder = discord_folder(cli_env)
    assert main(["import", "--workspace", "800000000000000001", str(folder)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("imported 6 of 6 messages (discord-json format")
    assert "discord:800000000000000001 #800000000000000010, #800000000000000011;" in captured.out
    assert (
        "could not read Model Railway Club - Text Channels - broken [800000000000000012].json" in captured.err
    )


def test_a_bad_ts_is_skipped_with_a_warning_and_the_rest_imported(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = cli_env / "export"
    shutil.copytree(FORMATS / "slack-export", folder)
    (folder / "general" / "2024-01-17.json").write_text(
        json.dumps(
            [
                {"type": "message", "text": "when was this?", "user": "U0ALICE001", "ts": "yesterday"},
                {
                    "type": "message",
                    "text": "still imported",
                    "user": "U0ALICE001",
                    "ts": "1705485600.000100",
                },
            ]
        ),
        encoding="utf-8",
    )
    # An entry of no shape Slack writes is left out like any other that is not someone talking.
    (folder / "random" / "2024-01-17.json").write_text(
        json.dumps(
            [{"type": "message", "subtype": ["odd"], "text": "x", "user": "U0BOB00001", "ts": "1705485700.1"}]
        ),
        encoding="utf-8",
    )
    assert main(["import", "--workspace", "T", "--format", "slack-export", str(folder)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("imported 8 of 8 messages")
    assert captured.err.splitlines() == [
        "note: export: left out 2 private conversations: D0DM000001 (direct message), design-private "
        "(private channel); import one by naming it with --channel (it is stored as private)",
        "warning: export: could not read general/2024-01-17.json: left out 1 of its messages, whose ts is not "
        "a number; the rest was imported",
    ]
    engine = cli_engine(cli_env)
    texts = [row[3] for row in stored(engine)]
    engine.dispose()
    assert texts[-1] == "still imported" and "when was this?" not in texts


def test_a_zip_bomb_is_refused_by_name_and_nothing_is_imported(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = slack_zip(cli_env)
    with zipfile.ZipFile(export, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("random/2024-01-16.json", "[" + " " * (8 << 20) + "]")
    assert main(["import", "--workspace", "T", str(export)]) == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.startswith("error: ") and "random/2024-01-16.json would unpack to 8 MiB from" in error
    assert "nothing was imported" in error
    engine = cli_engine(cli_env)
    assert stored(engine) == []
    engine.dispose()
