"""Reading a command's arguments: numbers within bounds and scope names, refused with a message users read."""

from __future__ import annotations

import math
from collections.abc import Mapping

from bot.core.errors import CommandError
from bot.core.request import ArgValue


def int_arg(args: Mapping[str, ArgValue], name: str, default: int, low: int, high: int) -> int:
    """Argument `name` as a whole number from `low` to `high`; `default` when it is absent or empty.

    Raises:
        CommandError: It is not a whole number in range.
    """
    value = args.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(str(value)) if not isinstance(value, int) else value
    except ValueError:
        raise CommandError(
            f"Received {name} `{value}`, expected a whole number from {low} to {high}."
        ) from None
    if not low <= number <= high:
        raise CommandError(f"Received {name} {number}, expected a whole number from {low} to {high}.")
    return number


def float_arg(args: Mapping[str, ArgValue], name: str, default: float, low: float, high: float) -> float:
    """Argument `name` as a finite number from `low` to `high`; `default` when it is absent or empty.

    Raises:
        CommandError: It is not a number in range.
    """
    value = args.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise CommandError(
            f"Received {name} `{value}`, expected a number from {low:g} to {high:g}."
        ) from None
    if not math.isfinite(number) or not low <= number <= high:
        raise CommandError(f"Received {name} {number:g}, expected a number from {low:g} to {high:g}.")
    return number


def scope_arg(args: Mapping[str, ArgValue]) -> str:
    """The `scope` argument: "channel" (the default) or "workspace".

    Raises:
        CommandError: Any other value.
    """
    scope = str(args.get("scope") or "channel").strip().lower()
    if scope not in ("channel", "workspace"):
        raise CommandError(f"Received scope `{scope}`, expected `channel` or `workspace`.")
    return scope
