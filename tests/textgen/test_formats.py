"""Chat formats: every IRC shape, Slack exports (folder and zip), DiscordChatExporter JSON and CSV, and what
`--format auto` guesses or refuses. The fixtures under tests/data/formats are written by hand from each
format's documentation."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from textgen.corpus import load_corpus, parse_corpus
from textgen.errors import TextgenError
from textgen.formats import export_files, json_stream, open_source
from textgen.formats.irc import ACTION, MESSAGE, SYSTEM, UNKNOWN, date_from_file_name, parse_irc_line
from textgen.formats.records import Conversation

DATA = Path(__file__).resolve().parents[1] / "data"
FORMATS = DATA / "formats"
IRC = FORMATS / "irc"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("line", "kind", "nick", "text"),
    [
        ("[09:14] <alice> hello there", MESSAGE, "alice", "hello there"),
        ("[09:14:02] <@alice> hello", MESSAGE, "alice", "hello"),
        ("[09:14] <alice>\thello", MESSAGE, "alice", "hello"),
        (
            "stripe 2019-09-04 [22:45:20] <apeksha> yeah, that makes sense ",
            MESSAGE,
            "apeksha",
            "yeah, that makes sense",
        ),
        ("2019-09-04 [22:45:20] <apeksha> yes", MESSAGE, "apeksha", "yes"),
        ("[2019-09-04 22:45:20] <bob> hi", MESSAGE, "bob", "hi"),
        ("22:45 < bob> aligned nick", MESSAGE, "bob", "aligned nick"),
        ("2019-09-04 22:45:20\t@alice\tweechat line", MESSAGE, "alice", "weechat line"),
        ("[09:15] * alice waves", ACTION, "alice", "waves"),
        ("22:46  * alice waves", ACTION, "alice", "waves"),
        ("2019-09-04 22:46:02\t *\talice waves", ACTION, "alice", "waves"),
        ("=== bob is now known as bobby", SYSTEM, None, ""),
        ("22:44 -!- alice [~a@host] has joined #trains", SYSTEM, None, ""),
        ("[22:44:46] *** Joins: alice (~alice@host)", SYSTEM, None, ""),
        ("[22:44] * Parts: alice", SYSTEM, None, ""),
        ("[22:44] * bob is now known as bobby", SYSTEM, None, ""),
        ("2019-09-04 22:44:46\t-->\talice has joined #trains", SYSTEM, None, ""),
        ("2019-09-04 22:44:46\t<--\talice has quit", SYSTEM, None, ""),
        ("--- Day changed Thu Sep 05 2019", SYSTEM, None, ""),
        ("just some words", UNKNOWN, None, ""),
        ("12:30 is lunch time", UNKNOWN, None, ""),
    ],
)
def test_irc_line_shapes(line: str, kind: str, nick: str | None, text: str) -> None:
    parsed = parse_irc_line(line)
    assert (parsed.kind, parsed.nick, parsed.text) == (kind, nick, text)


def test_irc_date_lines_and_file_names_give_dates() -> None:
    assert parse_irc_line("--- Day changed Thu Sep 05 2019").date == at("2019-09-05").date()
    assert parse_irc_line("--- Log opened Wed Sep 04 22:44:46 2019").date == at("2019-09-04").date()
    assert date_from_file_name("2019-09-04.log") == at("2019-09-04").date()
    assert date_from_file_name("libera_#trains_20190904.log") == at("2019-09-04").date()
    assert date_from_file_name("chat.log") is None


@pytest.mark.parametrize(
    ("name", "times"),
    [
        ("irssi.log", ["2019-09-04 22:45", "2019-09-04 22:45", "2019-09-05 00:02"]),
        ("weechat.log", ["2019-09-04 22:45:20", "2019-09-04 22:45:31", "2019-09-05 00:02"]),
        # ZNC writes a file a day and no date in its lines: the date is the file's name.
        ("2019-09-04.log", ["2019-09-04 22:45:20", "2019-09-04 22:45:31", "2019-09-04 22:51:12"]),
        ("bracketed-date.log", ["2019-09-04 22:45:20", "2019-09-04 22:45:31"]),
    ],
)
def test_irc_layouts_keep_messages_authors_and_dates(name: str, times: list[str]) -> None:
    corpus = load_corpus(IRC / name)
    assert corpus.format == "irc" and corpus.guessed
    assert corpus.messages[:2] == ["evening all", "hi alice, how did the points go?"]
    assert corpus.authors[:2] == ["alice", "bob"]
    assert [record.time for record in corpus.records] == [at(time) for time in times]
    assert not any("waves" in message or "joined" in message for message in corpus.messages)


def test_irc_actions_are_kept_on_request() -> None:
    corpus = load_corpus(IRC / "tab-after-nick.log", "irc", include_actions=True)
    assert corpus.messages == [
        "evening all",
        "hi alice, how did the points go?",
        "alice waves",
        "short stamps too",
    ]
    assert corpus.authors == ["alice", "bob", "alice", "carol"]
    # A log without dates gives messages without times; the importer places them.
    assert all(record.time is None for record in corpus.records)


def test_the_dated_stripe_log_is_guessed_as_irc_with_times() -> None:
    corpus = load_corpus(DATA / "stripe-irc-head.log")
    assert corpus.format == "irc" and len(corpus.messages) == 1200
    first = corpus.records[0]
    assert first.author_id == "w1zeman1p" and first.time == at("2019-09-04 22:44:46")
    assert first.channel_name == "stripe" and not first.text.startswith("stripe")


def test_slack_export_folder_keeps_talk_threads_and_edits() -> None:
    corpus = load_corpus(FORMATS / "slack-export")
    assert corpus.format == "slack-export" and corpus.guessed
    assert corpus.messages == [
        "morning all, the build is green again",
        "nice, what was it?",  # thread replies are messages like any other
        "a flaky test &amp; a stale cache",  # the export holds an edited message's final text
        "lunch at noon?",
        "is hungry",
        "who has the release notes?",
        "I do, posting them after lunch",
    ]
    first = corpus.records[0]
    assert (first.author_id, first.author_name, first.channel_id, first.channel_name) == (
        "U0ALICE001",
        "alice",
        "C0GENERAL1",
        "general",
    )
    assert first.message_id == "1705312800.000200" and first.time == at("2024-01-15 10:00:00.000200")
    assert corpus.records[2].edited_at == at("2024-01-15 10:03:00")
    assert corpus.records[1].author_name == "Bob Stone"  # no display name: the real name
    # Joins, leaves, topics, pins, bots (by subtype, bot id or bot user) and empty file shares are left out.
    source = open_source(FORMATS / "slack-export")
    assert len(list(source.records())) == 7 and source.report.skipped == 7


def make_zip(folder: Path, target: Path, top: str = "") -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, top + path.relative_to(folder).as_posix())
    return target


@pytest.mark.parametrize("top", ["", "Acme Slack export Jan 15 2024 - Jan 16 2024/"])
def test_slack_export_zip_reads_like_its_folder(tmp_path: Path, top: str) -> None:
    archive = make_zip(FORMATS / "slack-export", tmp_path / "export.zip", top)
    corpus = load_corpus(archive)
    assert corpus.format == "slack-export" and len(corpus.messages) == 7
    random = load_corpus(archive, "slack-export", channel="#random")
    assert random.messages == ["lunch at noon?", "is hungry"]
    assert {record.channel_id for record in random.records} == {"C0RANDOM01"}


def test_slack_export_unknown_channel_names_the_ones_there() -> None:
    with pytest.raises(
        TextgenError, match="no channel 'ops'; its channels are general, random, D0DM000001, design-private"
    ):
        load_corpus(FORMATS / "slack-export", channel="ops")


def test_slack_export_reports_a_broken_day_file_and_reads_the_rest(tmp_path: Path) -> None:
    export = tmp_path / "export"
    shutil.copytree(FORMATS / "slack-export", export)
    (export / "random" / "2024-01-16.json").write_text(
        '[{"type": "message", "text": "cut off', encoding="utf-8"
    )
    (export / "general" / "2024-01-17.json").write_bytes(b'[{"text": "caf\xe9", "ts": "1"}]')
    source = open_source(make_zip(export, tmp_path / "export.zip"))
    progress: list[tuple[int, int]] = []
    records = list(source.records(lambda done, total: progress.append((done, total))))
    assert len(records) == 7
    assert source.report.broken == [
        "general/2024-01-17.json: not UTF-8",
        "random/2024-01-16.json: not JSON (Unterminated string starting at, line 1)",
    ]
    assert progress[-1] == (5, 5) and len(progress) == 5


def test_discord_json_keeps_people_talking() -> None:
    corpus = load_corpus(FORMATS / "discord-export.json")
    assert corpus.format == "discord-json" and corpus.guessed
    assert corpus.messages == [
        "Has anyone tried the new OO gauge points?",
        'Yes, they click in nicely — but the frog is "live".',
        "That's my layout so far.\nStill needs ballast.",
    ]
    reply = corpus.records[1]
    assert (reply.author_id, reply.author_name, reply.message_id) == (
        "900000000000000002",
        "Dora",
        "810000000000000003",
    )
    assert reply.time == at("2024-02-10 10:15") and reply.edited_at == at("2024-02-10 10:20")
    assert {(record.channel_id, record.channel_name) for record in corpus.records} == {
        ("800000000000000010", "general")
    }
    with pytest.raises(TextgenError, match="holds channel #general"):
        load_corpus(FORMATS / "discord-export.json", channel="random")
    assert len(load_corpus(FORMATS / "discord-export.json", channel="general").messages) == 3


def test_discord_json_is_read_as_a_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(json_stream, "_CHUNK", 7)  # every value crosses a chunk boundary
    document = (FORMATS / "discord-export.json").read_text(encoding="utf-8")
    stream = json_stream.JsonObjectStream(io.StringIO(document), "messages")
    assert list(stream.items()) == json.loads(document)["messages"]
    assert stream.fields["messageCount"] == 7 and stream.fields["guild"]["name"] == "Model Railway Club"


def test_a_cut_discord_json_keeps_what_came_before_the_cut(tmp_path: Path) -> None:
    document = (FORMATS / "discord-export.json").read_text(encoding="utf-8")
    cut = tmp_path / "cut.json"
    cut.write_text(document[: document.index('"id": "810000000000000004"')], encoding="utf-8")
    corpus = load_corpus(cut)
    assert len(corpus.messages) == 2
    assert len(corpus.broken) == 1 and corpus.broken[0].startswith("cut.json: cut off after 3 messages")
    # Cut before its first message, it is no export at all.
    cut.write_text(document[:300], encoding="utf-8")
    with pytest.raises(TextgenError, match="is not a whole DiscordChatExporter JSON export") as error:
        load_corpus(cut, "discord-json")
    assert "\n" not in str(error.value)


def discord_folder(tmp_path: Path) -> Path:
    """A server exported into a folder: #general, #trains, and a file DiscordChatExporter left broken."""
    folder = tmp_path / "Model Railway Club"
    folder.mkdir()
    document = (FORMATS / "discord-export.json").read_text(encoding="utf-8")
    (folder / "Model Railway Club - Text Channels - general [800000000000000010].json").write_text(
        document, encoding="utf-8"
    )
    trains = document.replace('"800000000000000010"', '"800000000000000011"').replace('"general"', '"trains"')
    (folder / "Model Railway Club - Text Channels - trains [800000000000000011].json").write_text(
        trains.replace('"id": "81', '"id": "71'), encoding="utf-8"
    )
    (folder / "Model Railway Club - Text Channels - broken [800000000000000012].json").write_text(
        document[:300], encoding="utf-8"
    )
    (folder / "notes.json").write_text('{"not": "an export"}', encoding="utf-8")
    return folder


