"""What the trainer writes where members read it: version notes and the line of a failed job.

`/status` and `/models` show a version's note and a failed job's first line to anyone in the channel, so
neither may hold a path on the server (the model directory, the base model's home, a staging directory).
The whole cause, paths included, stays in the trainer's log and in the job row's detail for operators.
"""

from __future__ import annotations

import re

from db.serving import ServingModel

# What a path on the server reads as in text members see.
PATH_PLACEHOLDER = "[path]"

# An absolute path (POSIX, home-relative or Windows), or a relative one of three parts or more, as OS
# errors and libraries print them. Not a ratio ("nats/char", "3/10") or a URL: a path starts after a
# space, a quote or a bracket, never inside a word or after "://".
_PATH = re.compile(
    r"""
    (?<![\w.:/\\-])(?:~|[A-Za-z]:)?[/\\][^\s'"`,;()\[\]{}<>]+   # /data/models/x, ~/x, C:\x
    | (?<![\w./\\-])[\w.-]+(?:/[\w.-]+){2,}                   # data/models/.staging/x
    """,
    re.VERBOSE,
)


def without_paths(text: str) -> str:
    """`text` with every path on the server replaced by "[path]".

    Example: "PermissionError: [Errno 13] Permission denied: '/data/models/.staging/job-3-x'" reads
    "PermissionError: [Errno 13] Permission denied: '[path]'".
    """
    return _PATH.sub(PATH_PLACEHOLDER, text)


def describe_parent(model: ServingModel | None) -> str:
    """How a version's note names what it was fine-tuned from: "scratch", "the base model" or
    "channel model v3" (never where its bundle lives)."""
    if model is None:
        return "scratch"
    if model.source == "base":
        return "the base model"
    return f"{model.source} model v{model.version}"
