"""Who could read what an import brings in: private Slack channels, direct messages, unlisted folders, and
Discord's direct messages and private threads are stored private and never reach the workspace corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from chatsmith.cli import main
from db.messages import corpus_for_scope
from db.models import Channel, Workspace
from db.scopes import Scope, get_or_create_channel, get_or_create_workspace
from tests.trainer.test_importing import FORMATS, cli_engine, cli_env  # noqa: F401 (a fixture)
from textgen.formats import open_source
from textgen.formats.records import ChatRecord, Conversation
from trainer.importing import import_records

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
EXPORT = FORMATS / "slack-private-export"
SECRETS = ("bob salary is 123k", "layoffs friday")


def corpora(engine: Engine) -> tuple[list[str], dict[str, list[str]], dict[str, bool]]:
    """The workspace corpus, each channel's corpus, and which channels are stored private."""
    with Session(engine) as session:
        workspace = session.scalars(select(Workspace)).one()
        channels = list(session.scalars(select(Channel)))
        return (
            corpus_for_scope(session, Scope(workspace.id)),
            {channel.external_id: corpus_for_scope(session, Scope.of(channel)) for channel in channels},
            {channel.external_id: channel.private for channel in channels},
        )


def test_a_private_slack_channel_named_on_import_never_feeds_the_workspace_model(
    cli_env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["import", "--workspace", "T", str(EXPORT)]) == 0
    assert main(["import", "--workspace", "T", "--channel", "hr-secret", str(EXPORT)]) == 0
    output = capsys.readouterr().out
    engine = cli_engine(cli_env)
    workspace, channels, private = corpora(engine)
    engine.dispose()
    assert workspace == ["the new coffee machine works", "finally, good coffee"]
    assert not any(secret in text for secret in SECRETS for text in workspace)
    assert private["G0HRSECRET"] and not private["C0GENERAL1"]
    # The private channel's own model still learns from it, and answers only there.
    assert channels["G0HRSECRET"] == list(SECRETS)
    assert output.endswith(
        "collection is on; private, so training only their own channel model: #G0HRSECRET\n"
    )


