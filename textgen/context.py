"""A conversation as a prompt: the channel's last messages, then the reply being written.

Models learn a channel as one stream `BOS m1 EOS BOS m2 EOS ...` and carry their state across messages,
so the messages before a reply are context the model already knows how to use: feeding them framed the
same way and then opening a new message asks for the next message of that conversation.
"""

from __future__ import annotations

from collections.abc import Sequence

from textgen.tokenizers import BOS_ID, EOS_ID, Tokenizer

# Context fed before a reply: a few messages of chat. Every token is one decoding step, so this bounds
# what a reply costs. Measured on a held-out channel (`python -m bench.context_length`): 1 message gains
# as much as 8.
DEFAULT_CONTEXT_TOKENS = 256


def prompt_with_context(
    tokenizer: Tokenizer,
    context: Sequence[str],
    prompt: str,
    max_context_tokens: int = DEFAULT_CONTEXT_TOKENS,
) -> list[int]:
    """Token ids for a reply to `prompt` after the messages of `context` (oldest first).

    The generator puts BOS in front, so the result is `m1 EOS BOS m2 EOS BOS prompt`. The newest messages
    that fit in `max_context_tokens` are kept whole; older ones are dropped.
    """
    kept: list[list[int]] = []
    used = 0
    for message in reversed(context):
        framed = [*tokenizer.encode(message), EOS_ID, BOS_ID]
        if used + len(framed) > max_context_tokens:
            break
        kept.append(framed)
        used += len(framed)
    ids = [token for framed in reversed(kept) for token in framed]
    return ids + tokenizer.encode(prompt)
