"""What serves a channel names the bundles it was fine-tuned from, so replies pass their copy guards."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session

from db.models import Channel, ModelVersion
from db.registry import create_version, mark_candidate, promote
from db.scopes import Scope
from db.serving import serving_model_for_scope


def published(
    session: Session, scope: Scope, tmp_path: Path, parent: ModelVersion | None = None
) -> ModelVersion:
    version = create_version(
        session, scope, tokenizer_kind="byte", spec={}, parent_version_id=parent.id if parent else None
    )
    bundle = tmp_path / f"bundle-{scope.scope_key.replace('/', '-')}-v{version.version}"
    bundle.mkdir()
    mark_candidate(session, version, bundle_path=str(bundle))
    promote(session, version)
    return version


def test_a_channel_model_lists_its_workspace_ancestors_parent_first(
    session: Session, make_channel: Callable[..., Channel], tmp_path: Path
) -> None:
    general = make_channel("general")
    workspace = Scope(general.workspace_id)
    first = published(session, workspace, tmp_path)
    second = published(session, workspace, tmp_path, parent=first)
    published(session, Scope.of(general), tmp_path, parent=second)
    session.commit()

    serving = serving_model_for_scope(session, Scope.of(general), base_model=tmp_path / "base")
    assert serving is not None and serving.source == "channel"
    assert serving.ancestors == (Path(str(second.bundle_path)), Path(str(first.bundle_path)))
    workspace_serving = serving_model_for_scope(session, workspace)
    assert workspace_serving is not None and workspace_serving.ancestors == (Path(str(first.bundle_path)),)


def test_a_model_tuned_from_the_base_model_has_no_ancestors(
    session: Session, make_channel: Callable[..., Channel], tmp_path: Path
) -> None:
    general = make_channel("general")
    published(session, Scope.of(general), tmp_path)
    session.commit()
    serving = serving_model_for_scope(session, Scope.of(general))
    assert serving is not None and serving.ancestors == ()
