"""How an error reads as text: its first line, cut to a length, and the chain of its causes.

Every package writes errors as text for someone: a chat reply, a failed job's row, a log line, the reason
a bundle does not load. `db` and `textgen` may import nothing of chatsmith, not even each other, so a
helper in either of them (or above them) could not serve both. These helpers therefore live in this
package, below all the others: it imports only the standard library, and every package may import it
(docs/packages.md).
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["causes", "error_line", "first_line", "shortened"]


def first_line(text: str) -> str:
    """The first line of `text` once surrounding blank space is stripped; "" when `text` is blank."""
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


def error_line(error: object) -> str:
    """The first line of `error`'s message, or the name of its type when the message is blank.

    Args:
        error: An exception (or whatever a library keeps as one, such as a driver's original error).
    """
    return first_line(str(error)) or type(error).__name__


def shortened(text: str, limit: int) -> str:
    """`text` when it has at most `limit` characters, else its start ending in "..." (`limit` in all)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def causes(error: BaseException) -> Iterator[BaseException]:
    """`error`, then what it was raised from (or while handling), and so on; each exception once."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
