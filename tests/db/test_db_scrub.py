"""Scrubbing mentions, emails and URLs out of training text."""

from __future__ import annotations

import pytest

from db.scrub import scrub_text


@pytest.mark.parametrize(
    ("raw", "scrubbed"),
    [
        ("hi <@123456789012345678>!", "hi @user!"),
        ("hi <@!42> and <@&77>", "hi @user and @user"),
        ("ask <@U024BE7LH> or <@W123|bob>", "ask @user or @user"),
        ("@alice said hi to @bob.smith", "@user said hi to @user"),
        ("ping @everyone and <!here> and <!channel>", "ping @user and @user and @user"),
        ("write to jane.doe+chat@example.co.uk today", "write to <email> today"),
        ("<mailto:jane@example.com|jane@example.com>", "<email>"),
        ("see https://example.com/a?b=c, then www.example.org/x).", "see <url>, then <url>)."),
        ("<https://example.com|the site> and <http://x.io>", "<url> and <url>"),
        ("creds in https://user:pw@host.example/path", "creds in <url>"),
        ("in <#123> or <#C024BE7LR|general>", "in #channel or #channel"),
        ("3@4 is not an email, foo@ is nothing", "3@4 is not an email, foo@ is nothing"),
        ("héllo @jürgen 🙂 ça va", "héllo @user 🙂 ça va"),
        ("plain text stays", "plain text stays"),
        ("", ""),
    ],
)
def test_scrub_text(raw: str, scrubbed: str) -> None:
    assert scrub_text(raw) == scrubbed


def test_scrubbing_twice_changes_nothing_more() -> None:
    once = scrub_text("mail a@b.io, see http://x.y/z, ask @c and <@1>")
    assert scrub_text(once) == once
