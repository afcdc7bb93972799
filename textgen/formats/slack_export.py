"""Slack workspace exports: the zip that Slack's export tool writes, or the folder it unpacks to.

    channels.json              [{"id": "C024BE91L", "name": "general", …}]   (groups.json, mpims.json,
    users.json                 [{"id": "U024BE7LH", "name": "alice", …}]      dms.json likewise, when there)
    general/2024-01-15.json    [{"type": "message", "user": "U024BE7LH", "text": "…", "ts": "1705312800.000100",
    general/2024-01-16.json      "thread_ts": …, "edited": {"ts": …}, "subtype": …}, …]

Which list names a conversation says who can read it: `channels.json` public channels; `groups.json`
private channels, `mpims.json` group direct messages and `dms.json` direct messages, all private. A folder
of day files that no list names is taken as private too. Private conversations are read only when named.

Day files are read one at a time, so memory stays bounded whatever the export's size; a day file that does
not parse, or a message in it whose `ts` is not a number, is reported by name and the rest read. Kept: what
people wrote, thread replies included (they are in the channel's day files like any message, and belong to
its conversation), as their final text (the export holds edited messages as edited). Left out: bots and
apps, joins and leaves, topic, purpose, name and pin notices, and every other subtype that is not someone
talking.
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from textgen.errors import TextgenError
from textgen.formats.export_files import ExportFiles
from textgen.formats.records import (
    ChatRecord,
    Conversation,
    ProgressCallback,
    ReadReport,
    left_out_note,
    object_field,
)

# Subtypes that are people talking; all others are notices (channel_join, bot_message, pinned_item, …).
TALK_SUBTYPES = frozenset({None, "thread_broadcast", "me_message", "file_share"})
# The files that list conversations, and the kind of those they list; each entry's folder is its name, or
# its id for direct messages.
_LISTS = {
    "channels.json": Conversation.PUBLIC_CHANNEL,
    "groups.json": Conversation.PRIVATE_CHANNEL,
    "mpims.json": Conversation.GROUP_DIRECT_MESSAGE,
    "dms.json": Conversation.DIRECT_MESSAGE,
}
_MARKERS = (*_LISTS, "users.json")
_DAY_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}\.json$")
# How Slack names the folders of conversations that are not channels: a direct message by its id, a group
# direct message by its members.
_DIRECT_FOLDER = re.compile(r"^D[A-Z0-9]{4,}$")
_GROUP_FOLDER = re.compile(r"^mpdm-")
SLACKBOT = "USLACKBOT"


@dataclass(frozen=True)
class SlackChannel:
    """A conversation of the export: its id, its name, the folder of its day files, its kind, and whether a
    list of the export names it."""

    id: str
    name: str
    folder: str
    conversation: Conversation = Conversation.PUBLIC_CHANNEL
    listed: bool = True

    @property
    def public(self) -> bool:
        """Whether everyone in the workspace can read it."""
        return not self.conversation.private


def is_slack_export(path: Path) -> bool:
    """Whether `path` is a Slack export: a folder or zip with channels.json or users.json at its root."""
    try:
        if path.is_dir():
            return any((path / name).is_file() for name in _MARKERS) or any(
                (child / "channels.json").is_file() for child in path.iterdir() if child.is_dir()
            )
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            names = [PurePosixPath(name) for name in archive.namelist()]
    except OSError:
        return False
    return any(name.name in {"channels.json", "users.json"} and len(name.parts) <= 2 for name in names)


def _load_list(tree: ExportFiles, name: str, report: ReadReport) -> list[dict[str, Any]]:
    if name not in tree.names:
        return []
    try:
        value = json.loads(tree.read(name).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, OSError) as error:
        report.add_broken(name, _reason(error))
        return []
    if not isinstance(value, list):
        report.add_broken(name, "not a JSON list")
        return []
    return [entry for entry in value if isinstance(entry, dict)]


def _reason(error: BaseException) -> str:
    if isinstance(error, UnicodeDecodeError):
        return "not UTF-8"
    if isinstance(error, json.JSONDecodeError):
        return f"not JSON ({error.msg}, line {error.lineno})"
    return str(error) or type(error).__name__


def _channels(tree: ExportFiles, report: ReadReport) -> list[SlackChannel]:
    channels: dict[str, SlackChannel] = {}
    for list_name, conversation in _LISTS.items():
        for entry in _load_list(tree, list_name, report):
            channel_id, name = entry.get("id"), entry.get("name")
            if not isinstance(channel_id, str):
                continue
            name = name if isinstance(name, str) else channel_id
            folder = channel_id if list_name == "dms.json" else name
            channels[folder] = SlackChannel(channel_id, name, folder, conversation)
    # A folder of day files that no list names (a list left out or broken) is still a conversation, and
    # nothing says everyone could read it.
    for name in tree.names:
        parts = name.split("/")
        if len(parts) == 2 and _DAY_FILE.match(parts[1]) and parts[0] not in channels:
            channels[parts[0]] = SlackChannel(
                parts[0], parts[0], parts[0], _unlisted_kind(parts[0]), listed=False
            )
    return sorted(channels.values(), key=lambda channel: (not channel.public, channel.name))


def _unlisted_kind(folder: str) -> Conversation:
    if _DIRECT_FOLDER.match(folder):
        return Conversation.DIRECT_MESSAGE
    if _GROUP_FOLDER.match(folder):
        return Conversation.GROUP_DIRECT_MESSAGE
    return Conversation.PRIVATE_CHANNEL


def _users(tree: ExportFiles, report: ReadReport) -> tuple[dict[str, str], set[str]]:
    names: dict[str, str] = {}
    bots = {SLACKBOT}
    for entry in _load_list(tree, "users.json", report):
        user_id = entry.get("id")
        if not isinstance(user_id, str):
            continue
        profile = object_field(entry, "profile")
        names[user_id] = (
            profile.get("display_name") or profile.get("real_name") or entry.get("name") or user_id
        )
        if entry.get("is_bot") or entry.get("is_app_user"):
            bots.add(user_id)
    return names, bots


def select_channel(channels: list[SlackChannel], wanted: str) -> SlackChannel:
    """The channel named `wanted` (a name, `#name` or an id).

    Raises:
        TextgenError: No such channel; the message lists some that are there.
    """
    key = wanted.removeprefix("#")
    for channel in channels:
        if key in (channel.name, channel.id):
            return channel
    names = ", ".join(channel.name for channel in channels[:12]) or "none"
    more = f" and {len(channels) - 12} more" if len(channels) > 12 else ""
    raise TextgenError(f"the export has no channel {wanted!r}; its channels are {names}{more}")


def read_slack_export(
    path: Path,
    report: ReadReport,
    progress: ProgressCallback | None = None,
    channel: str | None = None,
) -> Iterator[ChatRecord]:
    """The messages of every public channel of a Slack export (or of `channel` only), a day file at a time.

    Each record carries its conversation's kind (see the module's docstring). Private conversations left
    out are named in one note of `report.notes`.

    Args:
        path: The export's zip or unpacked folder.
        report: Collects day files that could not be read (by name) and how many entries were left out.
        progress: Called with (day files read, day files in all).
        channel: A channel's name or id to read alone (a private channel or direct conversation too).

    Raises:
        TextgenError: `path` is no zip or folder, a member of the zip is over a cap, or the export has no
            channel `channel`.
    """
    tree = ExportFiles(path, _MARKERS)
    try:
        channels = _channels(tree, report)
        if channel is not None:
            channels = [select_channel(channels, channel)]
        else:
            # Exports of paid plans hold private channels and direct messages, which nobody opted in to a
            # bot that learns from what it reads: those are imported only when named.
            private = [conversation for conversation in channels if not conversation.public]
            channels = [conversation for conversation in channels if conversation.public]
            if private:
                report.notes.append(
                    left_out_note(
                        [
                            (
                                channel.name,
                                channel.conversation if channel.listed else "a folder no list names",
                            )
                            for channel in private
                        ]
                    )
                )
        user_names, bots = _users(tree, report)
        days_of: dict[str, list[str]] = {}
        for name in tree.names:
            folder, _, day = name.rpartition("/")
            if _DAY_FILE.match(day):
                days_of.setdefault(folder, []).append(name)
        days = [
            (conversation, name) for conversation in channels for name in days_of.get(conversation.folder, [])
        ]
        for done, (conversation, name) in enumerate(days, start=1):
            yield from _read_day(tree, name, conversation, user_names, bots, report)
            if progress is not None:
                progress(done, len(days))
    finally:
        tree.close()


def _read_day(
    tree: ExportFiles,
    name: str,
    channel: SlackChannel,
    user_names: dict[str, str],
    bots: set[str],
    report: ReadReport,
) -> list[ChatRecord]:
    """The records of one day file; a file that does not parse, or messages whose `ts` is not a number, are
    reported by name."""
    try:
        messages = json.loads(tree.read(name).decode("utf-8"))
        if not isinstance(messages, list):
            raise ValueError("not a JSON list of messages")
    except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, OSError) as error:
        report.add_broken(name, _reason(error))
        return []
    day = _Day(report)
    records = list(day.records(messages, channel, user_names, bots))
    if day.bad_times:
        report.add_broken(name, f"left out {day.bad_times} of its messages, whose ts is not a number")
    return records


class _Day:
    """One day file's messages, with its edit and delete events applied; counts those whose `ts` is not a
    number."""

    def __init__(self, report: ReadReport) -> None:
        self.report = report
        self.bad_times = 0

    def records(
        self, messages: list[Any], channel: SlackChannel, user_names: dict[str, str], bots: set[str]
    ) -> Iterator[ChatRecord]:
        by_ts = self._latest(messages)
        for ts, message in sorted(by_ts.items(), key=lambda item: float(item[0])):
            user = message.get("user")
            text = message.get("text")
            subtype = message.get("subtype")
            talk = message.get("type", "message") == "message" and (
                subtype is None or isinstance(subtype, str)
            )
            if not talk or subtype not in TALK_SUBTYPES or message.get("bot_id"):
                self.report.skipped += 1
                continue
            if not isinstance(user, str) or user in bots or not isinstance(text, str) or not text.strip():
                self.report.skipped += 1
                continue
            edited = object_field(message, "edited")
            profile = object_field(message, "user_profile")
            yield ChatRecord(
                text,
                author_id=user,
                author_name=user_names.get(user)
                or profile.get("display_name")
                or profile.get("real_name")
                or user,
                time=_slack_time(ts),
                channel_id=channel.id,
                channel_name=channel.name,
                message_id=ts,
                edited_at=_slack_time(edited.get("ts")),
                conversation=channel.conversation,
            )

    def _latest(self, messages: list[Any]) -> dict[str, dict[str, Any]]:
        # Edits and deletes recorded as events (some exports have them) apply to messages of the same day.
        by_ts: dict[str, dict[str, Any]] = {}
        for message in messages:
            if not isinstance(message, dict) or not isinstance(message.get("ts"), str):
                self.report.skipped += 1
                continue
            if _slack_time(message["ts"]) is None:
                self.bad_times += 1
                continue
            subtype = message.get("subtype")
            changed = message.get("message")
            if subtype == "message_changed" and isinstance(changed, dict):
                if isinstance(changed.get("ts"), str) and changed["ts"] in by_ts:
                    by_ts[changed["ts"]] = {
                        **by_ts[changed["ts"]],
                        "text": changed.get("text"),
                        "edited": changed.get("edited"),
                    }
                continue
            if subtype == "message_deleted":
                if isinstance(message.get("deleted_ts"), str):
                    by_ts.pop(message["deleted_ts"], None)
                continue
            by_ts[message["ts"]] = message
        return by_ts


def _slack_time(ts: object) -> datetime | None:
    try:
        seconds = float(ts)  # type: ignore[arg-type]
        return datetime.fromtimestamp(seconds, UTC) if math.isfinite(seconds) else None
    except (TypeError, ValueError, OverflowError, OSError):
        return None
