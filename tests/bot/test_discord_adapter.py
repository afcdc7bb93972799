"""The Discord adapter with the real discord.py client against the fake Discord server."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest
from sqlalchemy import select

from bot import discord_commands
from bot.core import AdminPolicy, Services
from bot.core.catalog import COMMANDS, DECLARED
from bot.core.platform import ERROR_REPLY
from bot.discord_bot import ChatsmithDiscordBot, ShardedChatsmithDiscordBot, build_discord_bot
from chatsmith.settings import Settings
from chatsmith.wiring import discord_config
from db.models import Channel, Message, UserOptOut
from tests.bot.conftest import CHANNEL_LINES
from tests.bot.helpers import (
    LOOP_BLOCKED_S,
    LoopLagProbe,
    answers,
    eventually,
    record_commands,
    run,
    run_trainer_once,
)
from tests.bot.test_core_units import MENTION_BOMB
from tests.fakes.discord import EPHEMERAL, MEMBER_PERMISSIONS, FakeDiscord

NO_PINGS = {"parse": []}


def count_messages(services: Services) -> int:
    with services.sessions() as session:
        return len(session.scalars(select(Message)).all())


@asynccontextmanager
async def running_bot(
    settings: Settings, services: Services
) -> AsyncIterator[tuple[FakeDiscord, ChatsmithDiscordBot]]:
    """The fake Discord and the chatsmith bot connected to it, ready; fails if the bot's task dies."""
    async with FakeDiscord() as fake, fake.install(), connected(settings, services) as bot:
        yield fake, bot


