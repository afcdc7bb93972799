"""Errors raised by the trainer whose message is safe to show a user: the problem and the fix, one line."""

from __future__ import annotations

from textgen.errors import TextgenError


class TrainerError(TextgenError):
    """A trainer problem a user or operator can fix: too little text, a missing scope or base model.

    It derives from `TextgenError` so that the command line prints it as `error: ...` with exit code 2,
    like the other user errors, and a failed job stores its message as the job's error.
    """


class CorpusTooSmall(TrainerError):
    """A scope has fewer trainable messages than a model needs."""


class ScopeNotFound(TrainerError):
    """A workspace or channel named on the command line is not in the database."""


class JobLost(Exception):
    """A running job is no longer this worker's: cancelled, or requeued because the worker seemed dead.

    Not a user error: the worker catches it, undoes what the attempt created, and publishes nothing.
    """