def test_a_slack_folder_no_list_names_is_private_and_imported_only_when_named(
    cli_env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["import", "--workspace", "T", str(EXPORT)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("imported 2 of 2 messages") and "slack:T #C0GENERAL1;" in captured.out
    notes = [line for line in captured.err.splitlines() if line.startswith("note:")]
    assert notes == [
        "note: slack-private-export: left out 2 private conversations: D0DM1 (a folder no list names), "
        "hr-secret (private channel); import one by naming it with --channel (it is stored as private)"
    ]
    assert main(["import", "--workspace", "T", "--channel", "D0DM1", str(EXPORT)]) == 0
    engine = cli_engine(cli_env)
    workspace, channels, private = corpora(engine)
    engine.dispose()
    assert private == {"C0GENERAL1": False, "D0DM1": True}
    assert channels["D0DM1"] == ["can we talk after work?"] and "can we talk after work?" not in workspace


@SQLITE_ONLY
def test_an_import_never_makes_a_private_channel_public(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        workspace = get_or_create_workspace(session, "slack", "T")
        get_or_create_channel(session, workspace, "G0HRSECRET", "hr-secret").private = True
    # A log says nothing of who could read it.
    import_records(
        engine,
        [ChatRecord("bob salary is 123k", author_id="U1")],
        platform="slack",
        workspace="T",
        channel="G0HRSECRET",
        source_name="hr.log",
    )
    result = import_records(
        engine,
        [ChatRecord("off the record", author_id="U1")],
        platform="slack",
        workspace="T",
        channel="C0LOG",
        source_name="log",
        private=True,
    )
    assert result.private_channels == ("C0LOG",)
    workspace_corpus, _channels, private = corpora(engine)
    assert private == {"G0HRSECRET": True, "C0LOG": True} and workspace_corpus == []


def discord_export(folder: Path, name: str, guild_id: str, channel: dict[str, str]) -> Path:
    """The fixture's Discord export with another guild and channel."""
    document = json.loads((FORMATS / "discord-export.json").read_text(encoding="utf-8"))
    document["guild"]["id"] = guild_id
    document["channel"] = channel
    for message in document["messages"]:
        message["id"] = channel["id"] + message["id"][-3:]
    path = folder / f"{name}.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("guild_id", "channel", "conversation", "thread_of"),
    [
        ("1", {"id": "10", "type": "GuildTextChat", "name": "general"}, Conversation.PUBLIC_CHANNEL, None),
        ("0", {"id": "20", "type": "DirectTextChat", "name": "alice"}, Conversation.DIRECT_MESSAGE, None),
        (
            "0",
            {"id": "21", "type": "DirectGroupTextChat", "name": "a, b"},
            Conversation.GROUP_DIRECT_MESSAGE,
            None,
        ),
        ("0", {"id": "22", "name": "no type"}, Conversation.DIRECT_MESSAGE, None),
        (
            "1",
            {"id": "30", "type": "GuildPrivateThread", "categoryId": "10", "name": "plans"},
            Conversation.PRIVATE_THREAD,
            "10",
        ),
        (
            "1",
            {"id": "31", "type": "GuildPublicThread", "categoryId": "10", "name": "q"},
            Conversation.PUBLIC_THREAD,
            "10",
        ),
        ("1", {"id": "40", "type": "GuildForum", "name": "x"}, Conversation.PUBLIC_CHANNEL, None),
        ("1", {"id": "41", "type": "Unheard", "name": "x"}, Conversation.PRIVATE_CHANNEL, None),
    ],
)
def test_discord_exports_say_what_kind_of_conversation_they_hold(
    tmp_path: Path, guild_id: str, channel: dict[str, str], conversation: Conversation, thread_of: str | None
) -> None:
    path = discord_export(tmp_path, "export", guild_id, channel)
    records = list(open_source(path).records())
    assert {(record.conversation, record.thread_of) for record in records} == {(conversation, thread_of)}


@SQLITE_ONLY
def test_discord_direct_messages_and_private_threads_are_stored_private(
    engine: Engine, tmp_path: Path
) -> None:
    with Session(engine) as session, session.begin():
        workspace = get_or_create_workspace(session, "discord", "1")
        get_or_create_channel(session, workspace, "15", "staff").private = True
    exports = [
        discord_export(tmp_path, "general", "1", {"id": "10", "type": "GuildTextChat", "name": "general"}),
        discord_export(tmp_path, "dm", "0", {"id": "20", "type": "DirectTextChat", "name": "alice"}),
        discord_export(
            tmp_path,
            "plans",
            "1",
            {"id": "30", "type": "GuildPrivateThread", "categoryId": "10", "name": "plans"},
        ),
        # A public thread of a private channel is read by that channel's members only.
        discord_export(
            tmp_path,
            "staff-q",
            "1",
            {"id": "31", "type": "GuildPublicThread", "categoryId": "15", "name": "q"},
        ),
        discord_export(
            tmp_path,
            "general-q",
            "1",
            {"id": "32", "type": "GuildPublicThread", "categoryId": "10", "name": "q2"},
        ),
    ]
    for path in exports:
        import_records(
            engine,
            open_source(path).records(),
            platform="discord",
            workspace="1",
            channel=None,
            source_name=path.name,
        )
    workspace_corpus, channels, private = corpora(engine)
    assert private == {"15": True, "10": False, "20": True, "30": True, "31": True, "32": False}
    assert len(workspace_corpus) == 6 == len(channels["10"]) + len(channels["32"])


def test_a_folder_of_discord_exports_leaves_private_conversations_out_unless_named(tmp_path: Path) -> None:
    folder = tmp_path / "server"
    folder.mkdir()
    discord_export(folder, "general", "1", {"id": "10", "type": "GuildTextChat", "name": "general"})
    discord_export(folder, "dm", "0", {"id": "20", "type": "DirectTextChat", "name": "alice"})
    source = open_source(folder)
    assert {record.channel_id for record in source.records()} == {"10"}
    assert source.report.notes == [
        "left out 1 private conversation: alice (direct message); import one by naming it with --channel "
        "(it is stored as private)"
    ]
    named = open_source(folder, channel="alice")
    assert {(record.channel_id, record.private) for record in named.records()} == {("20", True)}


def test_a_discord_csv_of_direct_messages_is_private(tmp_path: Path) -> None:
    path = tmp_path / "Direct Messages - Private - alice [20].csv"
    path.write_bytes((FORMATS / "discord-export.csv").read_bytes())
    assert {record.conversation for record in open_source(path).records()} == {Conversation.DIRECT_MESSAGE}
    assert {record.conversation for record in open_source(FORMATS / "discord-export.csv").records()} == {None}
