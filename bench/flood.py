"""Fair-use benchmark: one workspace floods `/train` and `/generate` at ten times its cooldowns; does
another workspace still get its replies on time and its training next?

    python -m bench.flood [--tiny] [--seconds S] [--out FILE]

Everything runs through the command core as the console sends it (`CommandCore.handle`: admission with
the deployed cooldowns, then the handler), with the bots' services built as `chatsmith bot` builds them
(the real generation pool, its per-workspace share, the packaged base model answering) on an embedded
SQLite database.

1. Quiet: workspace B's members ask `/generate` in `B_CHANNELS` channels, each channel once per its
   channel cooldown (members take turns, so no one waits on their own cooldown).
2. Flooded: the same load from B while workspace A's members ask `/generate` in each of A's channels ten
   times per channel cooldown, and its admins `/train` ten times per `/train` channel cooldown.
3. Training order: the trainer is busy with A's first job; B's admin asks `/train`; the queue is then
   claimed job by job as the trainer claims it (`db.jobs.claim_next_job`), and B's rank is recorded.

B's p99 time to a reply is measured in both phases of the same run and reported with their ratio (goal:
at most 2), and B's rank among the claims (goal: 1, next; a single FIFO would put it after all of A's).
A full run adds its table to `bench/RESULTS.md` under its own heading; `--tiny` is a smoke test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.serving_parts import p99
from bot import defaults as bot_defaults
from bot.core import CommandCore, Services
from bot.core.request import ADMINISTRATOR, IncomingMessage, Reply, Request
from chatsmith.settings import Settings
from chatsmith.wiring import bot_services
from db.jobs import claim_next_job
from db.models import Workspace

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "RESULTS.md"
HEADING = "## Fair use under a flood (`python -m bench.flood`)"
FLOOD_FACTOR = 10
ADMIN = frozenset({ADMINISTRATOR})
LINES = [f"message {number} about the weather, the trains and the garden" for number in range(40)]


@dataclass(frozen=True)
class Size:
    """How big a run is."""

    seconds: float
    a_channels: int
    b_channels: int
    length: int


FULL = Size(seconds=30.0, a_channels=8, b_channels=4, length=bot_defaults.DEFAULT_LENGTH)
TINY = Size(seconds=2.0, a_channels=2, b_channels=1, length=8)


@dataclass
class Tally:
    """What one sender's requests got: times to an answer, and how many were refused."""

    seconds: list[float] = field(default_factory=list)
    refused: int = 0
    busy: int = 0


def build(work: Path) -> tuple[Services, CommandCore]:
    """The bots' services with the deployed defaults (cooldowns, shares), on a new database in `work`."""
    settings = Settings(_env_file=None, data_dir=work / "data")  # type: ignore[call-arg]
    services = bot_services(settings, migrate_new_database=True)
    # A handful of messages per channel is enough to queue a job here: nothing is trained.
    services.config = replace(services.config, min_training_messages=1)
    return services, CommandCore(services)


def request(workspace: str, channel: str, user: str, command: str, **args: Any) -> Request:
    return Request(
        platform="console",
        workspace=workspace,
        channel=channel,
        user=user,
        command=command,
        args=args,
        permissions=ADMIN if command in ("train", "collect") else frozenset(),
    )


async def seed(core: CommandCore, workspace: str, channels: int) -> None:
    """Collection on in each channel, with a few messages to train on."""
    start = datetime.now(UTC) - timedelta(days=1)
    for number in range(channels):
        channel = f"{workspace}-c{number}"
        await core.handle(request(workspace, channel, f"{channel}-admin", "collect", state="on"))
        for index, line in enumerate(LINES[:10]):
            message = IncomingMessage(
                "console",
                workspace,
                channel,
                f"{channel}-m{index}",
                "member",
                line,
                start + timedelta(minutes=index),
            )
            await core.collect_message(message)


