"""Replies to a member never name a private channel they did not write in.

A private channel's model fine-tuned from the workspace model holds what the workspace model learned,
so it counts as having learned from everyone who wrote in public channels. forget-me must withdraw it,
and my-data must list it, without telling the member its name.
"""

from __future__ import annotations

import json
import zipfile
from io import BytesIO
from pathlib import Path

from bot.core.request import Request
from db.forgetting import record_exposure
from db.models import ModelVersion, utcnow
from db.registry import create_version, mark_candidate, promote
from db.scopes import Scope, get_or_create_channel, get_or_create_workspace
from tests.bot.conftest import Chat


def publish(chat: Chat, scope: Scope, bundle: Path, authors: set[str], parent: int | None = None) -> int:
    with chat.services.write_sessions.begin() as session:
        version = create_version(session, scope, tokenizer_kind="byte", spec={}, parent_version_id=parent)
        record_exposure(session, version, authors, utcnow(), [])
        bundle.mkdir(parents=True)
        mark_candidate(session, version, bundle_path=str(bundle))
        promote(session, version)
        return version.id


def model_dir(chat: Chat) -> Path:
    assert chat.services.store is not None
    return chat.services.store.root


def make_layoffs_channel(chat: Chat) -> None:
    """#general (public, ann wrote there), the workspace model, and #layoffs-2025 (private) tuned from it."""
    chat.user("root", admin=True).say("/collect on")
    chat.user("ann").say("hello from the open channel")
    with chat.services.write_sessions.begin() as session:
        workspace = get_or_create_workspace(session, "console", "team")
        secret = get_or_create_channel(session, workspace, "layoffs", "layoffs-2025")
        secret.private = True
        session.flush()
        workspace_scope, secret_scope = Scope(workspace.id), Scope.of(secret)
    parent = publish(chat, workspace_scope, model_dir(chat) / "ws-v1", {"ann"})
    publish(chat, secret_scope, model_dir(chat) / "layoffs-v1", {"hr"}, parent=parent)


def test_forget_me_withdraws_a_private_channels_model_without_naming_it(chat: Chat) -> None:
    make_layoffs_channel(chat)

    answer = chat.user("ann").say("/forget-me")

    assert "2 model version(s) that learned from them stopped answering" in answer
    assert "layoffs" not in answer
    assert "a private channel now answers with the workspace or base model" in answer
    assert not (model_dir(chat) / "layoffs-v1").exists()
    with chat.services.sessions() as session:
        assert [v.status for v in session.query(ModelVersion).order_by(ModelVersion.id)] == ["retired"] * 2


def test_my_data_lists_a_private_channels_model_without_naming_it(chat: Chat) -> None:
    make_layoffs_channel(chat)
    request = Request(platform="console", workspace="team", channel="general", user="ann", command="my-data")
    reply = chat.runner.run(chat.core.handle(request))

    assert reply.file is not None
    exported = reply.file
    if exported[:2] == b"PK":  # a zip holding the JSON
        with zipfile.ZipFile(BytesIO(exported)) as archive:
            exported = archive.read(archive.namelist()[0])
    data = json.loads(exported)
    assert "layoffs" not in json.dumps(data)
    assert sorted(model["scope"] for model in data["models_trained_on_your_messages"]) == [
        "a private channel",
        "workspace",
    ]
