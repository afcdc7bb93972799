"""How a failed job reads: the line users see, what the job's row keeps, and a full disk in words.

The bots show the first line of a job's error in chat, so it never holds a path on the server
(`trainer.notes`); operators read the whole of it (every chained cause, paths included) in the database,
and the traceback in the trainer's log.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from db.errors import DatabaseError
from db.serving import ServingModel
from errortext import causes, first_line, shortened
from textgen.errors import TextgenError
from trainer.errors import TrainerError
from trainer.notes import without_paths

# Longest first line of a job's error: the bots show it in chat.
MAX_ERROR_CHARS = 500
# Longest detail kept after it (the log has the traceback as well).
MAX_DETAIL_CHARS = 20_000
DISK_FULL = (
    "the model directory's disk is full (No space left on device); free space under CHATSMITH_MODEL_DIR, "
    "then train again"
)
# Free space a new bundle needs beyond the size of its parent's (staging, then the published copy).
MIN_FREE_BYTES = 16 * 1024 * 1024


def is_user_error(error: BaseException) -> bool:
    """Whether `error`'s message is written for users (the problem and the fix), so no traceback is due."""
    return isinstance(error, TextgenError | DatabaseError)


def one_line_error(error: BaseException) -> str:
    """The line users see for a failed job: the message of a user error, a full disk in words, else the
    exception's type and first line; paths on the server read "[path]"."""
    if _disk_full(error):
        return DISK_FULL
    text = str(error) if is_user_error(error) else f"{type(error).__name__}: {error}; see the trainer's log"
    line = without_paths(first_line(text)) or type(error).__name__
    return shortened(line, MAX_ERROR_CHARS)


def job_error_text(error: BaseException) -> str:
    """What a failed job's row keeps: the line users see, then the whole cause (every line of every
    chained exception) for operators. The bots show only the first line."""
    summary = one_line_error(error)
    chain = [f"{type(cause).__name__}: {str(cause).strip()}" for cause in causes(error)]
    if len(chain) == 1 and str(error).strip() == summary:
        return summary  # a one-line user error is its own whole cause
    detail = "\ncaused by ".join(chain)[:MAX_DETAIL_CHARS]
    return f"{summary}\n{detail}"


def _disk_full(error: BaseException) -> bool:
    return any(
        getattr(cause, "errno", None) == errno.ENOSPC or "No space left on device" in str(cause)
        for cause in causes(error)
    )


def check_free_space(staging: Path, parent: ServingModel | None) -> None:
    """Refuse to train when the bundle could not be written: a write that fills the disk half-way through
    an HDF5 file can crash the whole process instead of raising.

    Raises:
        TrainerError: Less free space than twice the parent's bundle plus a margin.
    """
    parent_bytes = sum(f.stat().st_size for f in Path(parent.path).rglob("*") if f.is_file()) if parent else 0
    needed = 2 * parent_bytes + MIN_FREE_BYTES
    free = shutil.disk_usage(staging).free
    if free < needed:
        raise TrainerError(
            f"{DISK_FULL}\nOSError: [Errno {errno.ENOSPC}] No space left on device: {free / 1e6:.1f} MB free "
            f"at {staging}, a new bundle needs about {needed / 1e6:.1f} MB"
        )