def test_a_folder_of_discord_exports_reads_every_channel_and_names_a_broken_file(tmp_path: Path) -> None:
    folder = discord_folder(tmp_path)
    source = open_source(folder)
    assert source.format == "discord-json" and source.counts_files
    progress: list[tuple[int, int]] = []
    records = list(source.records(lambda done, total: progress.append((done, total))))
    assert [record.channel_name for record in records] == ["general"] * 3 + ["trains"] * 3
    assert len(source.report.broken) == 1
    assert source.report.broken[0].startswith(
        "Model Railway Club - Text Channels - broken [800000000000000012].json: "
    )
    assert progress[-1] == (3, 3)
    trains = load_corpus(folder, channel="#trains")
    assert {record.channel_id for record in trains.records} == {"800000000000000011"}


def test_discord_csv_keeps_authors_and_times() -> None:
    corpus = load_corpus(FORMATS / "discord-export.csv")
    assert corpus.format == "discord-csv" and corpus.guessed
    assert corpus.messages[2] == "That's my layout so far.\nStill needs ballast."
    assert corpus.authors == ["900000000000000001", "900000000000000002", "900000000000000001"]
    # ISO dates, and the locale dates of older exports.
    assert [record.time for record in corpus.records] == [
        at("2024-02-10 09:01:30.512"),
        at("2024-02-10 10:15"),
        at("2024-02-10 10:21"),
    ]


