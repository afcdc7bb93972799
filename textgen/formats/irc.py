"""IRC logs in the shapes people have: plain `[hh:mm]` logs, logs with a leading channel and date, and the
layouts of irssi, WeeChat and ZNC (and mIRC's system lines).

Each line is one of: a message (`<nick> text`), an action (`* nick waves`), a system line (joins, parts,
quits, nick and mode changes, topics, log open/close) or unknown. Messages take their date from the line
when it has one, else from the last date line before it (irssi's `--- Day changed`), else from the file's
name (ZNC writes one file per day, `2019-09-04.log`); a log with no date at all gives messages without a
time. Logs say nothing of their time zone: times are read as UTC.

    [22:45] <nick> text                              plain, `[hh:mm:ss]` too, tab or space after the nick
    stripe 2019-09-04 [22:45:20] <nick> text         leading channel and date
    [2019-09-04 22:45:20] <nick> text                date inside the brackets
    22:45 <@nick> text / 22:45 -!- x has joined      irssi (`--- Day changed Thu Sep 05 2019`)
    2019-09-04 22:45:20<TAB>@nick<TAB>text           WeeChat (`-->`, `<--`, `--` system prefixes)
    [22:45:20] *** Joins: x (x@host)                 ZNC system lines
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime, time
from typing import NamedTuple

from textgen.formats.records import ChatRecord

MESSAGE = "message"
ACTION = "action"
SYSTEM = "system"
UNKNOWN = "unknown"

_TIME = r"\d{1,2}:\d{2}(?::\d{2})?"
_DATE = r"\d{4}-\d{2}-\d{2}"
# The stamp at the start of a line: an optional channel (only before a date), an optional bare date, then
# the time, bracketed (with an optional date inside) or bare (irssi, WeeChat).
_STAMP = re.compile(
    rf"^(?:(?P<channel>[^\s\[<]+)\s+(?={_DATE}[ T]))?"
    rf"(?:(?P<date>{_DATE})[ T])?"
    rf"(?:\[(?:(?P<bracket_date>{_DATE})[ T])?(?P<bracket_time>{_TIME})\]|(?P<time>{_TIME}))"
    r"(?P<separator>\t|\s+|$)"
)
# The shapes most logs are in (`[hh:mm] <nick> text`, maybe after a channel and date), matched at once.
_PLAIN_MESSAGE = re.compile(
    rf"^(?:(?P<channel>[^\s\[<]+) (?={_DATE} ))?(?:(?P<date>{_DATE}) )?\[(?P<time>{_TIME})\][ \t]+"
    r"<[@+%&~!]?(?P<nick>[^>\s]+)>[ \t]?(?P<text>.*)$"
)
# `<nick>`; irssi pads and aligns nicks (`< nick>`, `<@nick>`), others put a mode prefix (@, +, %, &, ~).
_NICK_MESSAGE = re.compile(r"^<\s*[@+%&~!]?\s*(?P<nick>[^>\s]+)\s*>[ \t]?(?P<text>.*)$")
_ACTION = re.compile(r"^\*\s+(?P<nick>[^\s*]+)\s+(?P<text>.*)$")
# mIRC and some bouncers write their system lines with a single star, like actions.
_STAR_SYSTEM = re.compile(
    r"^\*\s+(?:(?:Joins|Parts|Quits|Now talking in|Topic is|Set by|Disconnected|Attempting to rejoin)\b"
    r"|\S+ (?:is now known as|sets mode:|changes topic|has (?:joined|left|quit))\b)"
)
_SYSTEM_PREFIX = re.compile(r"^(?:===|\*\*\*|-!-|-->|<--|---|--|=!=|-\S+-)(?:\s|$)")
# Lines with no stamp that loggers write between messages; some carry the date of what follows.
_UNSTAMPED_SYSTEM = re.compile(r"^(?:---|===|\*\*\*|-!-|Session (?:Start|Close|Ident|Time)\b)")
_DAY_LINE = re.compile(
    r"^(?:--- (?:Day changed|Log opened|Log closed)|Session (?:Start|Close|Time):)\s+"
    r"(?:\w{3}\s+)?(?P<month>\w{3})\s+(?P<day>\d{1,2})\s+(?:[\d:]+\s+)?(?P<year>\d{4})"
)
_FILE_DATE = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")
_MONTHS = {
    name: index
    for index, name in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}
_WEECHAT_SYSTEM = {"-->", "<--", "--", "=!=", "-!-", "***", "==="}


class IrcLine(NamedTuple):
    """What one line of an IRC log is.

    Attributes:
        kind: MESSAGE, ACTION, SYSTEM or UNKNOWN.
        nick: Who wrote a message or action.
        text: What they wrote.
        date: The date the line carries (its stamp, or a date line's date).
        clock: The time of day of its stamp.
        channel: The channel named before the date, in logs of several channels.
    """

    kind: str
    nick: str | None = None
    text: str = ""
    date: date | None = None
    clock: time | None = None
    channel: str | None = None


def parse_irc_line(line: str) -> IrcLine:
    """Classify one line of an IRC log (without its line break)."""
    line = line.rstrip("\r\n")
    stripped = line.strip()
    if not stripped:
        return IrcLine(SYSTEM)
    stamp = _STAMP.match(stripped)
    if stamp is None:
        if _UNSTAMPED_SYSTEM.match(stripped):
            return IrcLine(SYSTEM, date=_day_line_date(stripped))
        return IrcLine(UNKNOWN)
    day = _parse_date(stamp.group("date") or stamp.group("bracket_date"))
    clock = _parse_clock(stamp.group("time") or stamp.group("bracket_time"))
    if clock is None:
        return IrcLine(UNKNOWN)
    channel = stamp.group("channel")
    rest = stripped[stamp.end() :]
    if stamp.group("separator") == "\t" and "\t" in rest:
        kind, nick, text = _weechat_body(rest)
    else:
        kind, nick, text = _body(rest.strip())
    return IrcLine(kind, nick, text, day, clock, channel)


def _body(body: str) -> tuple[str, str | None, str]:
    message = _NICK_MESSAGE.match(body)
    if message:
        return MESSAGE, message.group("nick"), (message.group("text") or "").strip()
    if _STAR_SYSTEM.match(body) or _SYSTEM_PREFIX.match(body):
        return SYSTEM, None, ""
    action = _ACTION.match(body)
    if action:
        return ACTION, action.group("nick"), action.group("text").strip()
    return UNKNOWN, None, ""


def _weechat_body(body: str) -> tuple[str, str | None, str]:
    prefix, text = body.split("\t", 1)
    prefix = prefix.strip()
    if prefix in _WEECHAT_SYSTEM or not prefix:
        return SYSTEM, None, ""
    if prefix == "*":
        nick, _, action = text.strip().partition(" ")
        return ACTION, nick, action.strip()
    if prefix.startswith("<") and prefix.endswith(">"):
        prefix = prefix[1:-1].strip()
    return MESSAGE, prefix.lstrip("@+%&~!") or prefix, text.strip()


# A log repeats the same few thousand stamps: parsing each once keeps big logs quick to read.
@functools.lru_cache(maxsize=4096)
def _parse_date(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


@functools.lru_cache(maxsize=100_000)
def _parse_clock(text: str | None) -> time | None:
    if text is None:
        return None
    hour, minute, *second = (int(part) for part in text.split(":"))
    try:
        return time(hour, minute, second[0] if second else 0)
    except ValueError:
        return None


def _day_line_date(line: str) -> date | None:
    match = _DAY_LINE.match(line)
    if match is None:
        return None
    month = _MONTHS.get(match.group("month").lower())
    if month is None:
        return None
    try:
        return date(int(match.group("year")), month, int(match.group("day")))
    except ValueError:
        return None


def date_from_file_name(name: str) -> date | None:
    """The date in a log file's name (`2019-09-04.log`, `net_#chan_20190904.log`), if it has one."""
    for match in _FILE_DATE.finditer(name):
        try:
            return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        except ValueError:
            continue
    return None


class IrcReader:
    """Turns the lines of one log into messages, keeping the date that date lines set.

    Args:
        include_actions: Keep `* nick waves` as a message of nick ("nick waves").
        file_date: The date of a log that has none in its lines (from its file name).
    """

    def __init__(self, *, include_actions: bool = False, file_date: date | None = None) -> None:
        self.include_actions = include_actions
        self.current_date = file_date

    def feed(self, line: str) -> ChatRecord | None:
        """The message on `line`, or None for system, unknown and empty lines."""
        plain = _PLAIN_MESSAGE.match(line)
        if plain is not None:
            text = plain.group("text").strip()
            clock = _parse_clock(plain.group("time"))
            if plain.group("date") is not None:
                self.current_date = _parse_date(plain.group("date"))
            if not text or clock is None:
                return None
            posted = None
            if self.current_date is not None:
                posted = datetime.combine(self.current_date, clock, tzinfo=UTC)
            nick = plain.group("nick")
            return ChatRecord(text, nick, nick, posted, channel_name=plain.group("channel"))
        parsed = parse_irc_line(line)
        if parsed.date is not None:
            self.current_date = parsed.date
        wanted = parsed.kind == MESSAGE or (parsed.kind == ACTION and self.include_actions)
        if not wanted or not parsed.text:
            return None
        posted = None
        if self.current_date is not None and parsed.clock is not None:
            posted = datetime.combine(self.current_date, parsed.clock, tzinfo=UTC)
        # An action reads as a sentence only with who acted: "alice waves", not "waves".
        text = parsed.text if parsed.kind == MESSAGE else f"{parsed.nick} {parsed.text}"
        return ChatRecord(
            text,
            author_id=parsed.nick,
            author_name=parsed.nick,
            time=posted,
            channel_name=parsed.channel,
        )
