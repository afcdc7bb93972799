"""What `/my-data` gathers about a member (`db.member_data`), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session

from db.forgetting import record_exposure
from db.member_data import member_data
from db.messages import delete_message, record_message
from db.models import Channel, utcnow
from db.registry import create_version, mark_candidate
from db.scopes import Scope


def test_a_members_data_holds_their_messages_and_the_models_that_learned_from_them(
    session: Session, make_channel: Callable[..., Channel], tmp_path: Path
) -> None:
    general, other = make_channel("general"), make_channel("general", workspace="W2")
    record_message(session, general, "m1", "ann", "ann in general", utcnow())
    record_message(session, general, "m2", "ann", "ann, deleted later", utcnow())
    record_message(session, general, "m3", "bob", "bob in general", utcnow())
    record_message(session, other, "m4", "ann", "ann elsewhere", utcnow())
    delete_message(session, general, "m2")
    learned = create_version(session, Scope.of(general), tokenizer_kind="byte", spec={})
    record_exposure(session, learned, {"ann", "bob"}, utcnow())
    mark_candidate(session, learned, bundle_path=str(tmp_path / "v1"))
    not_hers = create_version(session, Scope.of(general), tokenizer_kind="byte", spec={})
    record_exposure(session, not_hers, {"bob"}, utcnow())
    mark_candidate(session, not_hers, bundle_path=str(tmp_path / "v2"))
    session.commit()

    data = member_data(session, general.workspace_id, "W1", "ann", utcnow()).as_json_ready()

    assert [m["text"] for m in data["messages"]] == ["ann in general"]
    assert data["message_count"] == 1 and data["messages"][0]["channel"] == "general"
    assert [(m["scope"], m["version"]) for m in data["models_trained_on_your_messages"]] == [("#general", 1)]
