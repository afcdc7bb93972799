"""The bots' default settings, written once: `BotConfig` (`bot.core.services`) takes its defaults from here,
and so does `chatsmith.settings.Settings` for the variables that set them.

Plain values and no imports, so that the CLI reads them without loading the bots.
"""

from __future__ import annotations

# /generate: tokens written unless asked, the most one may ask for, sampling temperature and nucleus share.
DEFAULT_LENGTH = 160
MAX_LENGTH = 600
# Real chat is varied: at 0.8 a classifier told the base model's replies from its held-out chat at AUC
# 0.767, at 1.0 at 0.638 (`python -m bench.base_temperatures`; a fine-tuned channel model's: 0.883
# against 0.798, `bench` replies section), with replies as long as the channel's messages. With the
# other defaults (context, lengths from the channel, the model's own end) 1.1 did better again on the
# Stripe channel (0.769 against 0.783 in the replies run, 0.754 against 0.787 in a draft, 3 seeds
# each), with replies that read no worse, and as well on the base model's own
# held-out chat (0.631 against 0.635; 1.2: 0.676): `bench/RESULTS.md`, "The default temperature".
TEMPERATURE = 1.1
TOP_P = 0.95
# Most past messages one `train backfill:N` reads.
BACKFILL_MAX = 5000
# Megabytes of model weights kept loaded.
MODEL_CACHE_MB = 128
# Decoding threads, most requests decoded in one batch, most waiting or decoding at once.
GENERATION_WORKERS = 2
GENERATION_MAX_BATCH = 32
GENERATION_QUEUE_MAX = 128
# Most of those one workspace may hold: a quarter, so one flooding workspace leaves the rest room.
GENERATION_QUEUE_PER_WORKSPACE = GENERATION_QUEUE_MAX // 4
# Most training jobs one workspace may have queued by `train` (retrains for forget-me and the
# schedule are never refused).
TRAIN_QUEUE_PER_WORKSPACE = 10
# Seconds between two uses of each command, per user and per channel; every command has its entry, and
# `bot.core.catalog` declares each command with its own. Commands about one member (my-data, forget-me,
# imitate-me) wait per member only, so one member never holds up another in the same channel.
COOLDOWNS: dict[str, tuple[float, float]] = {
    "generate": (5.0, 1.0),
    "imitate-me": (10.0, 0.0),
    "status": (10.0, 2.0),
    "stats": (30.0, 10.0),
    "forget-me": (60.0, 0.0),
    "my-data": (300.0, 0.0),
    "help": (5.0, 1.0),
    "train": (60.0, 30.0),
    "collect": (5.0, 2.0),
    "models": (10.0, 2.0),
    "rollback": (30.0, 10.0),
    "filter": (5.0, 1.0),
}
# Trainable messages a scope needs before it is trained: the trainer's `min_messages` default
# (`trainer.config.TrainerConfig`, which the bots may not import; a test holds the two equal).
MIN_TRAINING_MESSAGES = 200
