"""A reply names only people of the conversation it follows.

A channel model learns its members' names from the channel's whole history, and nothing tells it who is in
today's conversation: measured on the Stripe channel (`python -m bench.reply_tells`, bench/RESULTS.md,
"What gives the replies away"), one reply in seven named a member who wrote nothing in the period the
replies stood in for, against one real message in five hundred. A reply that addresses someone addresses
the person it answers in real chat, so a member the conversation has not seen is named as its last speaker
instead: a classifier told such replies from the channel's messages at AUC 0.740 against 0.761.

Names are matched as words, case-insensitively, with or without a leading @. Only names that are member
ids reach this: on Slack and Discord, where ids are not the names people type, mentions are scrubbed to
"@user" before training (`db.scrub`), so there nothing matches and nothing changes.
"""

from __future__ import annotations

import re
from collections.abc import Collection

# A word as a name can be written in chat: an IRC nick's characters, an optional leading @.
NAME_LIKE = re.compile(r"@?[A-Za-z0-9_\-\[\]`|^{}\\]+")


def readdress(text: str, members: Collection[str], present: Collection[str], speaker: str) -> str:
    """`text` with each of `members` who is not in `present` (both lowercase) named as `speaker`."""
    if not members:
        return text

    def name(match: re.Match[str]) -> str:
        word = match.group(0)
        bare = word.lstrip("@").lower()
        if bare not in members or bare in present:
            return word
        return ("@" if word.startswith("@") else "") + speaker

    return NAME_LIKE.sub(name, text)
