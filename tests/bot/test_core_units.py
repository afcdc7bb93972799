"""Unit tests of the command core's parts: safety, parsing, cooldowns, permissions, cache, pool, chart."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.core.charts import render_stats_chart
from bot.core.cooldowns import CooldownRule, Cooldowns, describe_wait
from bot.core.errors import GenerationBusy
from bot.core.generation import GenerationPool
from bot.core.models import ModelCache
from bot.core.parsing import command_for_slash, parse_command_text
from bot.core.request import ADMINISTRATOR, MANAGE_SERVER, AdminPolicy, Request
from bot.core.safety import (
    EMPTY_GENERATION,
    cut_to_limit,
    generated_or_friendly,
    make_safe,
    neutralise_mentions,
)
from textgen.sampling import SamplingParams

MENTION_BOMB = "@everyone @here <@123> <@!456> <@&789> <!everyone> <!here> <!channel> <@U0ALICE001> hi"


def test_discord_mentions_are_neutralised() -> None:
    safe = neutralise_mentions(MENTION_BOMB, "discord")
    assert "@everyone" not in safe and "@here" not in safe
    for mention in ("<@123>", "<@!456>", "<@&789>"):
        assert mention not in safe
    assert "everyone" in safe and "hi" in safe  # still readable


def test_broadcasts_glued_to_more_letters_are_neutralised_too() -> None:
    # Discord pings everyone for "@everyone_x" or "@here2": no word boundary is needed after the name.
    for text in ("@everyone_x", "@EVERYONE1", "@here_and_now", "a@everyone"):
        for platform in ("discord", "slack"):
            safe = neutralise_mentions(text, platform)
            assert "@everyone" not in safe.lower() and "@here" not in safe.lower(), (platform, safe)


def test_slack_mentions_are_neutralised() -> None:
    safe = neutralise_mentions(MENTION_BOMB + " & <https://x.example|x>", "slack")
    assert "<" not in safe and ">" not in safe
    assert "&lt;!here&gt;" in safe and "&amp;" in safe
    assert "@here" not in safe and "@everyone" not in safe


def test_cut_at_word_boundary_under_limit() -> None:
    text = "word " * 1000
    cut = cut_to_limit(text, 2000)
    assert len(cut) <= 2000 and cut.endswith("…") and cut[:-1].endswith("word")
    assert cut_to_limit("short", 2000) == "short"
    assert cut_to_limit("x" * 50, 10) == "x" * 9 + "…"  # no space at all: cut mid-word
    assert len(make_safe("<" * 5000, "slack")) <= 3000
    assert not make_safe("<" * 5000, "slack").removesuffix("…").endswith("&")


def test_empty_generation_gets_a_friendly_line() -> None:
    assert generated_or_friendly("  \n") == EMPTY_GENERATION
    assert generated_or_friendly("text") == "text"


def test_parse_command_text() -> None:
    assert parse_command_text("/generate once upon a time length:80 temperature:0.9") == (
        "generate",
        {"prompt": "once upon a time", "length": "80", "temperature": "0.9"},
    )
    assert parse_command_text("train workspace backfill:500") == (
        "train",
        {"scope": "workspace", "backfill": "500"},
    )
    assert parse_command_text("/forget") == ("forget-me", {})
    assert parse_command_text("collect on") == ("collect", {"state": "on"})
    # An option another command has stays part of the prompt.
    assert parse_command_text("generate backfill:3") == ("generate", {"prompt": "backfill:3"})
    assert parse_command_text("   ") == ("", {})
    assert command_for_slash("/train", "backfill:10") == ("train", {"backfill": "10"})
    assert command_for_slash("/chatsmith", "status") == ("status", {})


def test_cooldowns_per_user_and_channel() -> None:
    now = [100.0]
    cooldowns = Cooldowns({"generate": CooldownRule(per_user=10, per_channel=2)}, clock=lambda: now[0])
    ann, bob, general = ("d", "g", "ann"), ("d", "g", "bob"), ("d", "g", "general")
    assert cooldowns.check_and_start("generate", ann, general) == 0
    assert cooldowns.check_and_start("generate", bob, general) == pytest.approx(2)  # channel
    now[0] += 2
    assert cooldowns.check_and_start("generate", bob, general) == 0
    assert cooldowns.check_and_start("generate", ann, general) == pytest.approx(8)  # user
    assert cooldowns.check_and_start("status", ann, general) == 0  # no rule
    assert describe_wait(7.2) == "8 s" and describe_wait(125) == "2 min 5 s"


def test_cooldowns_forget_waits_that_have_passed() -> None:
    now = [0.0]
    cooldowns = Cooldowns(
        {"generate": CooldownRule(per_user=5, per_channel=1)}, clock=lambda: now[0], prune_every=60
    )
    for user in range(1000):
        now[0] += 0.01
        cooldowns.check_and_start("generate", ("d", "g", f"user{user}"), ("d", "g", "general"))
    assert cooldowns.remembered() > 2
    now[0] += 60  # every wait has passed
    assert cooldowns.check_and_start("generate", ("d", "g", "ann"), ("d", "g", "general")) == 0
    assert cooldowns.remembered() == 2, "only ann's and the channel's running waits are left"
    # What was forgotten had passed anyway: the next call behaves as it would have.
    assert cooldowns.check_and_start("generate", ("d", "g", "user1"), ("d", "g", "other")) == 0


def test_admin_is_denied_by_default() -> None:
    policy = AdminPolicy(role_ids=frozenset({"111:777"}), user_ids=frozenset({"U42"}))

    def request(**fields: object) -> Request:
        workspace = str(fields.pop("workspace", "111"))
        return Request(
            "discord", workspace, "c", str(fields.pop("user", "u1")), "train", policy=policy, **fields
        )  # type: ignore[arg-type]

    assert not request().is_admin
    assert not Request("discord", "111", "c", "", "train").is_admin
    assert request(permissions=frozenset({ADMINISTRATOR})).is_admin
    assert request(permissions=frozenset({MANAGE_SERVER})).is_admin
    assert request(roles=("777",)).is_admin
    # A role id counts only in its own server, and a role's name never counts.
    assert not request(roles=("777",), workspace="222").is_admin
    assert not request(roles=("ChatSmith-Admin", "Mods", "111:777")).is_admin
    assert request(user="U42").is_admin
    assert not request(permissions=frozenset({"send_messages"}), roles=("members",)).is_admin


class FakeGenerator:
    """Stands in for `textgen.Generator`: echoes prompts and records batch sizes."""

    def __init__(self, name: str, delay: float = 0.0, text: str = " and more", nbytes: int = 100) -> None:
        self.name = name
        self.delay = delay
        self.text = text
        self.nbytes = nbytes
        self.batches: list[int] = []

    def generate_many(
        self, prompts: list[str], params: list[SamplingParams], contexts: object = None
    ) -> list[str]:
        self.batches.append(len(prompts))
        time.sleep(self.delay)
        return [f"{self.text}" for _ in prompts]


def _bundle(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "bundle.json").write_text("{}")
    return path


def test_model_cache_is_lru_and_reloads_a_rewritten_bundle(tmp_path: Path) -> None:
    loaded: list[str] = []

    def loader(path: Path) -> FakeGenerator:
        loaded.append(path.name)
        return FakeGenerator(path.name)

    cache = ModelCache(max_bytes=200, loader=loader)  # type: ignore[arg-type]
    a, b, c = (_bundle(tmp_path / name) for name in "abc")
    assert cache.get(a) is cache.get(a)
    cache.get(b)
    cache.get(c)  # evicts a
    assert [p.name for p in cache.loaded_paths()] == ["b", "c"]
    cache.get(a)
    assert loaded == ["a", "b", "c", "a"]
    # A bundle replaced in place has a new manifest time: the next use loads it again.
    time.sleep(0.01)
    (a / "bundle.json").write_text('{"new": true}')
    cache.get(a)
    assert loaded[-1] == "a" and len(loaded) == 5


def test_model_cache_keeps_models_up_to_its_bytes(tmp_path: Path) -> None:
    sizes = {"small": 30, "medium": 60, "large": 500}

    def loader(path: Path) -> FakeGenerator:
        return FakeGenerator(path.name, nbytes=sizes[path.name.split("-")[0]])

    cache = ModelCache(max_bytes=100, loader=loader)  # type: ignore[arg-type]
    for name in ("small-1", "small-2", "small-3"):
        cache.get(_bundle(tmp_path / name))
    assert cache.bytes == 90 and len(cache.loaded_paths()) == 3
    cache.get(_bundle(tmp_path / "medium-1"))  # 150 bytes: the two oldest go
    assert [p.name for p in cache.loaded_paths()] == ["small-3", "medium-1"] and cache.bytes == 90
    # A model larger than the whole cache is still served, alone.
    large = cache.get(_bundle(tmp_path / "large-1"))
    assert large.nbytes == 500 and [p.name for p in cache.loaded_paths()] == ["large-1"]
    assert cache.loads == 5 and cache.evictions == 4


def test_model_cache_shares_one_load_between_threads(tmp_path: Path) -> None:
    started = threading.Event()
    calls: list[Path] = []

    def slow_loader(path: Path) -> FakeGenerator:
        calls.append(path)
        started.set()
        time.sleep(0.2)
        return FakeGenerator(path.name)

    cache = ModelCache(loader=slow_loader)  # type: ignore[arg-type]
    bundle = _bundle(tmp_path / "m")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: cache.get(bundle), range(4)))
    assert len(calls) == 1 and all(r is results[0] for r in results)


def test_pool_batches_concurrent_requests_per_model(tmp_path: Path) -> None:
    generators: dict[str, FakeGenerator] = {}

    def loader(path: Path) -> FakeGenerator:
        return generators.setdefault(path.name, FakeGenerator(path.name, delay=0.05))

    pool = GenerationPool(ModelCache(loader=loader), workers=2, max_batch=8)  # type: ignore[arg-type]
    one, two = _bundle(tmp_path / "one"), _bundle(tmp_path / "two")
    try:
        futures = [
            pool.submit(one if i % 2 else two, f"p{i}", SamplingParams(max_tokens=3)) for i in range(20)
        ]
        assert [f.result(timeout=5) for f in futures] == [" and more"] * 20
    finally:
        pool.close()
    for generator in generators.values():
        assert sum(generator.batches) == 10
        # The first request decodes alone; the others waited together behind it.
        assert len(generator.batches) < 10 and max(generator.batches) > 1
        assert max(generator.batches) <= 8


def test_a_full_pool_refuses_at_once_and_accepts_again_when_drained(tmp_path: Path) -> None:
    release = threading.Event()

    class Stuck(FakeGenerator):
        def generate_many(
            self, prompts: list[str], params: list[SamplingParams], contexts: object = None
        ) -> list[str]:
            release.wait(5)
            return super().generate_many(prompts, params)

    pool = GenerationPool(
        ModelCache(loader=lambda path: Stuck(path.name)),  # type: ignore[arg-type, return-value]
        workers=1,
        max_queued=3,
    )
    bundle = _bundle(tmp_path / "m")
    try:
        waiting = [pool.submit(bundle, f"p{i}", SamplingParams()) for i in range(3)]
        began = time.monotonic()
        with pytest.raises(GenerationBusy, match="busy right now, try again in a moment"):
            pool.submit(bundle, "one too many", SamplingParams())
        assert time.monotonic() - began < 1, "refused at once, not after a wait"
        assert pool.refused == 1
        release.set()
        assert [f.result(timeout=5) for f in waiting] == [" and more"] * 3
        assert pool.submit(bundle, "again", SamplingParams()).result(timeout=5) == " and more"
        assert pool.outstanding == 0
    finally:
        release.set()
        pool.close()


def test_pool_reports_load_errors_to_every_waiter(tmp_path: Path) -> None:
    from textgen.errors import TextgenError

    def loader(path: Path) -> FakeGenerator:
        raise TextgenError(f"model bundle {path} does not exist")

    pool = GenerationPool(ModelCache(loader=loader), workers=1)  # type: ignore[arg-type]
    try:
        futures = [pool.submit(tmp_path / "gone", "x", SamplingParams()) for _ in range(3)]
        for future in futures:
            with pytest.raises(TextgenError, match="does not exist"):
                future.result(timeout=5)
        # The worker survived: the next request is served.
        good = _bundle(tmp_path / "good")
        with pytest.raises(TextgenError):
            pool.submit(good, "x", SamplingParams()).result(timeout=5)
    finally:
        pool.close()


def test_stats_chart_is_a_png() -> None:
    from datetime import UTC, datetime, timedelta

    history = [{"epoch": 1, "loss": 3.0, "val_loss": 3.2}, {"epoch": 2, "loss": 2.5, "val_loss": 2.9}]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    png = render_stats_chart(
        "#general: channel model v1", history, [((start + timedelta(days=i)).date(), 3 + i) for i in range(5)]
    )
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    assert render_stats_chart("empty", [], []).startswith(b"\x89PNG")


def test_stats_has_a_cooldown_by_default() -> None:
    from chatsmith.settings import Settings
    from chatsmith.wiring import bot_config

    config = bot_config(Settings(_env_file=None, base_model_path="none"))  # type: ignore[call-arg]
    now = [0.0]
    cooldowns = Cooldowns(config.cooldowns, lambda: now[0])
    assert cooldowns.check_and_start("stats", ("d", "g", "ann"), ("d", "g", "general")) == 0
    # Each /stats draws a chart: asking again at once waits, for the caller and for the channel.
    assert cooldowns.check_and_start("stats", ("d", "g", "ann"), ("d", "g", "general")) > 0
    assert cooldowns.check_and_start("stats", ("d", "g", "bob"), ("d", "g", "general")) > 0


def test_the_prompt_cap_counts_tokens_not_characters() -> None:
    from bot.core.handlers.generate import MAX_PROMPT_TOKENS, cap_prompt
    from textgen.tokenizers import ByteTokenizer

    emoji = "🙂" * MAX_PROMPT_TOKENS  # 500 characters, 2,000 bytes
    capped = cap_prompt(emoji)
    assert len(ByteTokenizer().encode(capped)) <= MAX_PROMPT_TOKENS
    assert capped == "🙂" * (MAX_PROMPT_TOKENS // 4)  # whole characters only
    assert cap_prompt("plain words") == "plain words"
