"""The bots' default settings, written once: `BotConfig` (`bot.core.services`) takes its defaults from here,
and so does `chatsmith.settings.Settings` for the variables that set them.

Plain values and no imports, so that the CLI reads them without loading the bots.
"""

from __future__ import annotations

# /generate: tokens written unless asked, the most one may ask for, sampling temperature and nucleus share.
DEFAULT_LENGTH = 160
MAX_LENGTH = 600
TEMPERATURE = 0.8
TOP_P = 0.95
# Most past messages one `train backfill:N` reads.
BACKFILL_MAX = 5000
# Megabytes of model weights kept loaded.
MODEL_CACHE_MB = 128
# Decoding threads, most requests decoded in one batch, most waiting or decoding at once.
GENERATION_WORKERS = 2
GENERATION_MAX_BATCH = 32
GENERATION_QUEUE_MAX = 128
# The most of those one workspace may hold, so that one busy workspace never leaves the others refused.
GENERATION_QUEUE_PER_WORKSPACE = 32
# The most training jobs an admin's `/train` may leave queued in one workspace (the queue also takes
# workspaces in turn); retrains after forget-me, unsharing or a schedule are never refused.
TRAIN_QUEUE_PER_WORKSPACE = 10
# Seconds between two uses of a command, per user and per channel.
COOLDOWNS: dict[str, tuple[float, float]] = {
    "generate": (5.0, 1.0),
    "train": (60.0, 30.0),
    "stats": (30.0, 10.0),
}
# Trainable messages a scope needs before it is trained: the trainer's `min_messages` default
# (`trainer.config.TrainerConfig`, which the bots may not import; a test holds the two equal).
MIN_TRAINING_MESSAGES = 200
