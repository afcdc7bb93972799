"""A channel deleted on the platform, or one the bot was removed from, is taken back from the models."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from bot.core import Services
from chatsmith.settings import Settings
from db.forgetting import record_exposure
from db.models import Channel, ModelVersion, utcnow
from db.registry import create_version, mark_candidate, promote
from db.scopes import Scope, get_or_create_channel, get_or_create_workspace
from tests.bot.conftest import Chat
from tests.bot.helpers import eventually, run
from tests.bot.test_slack_adapter import http_bot


def workspace_model_of(services: Services, platform: str, team: str, channel: str) -> tuple[int, Path]:
    """A published, active workspace version that learned from `channel`; its id and bundle."""
    assert services.store is not None
    with services.write_sessions.begin() as session:
        workspace = get_or_create_workspace(session, platform, team)
        row = get_or_create_channel(session, workspace, channel, channel)
        row.collecting = True
        session.flush()
        version = create_version(session, Scope(workspace.id), tokenizer_kind="byte", spec={})
        record_exposure(session, version, {"ann"}, utcnow(), [row.id])
        bundle = services.store.root / f"{platform}-{team}-v1"
        bundle.mkdir(parents=True)
        mark_candidate(session, version, bundle_path=str(bundle))
        promote(session, version)
        return version.id, bundle


def state(services: Services, version_id: int, channel: str) -> tuple[str, bool]:
    with services.sessions() as session:
        version = session.get(ModelVersion, version_id)
        collecting = session.scalars(select(Channel.collecting).where(Channel.external_id == channel)).one()
        assert version is not None
        return version.status, collecting


def test_a_deleted_channel_stops_collecting_and_leaves_the_workspace_model(chat: Chat) -> None:
    version_id, bundle = workspace_model_of(chat.services, "console", "team", "doomed")

    assert chat.runner.run(chat.core.channel_gone("console", "team", "doomed")) is True

    assert state(chat.services, version_id, "doomed") == ("retired", False)
    assert not bundle.exists()  # deleted once the withdrawal committed
    assert chat.runner.run(chat.core.channel_gone("console", "team", "never-seen")) is False


def test_slack_channel_deleted_event_takes_the_channel_back(
    bot_settings: Settings, services: Services
) -> None:
    async def scenario() -> None:
        async with http_bot(bot_settings, services) as (fake, _bot, url):
            version_id, _ = workspace_model_of(services, "slack", fake.TEAM_ID, fake.general.id)
            event = fake.event_callback({"type": "channel_deleted", "channel": fake.general.id})
            assert (await fake.post_signed_event(url, event)).status == 200
            await eventually(
                lambda: state(services, version_id, fake.general.id) == ("retired", False),
                what="the workspace model withdrawn",
            )

    run(scenario)