@asynccontextmanager
async def connected(settings: Settings, services: Services) -> AsyncIterator[ChatsmithDiscordBot]:
    """A chatsmith bot connected to the installed fake Discord, ready; fails if the bot's task dies."""
    bot = build_discord_bot(discord_config(settings), services, guild_ready_timeout=0.05)
    task = asyncio.create_task(bot.start(FakeDiscord.TOKEN))
    try:
        ready = asyncio.create_task(bot.wait_until_ready())
        done, _ = await asyncio.wait({task, ready}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
        assert ready in done, "bot never became ready"
        yield bot
        assert not task.done(), "the bot's start() task died"
        assert list(bot.errors) == [], f"errors in handlers: {list(bot.errors)!r}"
    finally:
        await bot.close()
        await asyncio.gather(task, return_exceptions=True)


def test_commands_are_synced_with_their_help(bot_settings: Settings, services: Services) -> None:
    async def scenario() -> None:
        async with running_bot(bot_settings, services) as (fake, bot):
            commands = {c["name"]: c for c in fake.global_commands}
            assert set(commands) == {
                "generate",
                "train",
                "status",
                "models",
                "rollback",
                "collect",
                "forget-me",
                "my-data",
                "imitate-me",
                "stats",
                "help",
                "filter",
            }
            assert commands["generate"]["description"] == "Write something in this channel's voice."
            options = {o["name"]: o for o in commands["generate"]["options"]}
            assert options["length"]["type"] == 4 and not options["length"]["required"]
            assert [c["value"] for c in commands["collect"]["options"][0]["choices"]] == [
                "on",
                "off",
                "share",
                "unshare",
            ]

    run(scenario)


def test_every_declared_command_reaches_the_core(bot_settings: Settings, services: Services) -> None:
    async def scenario() -> None:
        async with running_bot(bot_settings, services) as (fake, bot):
            ran = record_commands(bot.core)
            assert [c["name"] for c in fake.global_commands] == list(COMMANDS)
            for name in COMMANDS:
                record = await fake.send_interaction(fake.guild.id, fake.channel.id, fake.bob.id, name)
                assert (await record.wait_for_followup(timeout=10)).content == f"ran {name}"
            assert ran == list(COMMANDS)

    run(scenario)


def test_the_command_tree_is_synced_only_when_it_changed(
    bot_settings: Settings, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = bot_settings.data_dir / "discord-commands.json"

    async def scenario() -> None:
        async with FakeDiscord() as fake, fake.install():
            syncs = f"/applications/{fake.application_id}/commands"
            async with connected(bot_settings, services):
                assert len(fake.calls_to("PUT", syncs)) == 1 and record.exists()
            async with connected(bot_settings, services):
                assert len(fake.calls_to("PUT", syncs)) == 1  # the same tree: not synced again
            changed = tuple(
                replace(spec, description="Every command.") if spec.name == "help" else spec
                for spec in DECLARED
            )
            monkeypatch.setattr(discord_commands, "DECLARED", changed)
            async with connected(bot_settings, services):
                assert len(fake.calls_to("PUT", syncs)) == 2
                help_command = next(c for c in fake.global_commands if c["name"] == "help")
                assert help_command["description"] == "Every command."
            record.write_text("{not json")  # a damaged record costs a sync, nothing else
            async with connected(bot_settings, services):
                assert len(fake.calls_to("PUT", syncs)) == 3
            async with connected(bot_settings, services):
                assert len(fake.calls_to("PUT", syncs)) == 3

    run(scenario)


def test_user_generates_and_a_non_admin_is_refused_train(bot_settings: Settings, services: Services) -> None:
    async def scenario() -> None:
        async with running_bot(bot_settings, services) as (fake, bot):
            record = await fake.send_interaction(
                fake.guild.id, fake.channel.id, fake.alice.id, "generate", {"prompt": "to be", "length": 12}
            )
            deferred = await record.wait_for_response()
            # Deferred privately (an error would reach only the caller); the answer is public.
            assert deferred.type == 5 and deferred.ephemeral
            answer = await record.wait_for_followup(timeout=30)
            assert answers(answer.content, "to be") and not answer.ephemeral
            assert answer.allowed_mentions == NO_PINGS
            assert answers(fake.messages_in(fake.channel.id)[-1]["content"], "to be")

            refused = await fake.send_interaction(fake.guild.id, fake.channel.id, fake.alice.id, "train")
            reply = await refused.wait_for_response()
            assert reply.type == 4 and reply.ephemeral
            assert "is for admins" in reply.content
            assert len(refused.followups) == 0

    run(scenario)


def test_collect_edit_delete_backfill_train_and_serve(bot_settings: Settings, services: Services) -> None:
    async def scenario() -> None:
        async with running_bot(bot_settings, services) as (fake, bot):
            general, guild = fake.channel.id, fake.guild.id
            old = fake.add_history(general, fake.alice.id, CHANNEL_LINES[:30])
            fake.add_message(general, fake.bob.id, "/generate old command, not conversation")

            opt_in = await fake.send_interaction(guild, general, fake.bob.id, "collect", {"state": "on"})
            assert (await opt_in.wait_for_response()).flags & EPHEMERAL
            assert "Collection is on in #general" in (await opt_in.wait_for_followup(timeout=10)).content

            sent = [
                await fake.dispatch_message_create(general, fake.alice.id, line)
                for line in CHANNEL_LINES[30:36]
            ]
            await fake.dispatch_message_create(general, fake.bot.id, "the bot's own words")
            await fake.dispatch_message_create(
                fake.other_channel.id, fake.alice.id, "not an opted-in channel"
            )
            await fake.dispatch_message_update(general, sent[0]["id"], "an edited line about the cat")
            await fake.dispatch_message_delete(general, sent[1]["id"])

            def stored() -> dict[str, Message]:
                with services.sessions() as session:
                    return {m.platform_message_id: m for m in session.scalars(select(Message))}

            await eventually(
                lambda: len(stored()) == 6 and stored()[sent[1]["id"]].deleted, what="collection"
            )
            rows = stored()
            assert rows[sent[0]["id"]].text == "an edited line about the cat"
            assert rows[sent[1]["id"]].text == ""
            assert {m.author_id for m in rows.values()} == {fake.alice.id}

            train = await fake.send_interaction(guild, general, fake.bob.id, "train", {"backfill": 100})
            assert (await train.wait_for_response()).type == 5
            progress = await train.wait_for_edit(
                lambda e: "Backfilling #general" in (e.content or ""), timeout=10
            )
            assert "kept" in progress.content
            done = await train.wait_for_followup(timeout=10)
            assert "Training queued for #general on 35 messages" in done.content, done.content
            assert "read 37 past messages and added 30 new ones" in done.content, done.content
            rows = stored()
            assert {m["id"] for m in old} <= set(rows)

            await run_trainer_once()

            status = await fake.send_interaction(guild, general, fake.alice.id, "status")
            await status.wait_for_response()
            assert "the channel model v1 answers" in (await status.wait_for_followup(timeout=10)).content

            generate = await fake.send_interaction(
                guild, general, fake.alice.id, "generate", {"prompt": "the cat"}
            )
            await generate.wait_for_response()
            assert answers((await generate.wait_for_followup(timeout=30)).content, "the cat")
            assert any("channel-" in str(path) for path in services.models.loaded_paths())

            stats = await fake.send_interaction(guild, general, fake.alice.id, "stats")
            await stats.wait_for_response()
            chart = await stats.wait_for_followup(timeout=20)
            assert chart.files[0].filename == "chatsmith-stats.png" and chart.files[0].data.startswith(
                b"\x89PNG"
            )

    run(scenario, timeout=180)


def test_forget_me_and_mention_bomb(bot_settings: Settings, services: Services) -> None:
    async def scenario() -> None:
        async with running_bot(bot_settings, services) as (fake, bot):
            general, guild = fake.channel.id, fake.guild.id
            opt_in = await fake.send_interaction(guild, general, fake.bob.id, "collect", {"state": "on"})
            await opt_in.wait_for_followup(timeout=10)
            for i in range(3):
                await fake.dispatch_message_create(general, fake.alice.id, f"alice line {i}")
            await fake.dispatch_message_create(general, fake.bob.id, "bob line")
            await eventually(lambda: count_messages(services) == 4, what="collection")

            forget = await fake.send_interaction(guild, general, fake.alice.id, "forget-me")
            assert (await forget.wait_for_response()).ephemeral
            assert "Deleted 3 of your messages" in (await forget.wait_for_followup(timeout=10)).content
            with services.sessions() as session:
                assert [m.author_id for m in session.scalars(select(Message))] == [fake.bob.id]
                assert session.scalars(select(UserOptOut.user_id)).all() == [fake.alice.id]

            bomb = await fake.send_interaction(
                guild, general, fake.alice.id, "generate", {"prompt": MENTION_BOMB}
            )
            await bomb.wait_for_response()
            reply = await bomb.wait_for_followup(timeout=30)
            assert reply.allowed_mentions == NO_PINGS
            for markup in ("@everyone", "@here", "<@123>", "<@!456>", "<@&789>"):
                assert markup not in reply.content
            # The public reply in channel history pings nobody either.
            posted = fake.messages_in(general)[-1]
            assert posted["mention_everyone"] is False and posted["mentions"] == []

    run(scenario)


def test_fifty_concurrent_generates_without_blocking_the_loop(
    bot_settings: Settings, services: Services
) -> None:
    async def scenario() -> None:
        async with running_bot(bot_settings, services) as (fake, bot):
            # Load the model first, so the burst measures serving (loading is off the loop too).
            warm = await fake.send_interaction(fake.guild.id, fake.channel.id, fake.alice.id, "generate")
            await warm.wait_for_followup(timeout=30)
            async with LoopLagProbe() as probe:
                records = await asyncio.gather(
                    *(
                        fake.send_interaction(
                            fake.guild.id,
                            fake.channel.id,
                            fake.alice.id,
                            "generate",
                            {"prompt": f"p{i}", "length": 16},
                        )
                        for i in range(50)
                    )
                )
                replies = await asyncio.gather(*(r.wait_for_followup(timeout=60) for r in records))
            assert all(r.response_delay is not None and r.response_delay < 3.0 for r in records)
            not_answers = {i: a.content for i, a in enumerate(replies) if not answers(a.content, f"p{i}")}
            errors = [repr(error) for error in bot.error_reporter.errors]
            assert not not_answers, f"not answers to their prompts: {not_answers}; errors logged: {errors}"
            assert probe.worst < LOOP_BLOCKED_S, f"event loop blocked for {probe.worst * 1000:.0f} ms"
            assert max(services.generation.batch_sizes) > 1, "concurrent requests were not batched"

    run(scenario, timeout=120)


def test_sharded_client_when_configured(bot_settings: Settings, services: Services) -> None:
    settings = bot_settings.model_copy(update={"discord_sharded": True})

    async def scenario() -> None:
        async with running_bot(settings, services) as (fake, bot):
            assert isinstance(bot, ShardedChatsmithDiscordBot)
            assert fake.calls_to("GET", "/gateway/bot")  # asks Discord for the recommended shard count
            record = await fake.send_interaction(fake.guild.id, fake.channel.id, fake.alice.id, "help")
            await record.wait_for_response()
            assert "Commands:" in (await record.wait_for_followup(timeout=10)).content

    run(scenario)


def test_a_failing_command_is_logged_answered_and_the_bot_lives_on(
    bot_settings: Settings, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with running_bot(bot_settings, services) as (fake, bot):

            async def broken(services: object, request: object) -> object:
                raise RuntimeError("database on fire")

            bot.core._handlers["help"] = broken
            record = await fake.send_interaction(fake.guild.id, fake.channel.id, fake.alice.id, "help")
            reply = await record.wait_for_followup(timeout=10)
            assert reply.content == ERROR_REPLY and "database on fire" not in reply.content
            assert [str(e.__cause__ or e) for e in bot.errors] == ["database on fire"]
            assert "discord command failed" in caplog.text
            bot.errors.clear()
            status = await fake.send_interaction(fake.guild.id, fake.channel.id, fake.alice.id, "status")
            assert "answers" in (await status.wait_for_followup(timeout=10)).content

    run(scenario)


def test_processes_split_the_shards_they_run(bot_settings: Settings, services: Services) -> None:
    settings = bot_settings.model_copy(
        update={"discord_sharded": True, "discord_shard_count": 4, "discord_shard_ids": [1, 3]}
    )
    bot = build_discord_bot(discord_config(settings), services)
    assert isinstance(bot, ShardedChatsmithDiscordBot)
    assert bot.shard_count == 4 and bot.shard_ids == [1, 3]


def test_shard_ids_need_a_count_and_must_fit_in_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from chatsmith.settings import load_settings

    monkeypatch.setenv("CHATSMITH_DISCORD_SHARD_IDS", "0,2")
    with pytest.raises(Exception, match="needs CHATSMITH_DISCORD_SHARD_COUNT"):
        load_settings()
    monkeypatch.setenv("CHATSMITH_DISCORD_SHARD_COUNT", "2")
    with pytest.raises(Exception, match=r"\[2\] not in 0..1"):
        load_settings()
    monkeypatch.setenv("CHATSMITH_DISCORD_SHARD_IDS", "0,1")
    assert load_settings().discord_shard_ids == [0, 1]


# A prompt with profanity and personal data: echoed back masked on every platform (output filter).
UNMASKED_PROMPT = "this shit, mail ann@example.org or call +1 555 123 4567"
MASKED_PROMPT = "this s***, mail [email] or call [phone]"


def test_replies_are_masked(bot_settings: Settings, services: Services) -> None:
    async def scenario() -> None:
        async with running_bot(bot_settings, services) as (fake, bot):
            record = await fake.send_interaction(
                fake.guild.id, fake.channel.id, fake.alice.id, "generate", {"prompt": UNMASKED_PROMPT}
            )
            await record.wait_for_response()
            answer = await record.wait_for_followup(timeout=30)
            assert answer.content.startswith(MASKED_PROMPT)
            assert "ann@example.org" not in answer.content

    run(scenario)


def test_admin_roles_count_by_id_in_their_own_server_never_by_name(
    bot_settings: Settings, services: Services
) -> None:
    async def scenario() -> None:
        async with running_bot(bot_settings, services) as (fake, bot):
            guild, general = fake.guild.id, fake.channel.id
            moderators = fake._role(fake.snowflake(), "Moderators", MEMBER_PERMISSIONS, position=5)
            # Anyone allowed to create roles can make one called like the old admin setting.
            self_made = fake._role(fake.snowflake(), "ChatSmith-Admin", MEMBER_PERMISSIONS, position=6)
            for role in (moderators, self_made):
                fake.guild.roles.append(role)
                await fake.dispatch("GUILD_ROLE_CREATE", {"guild_id": guild, "role": role})
            mallory = fake.add_member(guild, "mallory")
            mallory.role_ids.append(self_made["id"])
            alice_roles = fake.guild.members[fake.alice.id].role_ids
            alice_roles.append(moderators["id"])
            await eventually(
                lambda: bot.get_guild(int(guild)).get_role(int(self_made["id"])) is not None,  # type: ignore[union-attr]
                what="the roles",
            )
            bot.core.config = replace(
                bot.core.config,
                policy=AdminPolicy(
                    role_ids=frozenset({f"{guild}:{moderators['id']}", f"999:{self_made['id']}"})
                ),
            )

            refused = await fake.send_interaction(guild, general, mallory.id, "collect", {"state": "on"})
            assert "is for admins" in (await refused.wait_for_response()).content
            allowed = await fake.send_interaction(guild, general, fake.alice.id, "collect", {"state": "on"})
            assert "Collection is on" in (await allowed.wait_for_followup(timeout=10)).content

    run(scenario)


def test_a_private_channel_is_known_as_private(bot_settings: Settings, services: Services) -> None:
    async def scenario() -> None:
        async with running_bot(bot_settings, services) as (fake, bot):
            guild = fake.guild.id
            secret = fake.add_channel(guild, "secret", private=True)
            await fake.dispatch("CHANNEL_CREATE", secret.to_payload())
            await eventually(lambda: bot.get_channel(int(secret.id)) is not None, what="the channel")

            private = await fake.send_interaction(guild, secret.id, fake.bob.id, "collect", {"state": "on"})
            assert (
                "is private: its messages train only its own model"
                in (await private.wait_for_followup(timeout=10)).content
            )
            public = await fake.send_interaction(
                guild, fake.channel.id, fake.bob.id, "collect", {"state": "on"}
            )
            assert "is private" not in (await public.wait_for_followup(timeout=10)).content
            with services.sessions() as session:
                flags = dict(session.execute(select(Channel.external_id, Channel.private)).tuples().all())
            assert flags == {secret.id: True, fake.channel.id: False}

    run(scenario)


def test_errors_of_public_commands_reach_only_the_caller(bot_settings: Settings, services: Services) -> None:
    async def scenario() -> None:
        async with running_bot(bot_settings, services) as (fake, bot):
            # No model answers anywhere: generate's answer is an error.
            bot.core.services.config = replace(bot.core.services.config, base_model_path=None)
            record = await fake.send_interaction(
                fake.guild.id, fake.channel.id, fake.alice.id, "generate", {"prompt": "to be"}
            )
            assert (await record.wait_for_response()).ephemeral
            await eventually(
                lambda: (
                    any("No model answers here" in (e.data.get("content") or "") for e in record.followups)
                    or any("No model answers here" in (e.data.get("content") or "") for e in record.edits)
                ),
                timeout=10,
                what="the error",
            )
            await asyncio.sleep(0.2)
            assert all(
                "No model answers" not in (m.get("content") or "") for m in fake.messages_in(fake.channel.id)
            )

    run(scenario)


def test_my_data_reaches_only_the_caller(bot_settings: Settings, services: Services) -> None:
    async def scenario() -> None:
        async with running_bot(bot_settings, services) as (fake, bot):
            guild, general = fake.guild.id, fake.channel.id
            opt_in = await fake.send_interaction(guild, general, fake.bob.id, "collect", {"state": "on"})
            await opt_in.wait_for_followup(timeout=10)
            await fake.dispatch_message_create(general, fake.alice.id, "alice's only words")
            await eventually(lambda: count_messages(services) == 1, what="collection")

            record = await fake.send_interaction(guild, general, fake.alice.id, "my-data")
            assert (await record.wait_for_response()).ephemeral
            reply = await record.wait_for_followup(timeout=10)
            assert re.fullmatch(r"chatsmith-my-data-\d{8}-\d{6}\.json", reply.files[0].filename)
            assert b"alice's only words" in reply.files[0].data
            assert all(not m.get("attachments") for m in fake.messages_in(general))

    run(scenario)
