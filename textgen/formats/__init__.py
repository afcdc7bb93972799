"""Chat file formats: IRC logs of every common shape, Slack workspace exports, DiscordChatExporter's JSON
and CSV, JSON lines, one message per line, and plain text; detecting which one a file is in.

Modules: `records` (ChatRecord, the message every reader yields, and the Conversation it was posted in),
`irc`, `slack_export`, `discord_export`, `plain` (lines, JSON lines, text), `json_stream` (a big JSON array
read item by item), `export_files` (an export's zip or folder, with caps on what a zip member may unpack
to) and `sources` (format detection and `open_source`).
"""

from __future__ import annotations

from textgen.formats.records import ChatRecord, Conversation, ReadReport
from textgen.formats.sources import (
    CHANNEL_FORMATS,
    FORMATS,
    ChatSource,
    detect_format,
    guess_format,
    open_source,
)

__all__ = [
    "CHANNEL_FORMATS",
    "FORMATS",
    "ChatRecord",
    "ChatSource",
    "Conversation",
    "ReadReport",
    "detect_format",
    "guess_format",
    "open_source",
]
