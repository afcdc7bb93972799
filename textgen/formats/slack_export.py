"""Slack workspace exports: the zip that Slack's export tool writes, or the folder it unpacks to.

    channels.json              [{"id": "C024BE91L", "name": "general", …}]   (groups.json, mpims.json,
    users.json                 [{"id": "U024BE7LH", "name": "alice", …}]      dms.json likewise, when there)
    general/2024-01-15.json    [{"type": "message", "user": "U024BE7LH", "text": "…", "ts": "1705312800.000100",
    general/2024-01-16.json      "thread_ts": …, "edited": {"ts": …}, "subtype": …}, …]

Day files are read one at a time, so memory stays bounded whatever the export's size; a day file that does
not parse is reported by name and the rest read. Kept: what people wrote, thread replies included (they
are in the day files like any message), as their final text (the export holds edited messages as edited).
Left out: bots and apps, joins and leaves, topic, purpose, name and pin notices, and every other subtype
that is not someone talking.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from textgen.errors import TextgenError
from textgen.formats.records import ChatRecord, ProgressCallback, ReadReport, object_field

# Subtypes that are people talking; all others are notices (channel_join, bot_message, pinned_item, …).
TALK_SUBTYPES = frozenset({None, "thread_broadcast", "me_message", "file_share"})
# The files that list conversations; each entry's folder is its name, or its id for direct messages.
_LISTS = ("channels.json", "groups.json", "mpims.json", "dms.json")
_DAY_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}\.json$")
SLACKBOT = "USLACKBOT"


@dataclass(frozen=True)
class SlackChannel:
    """A conversation of the export: its id, its name, the folder of its day files, and whether it is a
    public channel (not a private channel, a group or a direct message)."""

    id: str
    name: str
    folder: str
    public: bool = True


class _Tree:
    """The export's files, from a zip or a folder, by their path relative to the export's root."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        if path.is_dir():
            root = _export_root([p.relative_to(path).as_posix() for p in path.rglob("*.json")])
            self._root = path / root if root else path
            self.names = sorted(p.relative_to(self._root).as_posix() for p in self._root.rglob("*.json"))
        else:
            try:
                self._zip = zipfile.ZipFile(path)
            except zipfile.BadZipFile:
                raise TextgenError(
                    f"{path} is not a zip file; pass the export's zip or its unpacked folder"
                ) from None
            members = [info.filename for info in self._zip.infolist() if not info.is_dir()]
            self._prefix = _export_root(members)
            self.names = sorted(
                name[len(self._prefix) :]
                for name in members
                if name.startswith(self._prefix) and name.endswith(".json")
            )

    def read(self, name: str) -> bytes:
        if self._zip is not None:
            return self._zip.read(self._prefix + name)
        return (self._root / name).read_bytes()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def _export_root(names: list[str]) -> str:
    """The folder (with its trailing slash, or "") that holds channels.json or users.json."""
    roots = sorted(
        (
            name[: -len(PurePosixPath(name).name)]
            for name in names
            if PurePosixPath(name).name in {*_LISTS, "users.json"}
        ),
        key=len,
    )
    return roots[0] if roots else ""


def is_slack_export(path: Path) -> bool:
    """Whether `path` is a Slack export: a folder or zip with channels.json or users.json at its root."""
    try:
        if path.is_dir():
            return any((path / name).is_file() for name in (*_LISTS, "users.json")) or any(
                (child / "channels.json").is_file() for child in path.iterdir() if child.is_dir()
            )
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            names = [PurePosixPath(name) for name in archive.namelist()]
    except OSError:
        return False
    return any(name.name in {"channels.json", "users.json"} and len(name.parts) <= 2 for name in names)


def _load_list(tree: _Tree, name: str, report: ReadReport) -> list[dict[str, Any]]:
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


def _channels(tree: _Tree, report: ReadReport) -> list[SlackChannel]:
    channels: dict[str, SlackChannel] = {}
    for list_name in _LISTS:
        for entry in _load_list(tree, list_name, report):
            channel_id, name = entry.get("id"), entry.get("name")
            if not isinstance(channel_id, str):
                continue
            name = name if isinstance(name, str) else channel_id
            folder = channel_id if list_name == "dms.json" else name
            channels[folder] = SlackChannel(channel_id, name, folder, list_name == "channels.json")
    # A folder of day files that no list names (a list left out or broken) is still a conversation.
    for name in tree.names:
        parts = name.split("/")
        if len(parts) == 2 and _DAY_FILE.match(parts[1]) and parts[0] not in channels:
            channels[parts[0]] = SlackChannel(parts[0], parts[0], parts[0])
    return sorted(channels.values(), key=lambda channel: (not channel.public, channel.name))


def _users(tree: _Tree, report: ReadReport) -> tuple[dict[str, str], set[str]]:
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

    Args:
        path: The export's zip or unpacked folder.
        report: Collects day files that could not be read (by name) and how many entries were left out.
        progress: Called with (day files read, day files in all).
        channel: A channel's name or id to read alone (a private channel or direct conversation too).

    Raises:
        TextgenError: `path` is no zip or folder, or has no channel `channel`.
    """
    tree = _Tree(path)
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
                    f"{len(private)} private channels and direct conversations left out; import one by naming "
                    "it with --channel"
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
            try:
                messages = json.loads(tree.read(name).decode("utf-8"))
                if not isinstance(messages, list):
                    raise ValueError("not a JSON list of messages")
            except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, OSError) as error:
                report.add_broken(name, _reason(error))
            else:
                yield from _day_records(messages, conversation, user_names, bots, report)
            if progress is not None:
                progress(done, len(days))
    finally:
        tree.close()


def _day_records(
    messages: list[Any], channel: SlackChannel, user_names: dict[str, str], bots: set[str], report: ReadReport
) -> Iterator[ChatRecord]:
    # Edits and deletes recorded as events (some exports have them) apply to messages of the same day.
    by_ts: dict[str, dict[str, Any]] = {}
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("ts"), str):
            report.skipped += 1
            continue
        subtype = message.get("subtype")
        if subtype == "message_changed" and isinstance(message.get("message"), dict):
            changed = message["message"]
            if changed.get("ts") in by_ts:
                by_ts[changed["ts"]] = {
                    **by_ts[changed["ts"]],
                    "text": changed.get("text"),
                    "edited": changed.get("edited"),
                }
            continue
        if subtype == "message_deleted":
            by_ts.pop(message.get("deleted_ts"), None)  # type: ignore[arg-type]
            continue
        by_ts[message["ts"]] = message
    for ts, message in sorted(by_ts.items(), key=lambda item: float(item[0])):
        user = message.get("user")
        text = message.get("text")
        talk = message.get("type", "message") == "message" and message.get("subtype") in TALK_SUBTYPES
        if not talk or message.get("bot_id") or not isinstance(user, str) or user in bots:
            report.skipped += 1
            continue
        if not isinstance(text, str) or not text.strip():
            report.skipped += 1
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
        )


def _slack_time(ts: object) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(ts), UTC)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