async def sender(
    core: CommandCore, make: Callable[[int], Request], period: float, until: float, tally: Tally
) -> None:
    """Send `make(n)` every `period` seconds until `until`, each without waiting for the last answer.

    Admission is checked at the moment of sending, as adapters do before they defer, and the next send
    is `period` after it, so a steady sender is never refused because the event loop ran late.
    """
    pending: list[Awaitable[None]] = []

    async def answer(sent: Request, began: float) -> None:
        reply: Reply = await core.run(sent)
        if reply.ephemeral and "busy" in reply.text.lower():
            tally.busy += 1
        else:
            tally.seconds.append(time.monotonic() - began)

    number = 0
    next_at = time.monotonic()
    while next_at < until:
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        began = time.monotonic()
        sent = make(number)
        if core.admit(sent) is not None:
            tally.refused += 1
        else:
            pending.append(asyncio.ensure_future(answer(sent, began)))
        number += 1
        next_at = began + period
    await asyncio.gather(*pending)


def generate_maker(
    workspace: str, channel: str, users: int, length: int, phase_name: str
) -> Callable[[int], Request]:
    # Each phase has members of its own: the quiet phase's never wait on their cooldown in the next.
    return lambda n: request(
        workspace, channel, f"{channel}-{phase_name}-u{n % users}", "generate", prompt="the", length=length
    )


async def phase(core: CommandCore, size: Size, flooded: bool, tallies: dict[str, Tally]) -> None:
    """One phase: B's steady load, and A's flood when `flooded`."""
    generate_user, generate_channel = bot_defaults.COOLDOWNS["generate"]
    train_user, train_channel = bot_defaults.COOLDOWNS["train"]
    until = time.monotonic() + size.seconds
    phase_name = "flood" if flooded else "quiet"
    # B: one request per channel cooldown (a little over it), members in turn past their own cooldown.
    b_users = int(generate_user / generate_channel) + 1
    senders = [
        sender(
            core,
            generate_maker("B", f"B-c{n}", b_users, size.length, phase_name),
            generate_channel * 1.05,
            until,
            tallies["B"],
        )
        for n in range(size.b_channels)
    ]
    if flooded:
        a_period = generate_channel / FLOOD_FACTOR
        a_users = int(generate_user / a_period) + 1
        train_period = train_channel / FLOOD_FACTOR
        train_users = int(train_user / train_period) + 1
        for n in range(size.a_channels):
            channel = f"A-c{n}"
            senders.append(
                sender(
                    core,
                    generate_maker("A", channel, a_users, size.length, phase_name),
                    a_period,
                    until,
                    tallies["A"],
                )
            )
            senders.append(
                sender(
                    core,
                    lambda k, channel=channel: request(
                        "A", channel, f"{channel}-admin{k % train_users}", "train"
                    ),  # type: ignore[misc]
                    train_period,
                    until,
                    tallies["A train"],
                )
            )
    await asyncio.gather(*senders)


def training_order(services: Services, core: CommandCore, runner: asyncio.Runner) -> dict[str, Any]:
    """The trainer takes A's first job; B asks `/train`; then every queued job is claimed in turn."""
    first = claim_next_job(services.engine, "bench-trainer")
    runner.run(core.handle(request("B", "B-c0", "B-c0-admin", "train")))
    with services.sessions() as session:
        workspace_ids = {ws.external_id: ws.id for ws in session.query(Workspace)}
    claims = []
    while (job := claim_next_job(services.engine, "bench-trainer")) is not None:
        claims.append("B" if job.workspace_id == workspace_ids["B"] else "A")
    return {
        "running": "A" if first is not None and first.workspace_id == workspace_ids["A"] else "none",
        "a_queued": claims.count("A"),
        "b_rank": claims.index("B") + 1 if "B" in claims else None,
        "claims": len(claims),
    }


def p99_ms(seconds: list[float]) -> float:
    """The 99th percentile in milliseconds; NaN when nothing was answered."""
    return p99(sorted(seconds)) * 1000 if seconds else float("nan")