def test_auto_refuses_a_log_of_unknown_shape_in_one_line() -> None:
    with pytest.raises(TextgenError, match="5 of its first 5 lines look like a chat log in a shape") as error:
        load_corpus(IRC / "unknown-shape.log")
    assert "--format lines" in str(error.value) and "\n" not in str(error.value)
    # Asked for explicitly, the raw lines are what the user wants.
    assert len(load_corpus(IRC / "unknown-shape.log", "lines").messages) == 5


def test_auto_refuses_a_half_known_log(tmp_path: Path) -> None:
    half = (IRC / "unknown-shape.log").read_text(encoding="utf-8") + "[22:49] <alice> one known line\n"
    with pytest.raises(TextgenError, match="look like a chat log"):
        load_corpus(_write(tmp_path / "half.log", half))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"users": [1, 2]}', "a JSON document of no format chatsmith reads"),
        ('[{"type": "message", "text": "hi", "ts": "1705312800.000200"}]', "one day of a Slack export"),
    ],
)
def test_auto_refuses_json_it_cannot_read(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(TextgenError, match=message):
        load_corpus(_write(tmp_path / "x.json", content))


def test_folders_and_zips_that_are_not_slack_exports_are_refused(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    with pytest.raises(TextgenError, match="is a directory but not a Slack export"):
        load_corpus(tmp_path / "folder")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(TextgenError, match="is a zip file but not a Slack export"):
        load_corpus(tmp_path / "other.zip")


def test_parse_corpus_reads_text_formats_only() -> None:
    assert parse_corpus("[09:14] <a> hi\n[09:15] * a waves\n", "irc").messages == ["hi"]
    with pytest.raises(TextgenError, match="read from a file or folder"):
        parse_corpus("{}", "discord-json")


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_discord_csv_that_is_not_utf8_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(
        b'"AuthorID","Author","Date","Content","Attachments","Reactions"\n"1","a","","caf\xe9","",""\n'
    )
    with pytest.raises(TextgenError, match=r"is not UTF-8 \(bad byte 0xe9\)"):
        load_corpus(path, "discord-csv")
    with pytest.raises(TextgenError, match="is not UTF-8"):
        load_corpus(path)  # found while guessing


def test_a_log_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "chat.log"
    path.write_bytes(b"[09:14] <alice> ok\n[09:15] <bob> caf\xe9\n")
    with pytest.raises(TextgenError, match=r"not UTF-8 \(bad byte 0xe9 on line 2\)"):
        load_corpus(path, "irc")


def test_training_needs_only_the_texts() -> None:
    corpus = load_corpus(DATA / "stripe-irc-head.log", keep_records=False)
    assert len(corpus.messages) == len(corpus.authors) == 1200 and corpus.records == []
    assert corpus.messages == load_corpus(DATA / "stripe-irc-head.log").messages


def test_slack_private_channels_and_direct_messages_are_read_only_when_named() -> None:
    source = open_source(FORMATS / "slack-export")
    texts = [record.text for record in source.records()]
    assert "draft logo attached, thoughts?" not in texts and "are you coming on friday?" not in texts
    assert source.report.notes == [
        "left out 2 private conversations: D0DM000001 (direct message), design-private (private channel); "
        "import one by naming it with --channel (it is stored as private)"
    ]
    private = load_corpus(FORMATS / "slack-export", channel="design-private")
    assert private.messages == ["draft logo attached, thoughts?"] and private.notes == []
    assert private.records[0].channel_id == "G0DESIGN01"
    assert private.records[0].conversation == Conversation.PRIVATE_CHANNEL and private.records[0].private
    direct = load_corpus(FORMATS / "slack-export", channel="D0DM000001")
    assert direct.messages == ["are you coming on friday?"]
    assert direct.records[0].conversation == Conversation.DIRECT_MESSAGE


def test_slack_edit_and_delete_events_apply_to_their_day(tmp_path: Path) -> None:
    export = tmp_path / "export"
    (export / "general").mkdir(parents=True)
    (export / "channels.json").write_text('[{"id": "C1", "name": "general"}]', encoding="utf-8")
    day = [
        {"type": "message", "user": "U1", "text": "teh first draft", "ts": "1705312800.000100"},
        {"type": "message", "user": "U2", "text": "oops, wrong channel", "ts": "1705312860.000200"},
        {
            "type": "message",
            "subtype": "message_changed",
            "ts": "1705312900.000300",
            "message": {
                "user": "U1",
                "text": "the first draft",
                "ts": "1705312800.000100",
                "edited": {"ts": "1705312900.000300"},
            },
        },
        {
            "type": "message",
            "subtype": "message_deleted",
            "ts": "1705312950.000400",
            "deleted_ts": "1705312860.000200",
        },
    ]
    (export / "general" / "2024-01-15.json").write_text(json.dumps(day), encoding="utf-8")
    corpus = load_corpus(export)
    assert corpus.messages == ["the first draft"]
    assert corpus.records[0].edited_at == datetime.fromtimestamp(1705312900.0003, UTC)


class CountingReader(io.StringIO):
    """A text file that counts how often and how much it was read."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.reads = 0
        self.chars = 0

    def read(self, size: int | None = -1, /) -> str:
        chunk = super().read(size)
        self.reads += 1
        self.chars += len(chunk)
        return chunk


def test_a_broken_discord_json_is_reported_where_it_breaks_without_reading_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(json_stream, "_CHUNK", 1024)
    good = json.dumps({"id": "1", "content": "fine"})
    head = (
        '{"guild": {"id": "1"}, "channel": {"id": "2"}, "messages": [' + good + ', {"id": "2", "content": x}'
    )
    document = head + ("," + good) * 50_000 + "]}"
    handle = CountingReader(document)
    stream = json_stream.JsonObjectStream(handle, "messages")
    items = stream.items()
    assert next(items) == {"id": "1", "content": "fine"}
    with pytest.raises(json_stream.JsonStreamError, match=f"Expecting value at character {head.index('x}')}"):
        next(items)
    assert handle.chars <= 4 * 1024  # not the 2 MB after the break


def test_a_long_value_cut_by_the_end_of_the_file_is_parsed_a_few_times_not_once_a_chunk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(json_stream, "_CHUNK", 1024)
    document = '{"guild": {}, "messages": [{"id": "1", "content": "' + "a" * 4_000_000
    start = document.index('"a')
    handle = CountingReader(document)
    with pytest.raises(json_stream.JsonStreamError) as error:
        list(json_stream.JsonObjectStream(handle, "messages").items())
    assert handle.chars == len(document) and handle.reads < 20  # doubling: 12 reads, not 4,000
    assert str(error.value) == f"Unterminated string starting at character {start}"

    monkeypatch.setattr(json_stream, "MAX_VALUE_CHARS", 100_000)
    handle = CountingReader(document)
    with pytest.raises(json_stream.JsonStreamError, match="a value over 0 MiB characters"):
        list(json_stream.JsonObjectStream(handle, "messages").items())
    assert handle.chars < 300_000


def test_auto_refuses_lines_that_are_not_words_in_one_line(tmp_path: Path) -> None:
    hashes = "\n".join(hashlib.sha1(str(index).encode()).hexdigest() for index in range(200)) + "\n"
    path = _write(tmp_path / "ids.txt", hashes)
    with pytest.raises(TextgenError, match=r"\d+ of its first 200 lines are not words") as error:
        load_corpus(path)
    assert "--format lines" in str(error.value) and "\n" not in str(error.value)
    assert len(load_corpus(path, "lines").messages) == 200
    # Chat with some numbers, links and emoji in it is chat.
    chat = ["ok", "+1", "👍", "12:30 is lunch time?", "see https://example.com/a1b2", "今日は2024年です"] * 20
    assert load_corpus(_write(tmp_path / "chat.txt", "\n".join(chat) + "\n")).format == "lines"


def test_zip_members_over_the_size_cap_are_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = make_zip(FORMATS / "slack-export", tmp_path / "export.zip")
    monkeypatch.setattr(export_files, "MAX_MEMBER_BYTES", 1000)
    source = open_source(archive)
    with pytest.raises(
        TextgenError, match="general/2024-01-15.json would unpack to 0 MiB, over the 0 MiB"
    ) as error:
        next(source.records())
    assert "nothing was imported" in str(error.value)
