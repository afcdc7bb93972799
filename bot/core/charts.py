"""The `stats` chart: a model's loss per epoch and the corpus size over time, as a PNG.

Uses matplotlib's object API with the Agg canvas: no pyplot global state, so charts can be drawn on
worker threads while the event loop goes on. matplotlib is imported when a chart is drawn: it is a third
of the bot's and the command line's start-up (0.3-0.4 s of CPU), and most runs never draw one.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date
from itertools import accumulate
from typing import Any


def render_stats_chart(
    title: str, history: Sequence[dict[str, Any]], per_day: Sequence[tuple[date, int]]
) -> bytes:
    """Draw training and validation loss per epoch (left) and cumulative messages per day (right).

    Args:
        title: Heading, e.g. "#general: channel model v3".
        history: Per-epoch records from the bundle (`epoch`, `loss`, optional `val_loss`).
        per_day: Messages collected each day, oldest day first (`db.messages.messages_per_day`).

    Returns:
        PNG bytes.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 3.6), dpi=100)
    FigureCanvasAgg(figure)
    figure.suptitle(title)
    loss_axes, corpus_axes = figure.subplots(1, 2)

    epochs = [int(record.get("epoch", index + 1)) for index, record in enumerate(history)]
    if history:
        loss_axes.plot(epochs, [float(r["loss"]) for r in history], marker="o", label="training")
        validation = [
            (e, float(r["val_loss"])) for e, r in zip(epochs, history, strict=True) if "val_loss" in r
        ]
        if validation:
            loss_axes.plot(*zip(*validation, strict=True), marker="o", label="validation")
        loss_axes.legend()
    else:
        loss_axes.text(
            0.5, 0.5, "no training history", ha="center", va="center", transform=loss_axes.transAxes
        )
    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("loss (nats per token)")
    loss_axes.grid(alpha=0.3)

    if per_day:
        days = [day for day, _ in per_day]
        corpus_axes.step(days, list(accumulate(count for _, count in per_day)), where="post")
        figure.autofmt_xdate()
    else:
        corpus_axes.text(
            0.5, 0.5, "no messages collected", ha="center", va="center", transform=corpus_axes.transAxes
        )
    corpus_axes.set_ylabel("messages collected")
    corpus_axes.grid(alpha=0.3)

    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
