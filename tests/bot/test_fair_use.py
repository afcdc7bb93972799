"""Fair use: every member command has a cooldown, and one workspace's queue shares are capped."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot import defaults as bot_defaults
from bot.core.catalog import DECLARED
from chatsmith.settings import Settings, SettingsError, load_settings
from chatsmith.wiring import bot_config, bot_services
from tests.bot.conftest import Chat

CHANNEL_LINES = [f"line {number} of the general channel, said by a member" for number in range(8)]


def test_every_member_command_declares_a_cooldown() -> None:
    for spec in DECLARED:
        per_user, per_channel = spec.cooldown
        assert spec.cooldown == bot_defaults.COOLDOWNS[spec.name], spec.name
        if not spec.admin:
            assert per_user > 0, f"{spec.name} can be run back to back by one member"
    assert set(bot_defaults.COOLDOWNS) == {spec.name for spec in DECLARED}


def test_a_deployed_bot_has_a_cooldown_for_every_command() -> None:
    config = bot_config(Settings(_env_file=None))  # type: ignore[call-arg]
    assert set(config.cooldowns) == {spec.name for spec in DECLARED}
    for name in ("my-data", "forget-me", "status", "imitate-me", "help"):
        assert config.cooldowns[name].per_user > 0, name


def test_cooldowns_setting_overrides_any_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHATSMITH_COOLDOWNS", "my-data:600/0, generate:2/0.5")
    config = bot_config(load_settings(None))
    assert (config.cooldowns["my-data"].per_user, config.cooldowns["my-data"].per_channel) == (600, 0)
    assert (config.cooldowns["generate"].per_user, config.cooldowns["generate"].per_channel) == (2, 0.5)
    assert config.cooldowns["status"].per_user == bot_defaults.COOLDOWNS["status"][0]


@pytest.mark.parametrize("value", ["dance:1/1", "my-data:60", "my-data:x/1", "status:-1/0"])
def test_a_bad_cooldowns_setting_is_one_line(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CHATSMITH_COOLDOWNS", value)
    with pytest.raises(SettingsError) as error:
        load_settings(None)
    (line,) = error.value.problems
    assert line.startswith("CHATSMITH_COOLDOWNS: ") and "\n" not in line


def test_my_data_twice_at_once_waits(chat: Chat) -> None:
    deployed = bot_config(Settings(_env_file=None))  # type: ignore[call-arg]
    chat.services.config = replace(chat.services.config, cooldowns=deployed.cooldowns)
    chat.core = type(chat.core)(chat.services)
    ann = chat.user("ann")
    ann.say("/my-data")
    assert "Slow down: try `my-data` again in 5 min." in ann.say("/my-data")
    # Another member in the same channel is not held up by ann's request.
    assert "Slow down" not in chat.user("bob").say("/my-data")


def test_train_refuses_past_the_workspace_cap_in_one_line(chat: Chat) -> None:
    chat.services.config = replace(chat.services.config, train_queue_per_workspace=1)
    admin = chat.user("root", admin=True)
    for channel in ("general", "random"):
        room_admin = chat.user("root", admin=True, channel=channel)
        room_admin.say("/collect on")
        for line in CHANNEL_LINES[:6]:
            chat.user("ann", channel=channel).say(line)
    assert "Training queued for #general" in admin.say("/train")
    answer = chat.user("root", admin=True, channel="random").say("/train")
    assert "Not queued: this workspace already has 1 training jobs queued" in answer
    assert "\n" not in answer.strip()
    # Another workspace is not held by this one's queue.
    other = chat.user("root", admin=True, workspace="other")
    other.say("/collect on")
    for line in CHANNEL_LINES[:6]:
        chat.user("ann", workspace="other").say(line)
    assert "Training queued for #general" in other.say("/train")


def test_generate_uses_its_workspaces_share_of_the_pool(chat: Chat) -> None:
    asked: list[Any] = []
    pool = chat.services.generation
    real = pool.generate

    async def recording(*args: Any, **kwargs: Any) -> str:
        asked.append(kwargs.get("workspace"))
        return await real(*args, **kwargs)

    pool.generate = recording  # type: ignore[method-assign]
    chat.user("ann", workspace="team").say("/generate hello there length:4")
    assert asked == ["console:team"]


def test_the_deployed_pool_caps_each_workspace(bot_settings: Settings) -> None:
    services = bot_services(
        bot_settings.model_copy(update={"generation_queue_per_workspace": 3}), migrate_new_database=True
    )
    try:
        assert services.generation.max_queued_per_workspace == 3
    finally:
        services.close()
    assert Settings(_env_file=None).generation_queue_per_workspace == bot_defaults.GENERATION_QUEUE_MAX // 4  # type: ignore[call-arg]


def test_stats_draws_its_chart_off_the_thread_generate_waits_on(
    chat: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from bot.core.charts import render_stats_chart
    from bot.core.handlers import status

    drawn_on: list[str] = []
    chart_started, release_chart = threading.Event(), threading.Event()

    def slow_chart(*args: Any) -> bytes:
        drawn_on.append(threading.current_thread().name)
        chart_started.set()
        release_chart.wait(60)
        return render_stats_chart(*args)

    monkeypatch.setattr(status, "render_stats_chart", slow_chart)
    admin = chat.user("root", admin=True)
    admin.say("/collect on")
    for line in CHANNEL_LINES[:3]:
        chat.user("ann").say(line)

    async def scenario() -> tuple[str, str]:
        import asyncio

        stats = asyncio.ensure_future(admin.console.say("/stats"))
        await asyncio.get_running_loop().run_in_executor(None, chart_started.wait, 10)
        # The chart is still drawing: a /generate must not queue behind it for its copy guards.
        try:
            generated = await asyncio.wait_for(chat.user("bob").console.say("/generate hi length:4"), 8)
        finally:
            release_chart.set()
        return "\n".join(generated), "\n".join(await stats)

    generated, stats_answer = chat.runner.run(scenario())
    assert generated and "3 messages collected here" in stats_answer
    assert drawn_on and not drawn_on[0].startswith("chatsmith-work")
