"""Imitation consent on SQLite and PostgreSQL: on, off, and ended by an opt-out."""

from sqlalchemy.orm import Session

from db.imitation import may_imitate, set_imitation
from db.models import UserOptOut
from db.scopes import find_scope


def test_consent_turns_on_and_off_and_an_opt_out_ends_it(session: Session) -> None:
    assert not may_imitate(session, "slack", "T1", "U1")  # an unknown workspace
    assert set_imitation(session, "slack", "T1", "U1", on=True)
    assert not set_imitation(session, "slack", "T1", "U1", on=True)  # already on: nothing changes
    session.commit()
    assert may_imitate(session, "slack", "T1", "U1")
    assert not may_imitate(session, "slack", "T1", "U2")
    assert not may_imitate(session, "discord", "T1", "U1")  # another platform's workspace

    assert set_imitation(session, "slack", "T1", "U1", on=False)
    session.commit()
    assert not may_imitate(session, "slack", "T1", "U1")

    set_imitation(session, "slack", "T1", "U1", on=True)
    scope = find_scope(session, "slack", "T1")
    session.add(UserOptOut(workspace_id=scope.workspace_id, user_id="U1"))
    session.commit()
    assert not may_imitate(session, "slack", "T1", "U1")
