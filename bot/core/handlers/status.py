"""`status` and `stats`: which model answers in a channel and how it is doing, in words and in a chart."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from bot.core.charts import render_stats_chart
from bot.core.command_spec import COMMAND_PREFIXES
from bot.core.formatting import describe_job, describe_version
from bot.core.places import channel_label, find_place
from bot.core.request import Reply, Request
from bot.core.safety import safe_reply
from bot.core.services import Services
from bot.core.serving import serving_model
from db import jobs, messages
from db.filters import filter_settings
from db.models import ModelVersion, utcnow
from textgen.bundle import read_manifest

log = logging.getLogger(__name__)


async def status(services: Services, request: Request) -> Reply:
    """The serving model and its scores, collection in the channel, and the latest training jobs."""
    return safe_reply(request, await services.run_db(_status_text, services, request), ephemeral=True)


def _status_text(services: Services, request: Request) -> str:
    serving = serving_model(services, request)
    now = utcnow()
    with services.sessions() as session:
        place = find_place(session, request)
        label = channel_label(request)
        if serving is None:
            lines = [f"No model answers in {label} yet."]
        elif serving.version_id is None:
            lines = [f"In {label} the base model answers (no channel or workspace model yet)."]
        else:
            version = session.get(ModelVersion, serving.version_id)
            details = f": {describe_version(version, now)}" if version is not None else ""
            lines = [f"In {label} the {serving.label} answers{details}."]
        settings = filter_settings(session, request.platform, request.workspace)
        lines.append(services.filter_stats.describe(request.platform, request.workspace, settings.policy))
        if place is None:
            lines.append(f"Collection in {label}: off.")
            return "\n".join(lines)
        count = messages.count_messages_since(
            session, place.channel_scope, None, command_prefixes=COMMAND_PREFIXES
        )
        state = "on" if place.collecting else "off"
        lines.append(f"Collection in {label}: {state} ({count} messages kept for training).")
        for scope, where in ((place.channel_scope, label), (place.workspace_scope, "the workspace")):
            job = jobs.latest_job(session, scope)
            if job is not None:
                made = session.get(ModelVersion, job.model_version_id) if job.model_version_id else None
                lines.append(describe_job(job, where, jobs.queue_position(session, scope), now, made))
    return "\n".join(lines)


async def stats(services: Services, request: Request) -> Reply:
    """A chart of the serving model's loss per epoch and of the messages collected in the channel."""

    def gather() -> tuple[str, list[dict[str, Any]], list[tuple[date, int]], str]:
        serving = serving_model(services, request)
        history: list[dict[str, Any]] = []
        title = f"{channel_label(request)}: no model yet"
        if serving is not None:
            title = f"{channel_label(request)}: {serving.label}"
            try:
                history = list(read_manifest(serving.path).get("history") or [])
            except Exception:  # a damaged bundle still gets a chart of the corpus
                log.warning("cannot read the history of %s", serving.path, exc_info=True)
        with services.sessions() as session:
            place = find_place(session, request)
            per_day = messages.messages_per_day(session, place.channel_id) if place is not None else []
            policy = filter_settings(session, request.platform, request.workspace).policy
        return title, history, per_day, policy

    title, history, per_day, policy = await services.run_db(gather)
    # On the chart thread, never the one /generate waits on for its copy guards.
    png = await services.run_chart(render_stats_chart, title, history, per_day)
    epochs = len(history)
    collected = sum(count for _, count in per_day)
    summary = (
        f"{title}. {epochs} epoch(s) of training history; {collected} messages collected here.\n"
        + services.filter_stats.describe(request.platform, request.workspace, policy)
    )
    return safe_reply(request, summary, file=png, filename="chatsmith-stats.png")
