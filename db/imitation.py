"""Who may be imitated: members who turned it on with `/imitate-me on` and have not opted out since."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from db.messages import is_opted_out
from db.models import ImitationConsent
from db.scopes import find_scope, get_or_create_workspace


def set_imitation(
    session: Session, platform: str, workspace_external_id: str, user_id: str, on: bool
) -> bool:
    """Turn imitation of `user_id` on or off in a workspace; whether that changed anything."""
    workspace = get_or_create_workspace(session, platform, workspace_external_id)
    current = session.scalars(
        select(ImitationConsent).where(
            ImitationConsent.workspace_id == workspace.id, ImitationConsent.user_id == user_id
        )
    ).one_or_none()
    if on and current is None:
        session.add(ImitationConsent(workspace_id=workspace.id, user_id=user_id))
        return True
    if not on and current is not None:
        session.execute(delete(ImitationConsent).where(ImitationConsent.id == current.id))
        return True
    return False


def may_imitate(session: Session, platform: str, workspace_external_id: str, user_id: str) -> bool:
    """Whether `user_id` agreed to be imitated in this workspace and has not opted out of collection."""
    scope = find_scope(session, platform, workspace_external_id)
    if scope is None:
        return False
    consent = session.scalar(
        select(ImitationConsent.id).where(
            ImitationConsent.workspace_id == scope.workspace_id, ImitationConsent.user_id == user_id
        )
    )
    return consent is not None and not is_opted_out(session, scope.workspace_id, user_id)


def forget_imitation(session: Session, workspace_id: int, user_id: str) -> bool:
    """Delete `user_id`'s imitation consent in a workspace (forget-me); whether there was one."""
    result = session.execute(
        delete(ImitationConsent).where(
            ImitationConsent.workspace_id == workspace_id, ImitationConsent.user_id == user_id
        )
    )
    return bool(getattr(result, "rowcount", 0))