def measure(size: Size) -> dict[str, Any]:
    """Run the three parts and return their figures."""
    with tempfile.TemporaryDirectory(prefix="chatsmith-flood-") as work:
        services, core = build(Path(work))
        try:
            with asyncio.Runner() as runner:
                runner.run(seed(core, "A", size.a_channels))
                runner.run(seed(core, "B", size.b_channels))
                # Warm the model cache and the copy guards, so neither phase pays the first load.
                runner.run(core.run(request("B", "B-c0", "warm", "generate", prompt="the", length=4)))
                quiet = {"A": Tally(), "B": Tally(), "A train": Tally()}
                runner.run(phase(core, size, False, quiet))
                # B's channels come out of their cooldown before the next phase starts.
                runner.run(asyncio.sleep(bot_defaults.COOLDOWNS["generate"][1] * 1.1))
                flooded = {"A": Tally(), "B": Tally(), "A train": Tally()}
                runner.run(phase(core, size, True, flooded))
                order = training_order(services, core, runner)
        finally:
            services.close()
    quiet_p99, flooded_p99 = p99_ms(quiet["B"].seconds), p99_ms(flooded["B"].seconds)
    return {
        "size": size.__dict__,
        "quiet": {"b_answered": len(quiet["B"].seconds), "b_p99_ms": quiet_p99},
        "flooded": {
            "b_answered": len(flooded["B"].seconds),
            "b_refused": flooded["B"].refused + flooded["B"].busy,
            "b_p99_ms": flooded_p99,
            "a_sent": len(flooded["A"].seconds) + flooded["A"].refused + flooded["A"].busy,
            "a_answered": len(flooded["A"].seconds),
            "a_refused_cooldown": flooded["A"].refused,
            "a_refused_busy": flooded["A"].busy,
            "a_train_sent": len(flooded["A train"].seconds) + flooded["A train"].refused,
            "a_train_refused_cooldown": flooded["A train"].refused,
        },
        "ratio": flooded_p99 / quiet_p99,
        "order": order,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end",
    }


def format_section(record: dict[str, Any]) -> str:
    """The Markdown section of a run: B's p99 quiet and flooded, their ratio, and B's training rank."""
    quiet, flooded, order = record["quiet"], record["flooded"], record["order"]
    ratio_ok = "met" if record["ratio"] <= 2 else "NOT met"
    rank_ok = "met" if order["b_rank"] == 1 else "NOT met"
    size = record["size"]
    return "\n".join(
        [
            HEADING,
            "",
            f"{record['date']}; {record['machine']} (a machine shared with other work: figures are noisy). "
            f"{size['seconds']:.0f} s per phase; workspace A floods from {size['a_channels']} channels, B asks in "
            f"{size['b_channels']}; replies of {size['length']} tokens from the packaged base model; the deployed "
            "cooldowns and queue shares.",
            "",
            "| figure | quiet | A flooding | goal |",
            "| --- | --- | --- | --- |",
            f"| B's `/generate` p99 | {quiet['b_p99_ms']:.0f} ms ({quiet['b_answered']} answered) | "
            f"{flooded['b_p99_ms']:.0f} ms ({flooded['b_answered']} answered, {flooded['b_refused']} refused) | "
            f"ratio {record['ratio']:.2f}, at most 2: {ratio_ok} |",
            f"| A's `/generate` | — | {flooded['a_sent']} sent, {flooded['a_answered']} answered, "
            f"{flooded['a_refused_cooldown']} refused by cooldowns, {flooded['a_refused_busy']} busy | — |",
            f"| A's `/train` | — | {flooded['a_train_sent']} sent, {flooded['a_train_refused_cooldown']} refused "
            f"by cooldowns; {order['a_queued']} of A's jobs queued behind the one training | — |",
            f"| B's `/train` | — | claimed {order['b_rank']} of {order['claims']} | next (1): {rank_ok} |",
            "",
        ]
    )


def write_section(section: str, path: Path) -> None:
    """Put `section` in `path` in place of an earlier run's (or at the end)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flood", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a smoke test: 2 s phases, short replies")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per phase (default 30)")
    parser.add_argument("--out", type=Path, default=None, help="Markdown file (default: bench/RESULTS.md)")
    args = parser.parse_args(argv)
    size = TINY if args.tiny else FULL
    if args.seconds is not None:
        size = replace(size, seconds=args.seconds)
    record = measure(size)
    section = format_section(record)
    print(section)
    out = args.out if args.out is not None else (None if args.tiny else RESULTS)
    if out is not None:
        write_section(section, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
