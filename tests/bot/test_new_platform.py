"""A platform the code has never seen, added as `docs/packages.md` says (a registry entry and an adapter),
is stored, answered within its limits and run by the shared runner with no edit to the core or the
database."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from bot.core import CommandCore, Request, Services
from bot.core.platform import Replies
from bot.core.request import Reply
from bot.core.runner import Adapter, run_adapter
from bot.core.shutdown import InFlight
from db.models import Workspace
from db.platforms import PLATFORMS, PlatformEntry
from tests.bot.helpers import run

# No adapter module to import: the test hands its adapter to the runner itself.
TOY = PlatformEntry("toy", "Toy Chat", 60, "plain")


@dataclass(frozen=True)
class ToyConfig:
    greeting: str = "hi"


class ToyReplies(Replies):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    async def private(self, reply: Reply) -> None:
        self.seen.append(("private", reply.text))

    async def public(self, reply: Reply) -> None:
        self.seen.append(("public", reply.text))


class ToyServer:
    """Answers one `help` from a member as soon as it is connected, then ends by itself."""

    def __init__(self, config: ToyConfig, services: Services) -> None:
        self.core = CommandCore(services)
        self.in_flight = InFlight()
        self.replies = ToyReplies()
        self.closed = asyncio.Event()

    async def serve(self) -> None:
        request = Request(platform="toy", workspace="w1", channel="c1", user="ann", command="help")
        await self.in_flight.answer(self.closed.wait, lambda: self._answer(request))

    async def _answer(self, request: Request) -> None:
        await self.replies.send(await self.core.handle(request))

    async def close(self) -> None:
        self.closed.set()


@pytest.fixture
def toy_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(PLATFORMS, "toy", TOY)


def test_a_new_platform_needs_no_edit_to_the_core_or_the_database(
    toy_platform: None, services: Services
) -> None:
    servers: list[ToyServer] = []

    def build(config: ToyConfig, services: Services) -> ToyServer:
        servers.append(ToyServer(config, services))
        return servers[-1]

    adapter = Adapter(config_type=ToyConfig, check_config=lambda config: None, build_server=build)
    run(lambda: run_adapter(adapter, ToyConfig(), services))

    [(visibility, text)] = servers[0].replies.seen
    assert visibility == "private" and text.startswith("Commands:")
    assert len(text) <= TOY.message_limit and text.endswith("…")

    # Stored under its name with no migration: the registry, not a CHECK constraint, knows the platforms.
    imitate = Request(
        platform="toy", workspace="w1", channel="c1", user="ann", command="imitate-me", args={"state": "on"}
    )
    reply = run(lambda: CommandCore(services).handle(imitate))
    assert reply.text.startswith("Imitation is on"), reply.text
    with services.sessions() as session:
        assert session.scalars(select(Workspace.platform).where(Workspace.external_id == "w1")).all() == [
            "toy"
        ]
