"""Each workspace's output filter settings: the profanity policy and the words its admins added."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.errors import DatabaseError
from db.models import DEFAULT_FILTER_POLICY, FILTER_POLICIES, Workspace, WorkspaceFilter, utcnow

# Most words one workspace may add, and the longest word: the list is matched against every reply.
MAX_WORDS = 500
MAX_WORD_CHARS = 40


@dataclass(frozen=True)
class FilterSettings:
    """What a workspace's filter does.

    Attributes:
        policy: "off", "mask" or "block" for profanity (slurs are blocked whatever it says).
        words: Words the workspace's admins added, lower case.
    """

    policy: str = DEFAULT_FILTER_POLICY
    words: tuple[str, ...] = ()


def filter_settings(session: Session, platform: str, workspace: str) -> FilterSettings:
    """The settings of the workspace named by platform ids (defaults when it has none)."""
    row = session.scalars(
        select(WorkspaceFilter)
        .join(Workspace, WorkspaceFilter.workspace_id == Workspace.id)
        .where(Workspace.platform == platform, Workspace.external_id == workspace)
    ).one_or_none()
    if row is None:
        return FilterSettings()
    return FilterSettings(row.policy, tuple(row.words or ()))


def _row(session: Session, workspace_id: int) -> WorkspaceFilter:
    row = session.get(WorkspaceFilter, workspace_id)
    if row is None:
        row = WorkspaceFilter(workspace_id=workspace_id, policy=DEFAULT_FILTER_POLICY, words=[])
        session.add(row)
    return row


def set_policy(session: Session, workspace_id: int, policy: str, by: str = "") -> FilterSettings:
    """Set a workspace's profanity policy.

    Raises:
        DatabaseError: `policy` is not one of off, mask, block.
    """
    if policy not in FILTER_POLICIES:
        raise DatabaseError(
            f"Received filter policy {policy!r}, expected one of: {', '.join(FILTER_POLICIES)}"
        )
    row = _row(session, workspace_id)
    row.policy, row.updated_at, row.updated_by = policy, utcnow(), by
    return FilterSettings(row.policy, tuple(row.words or ()))


def change_words(
    session: Session, workspace_id: int, add: tuple[str, ...] = (), remove: tuple[str, ...] = (), by: str = ""
) -> FilterSettings:
    """Add and remove words of a workspace's own list (lower-cased, duplicates ignored).

    Raises:
        DatabaseError: A word is too long, or the list would grow past `MAX_WORDS`.
    """
    for word in add:
        if not word or len(word) > MAX_WORD_CHARS:
            raise DatabaseError(f"Received a word of {len(word)} characters, expected 1 to {MAX_WORD_CHARS}")
    row = _row(session, workspace_id)
    gone = {word.lower() for word in remove}
    words = [word for word in (row.words or []) if word not in gone]
    words += [word for word in dict.fromkeys(word.lower() for word in add) if word not in words]
    if len(words) > MAX_WORDS:
        raise DatabaseError(f"a workspace's filter holds at most {MAX_WORDS} words; remove some first")
    # A new list object, so the JSON column sees the change.
    row.words, row.updated_at, row.updated_by = list(words), utcnow(), by
    return FilterSettings(row.policy, tuple(words))
