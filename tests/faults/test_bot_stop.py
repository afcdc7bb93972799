"""SIGTERM (what `docker stop` sends) to a bot with an interaction in flight, against the fake Discord and
the fake Slack: no new work is taken, the interaction finishes or is answered, and the bot returns cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import threading

from bot.core import Services
from bot.core.runner import run_adapter
from bot.core.shutdown import RESTARTING
from bot.discord_bot import ADAPTER as DISCORD
from bot.discord_platform import DiscordConfig
from chatsmith.settings import Settings
from tests.bot.conftest import base_bundle as base_bundle  # noqa: F401
from tests.bot.conftest import bot_settings as bot_settings  # noqa: F401
from tests.bot.conftest import services as services  # noqa: F401
from tests.bot.helpers import run
from tests.fakes.discord import FakeDiscord


def _hold_write_lock(services: Services) -> sqlite3.Connection:  # noqa: F811
    """Another process's long write: the bot's next write waits for it (an interaction in flight)."""
    blocker = sqlite3.connect(
        str(services.engine.url.database), isolation_level=None, check_same_thread=False
    )
    blocker.execute("BEGIN IMMEDIATE")
    return blocker


async def _stop_with_collect_in_flight(
    services: Services,
    grace_seconds: float,
    lock_seconds: float | None,  # noqa: F811
) -> tuple[str, str | None]:
    """Start the bot, run `/collect on` while the database is busy, SIGTERM the process, and try a new
    command. Returns the in-flight command's answer and the late command's answer."""
    async with FakeDiscord() as fake, fake.install():
        config = DiscordConfig(token=FakeDiscord.TOKEN)
        bot = asyncio.create_task(run_adapter(DISCORD, config, services, grace_seconds=grace_seconds))
        await fake.wait_until_ready(timeout=15)
        blocker = _hold_write_lock(services)
        if lock_seconds is not None:
            threading.Timer(lock_seconds, blocker.rollback).start()
        try:
            collect = await fake.send_interaction(
                fake.guild.id, fake.channel.id, fake.bob.id, "collect", {"state": "on"}
            )
            assert (await collect.wait_for_response(timeout=5)).type == 5  # deferred: "thinking..."
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(0.2)
            late_answer = None
            if grace_seconds > 1:
                late = await fake.send_interaction(fake.guild.id, fake.channel.id, fake.alice.id, "status")
                late_answer = (await late.wait_for_response(timeout=5)).content
            answer = (await collect.wait_for_followup(timeout=grace_seconds + 10)).content
            await asyncio.wait_for(bot, timeout=grace_seconds + 15)  # returns: no exception, no hang
        finally:
            if lock_seconds is None:
                blocker.rollback()
            blocker.close()
        return answer or "", late_answer


def test_sigterm_lets_an_interaction_in_flight_finish_and_refuses_new_ones(services: Services) -> None:  # noqa: F811
    """What must hold: the command running when the signal came finishes and is answered; a command after
    it is told the bot is restarting; the bot then returns without error."""
    answer, late = run(lambda: _stop_with_collect_in_flight(services, grace_seconds=20, lock_seconds=1.5))
    assert "Collection is on" in answer
    assert late == RESTARTING


def test_sigterm_answers_an_interaction_that_cannot_finish_in_the_grace_period(services: Services) -> None:  # noqa: F811
    """What must hold: nobody is left on "thinking...": the cut-off command is told to try again."""
    answer, _ = run(lambda: _stop_with_collect_in_flight(services, grace_seconds=0.5, lock_seconds=None))
    assert answer == RESTARTING


def test_sigterm_to_the_slack_bot_answers_a_cut_off_command_and_closes_the_socket(
    bot_settings: Settings,  # noqa: F811
    services: Services,  # noqa: F811
) -> None:
    """What must hold: the Slack caller of a command cut off by the stop is told to try again, and the bot
    returns without error."""
    from bot.slack_app import ADAPTER as SLACK
    from chatsmith.wiring import slack_config
    from tests.bot.test_slack_adapter import slack_settings
    from tests.fakes.slack import FakeSlack

    async def scenario() -> str | None:
        async with FakeSlack() as fake:
            config = slack_config(slack_settings(bot_settings, services, fake))
            bot = asyncio.create_task(run_adapter(SLACK, config, services, grace_seconds=0.5))
            await fake.wait_for_socket(timeout=15)
            blocker = _hold_write_lock(services)
            try:
                form = fake.slash_command_form("/chatsmith", "collect on", user=fake.bob.id)
                envelope = await fake.send_socket_slash_command("/chatsmith", "collect on", form=form)
                await envelope.wait_for_ack()
                await asyncio.sleep(0.2)  # the command is now waiting for the database
                os.kill(os.getpid(), signal.SIGTERM)
                answer = (await fake.wait_for_response_post(timeout=10)).text
                await asyncio.wait_for(bot, timeout=15)
            finally:
                blocker.rollback()
                blocker.close()
            return answer

    assert run(scenario) == RESTARTING
