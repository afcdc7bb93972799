"""The base model: the bundle a scope's first model is fine-tuned from, and what serves before any exists.

Chosen in this order: `CHATSMITH_BASE_MODEL_PATH` when set ("none" means train from scratch), else the
bundle shipped inside the package at `chatsmith/data/base-model` when it is there, else none: the trainer
then trains from scratch with textgen's default spec and byte tokenizer. The composition root finds it
once and hands the path to the bots (`BotConfig.base_model_path`) and the trainer (`TrainerConfig.base_model`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from trainer.errors import TrainerError

logger = logging.getLogger(__name__)

PACKAGED_BASE_MODEL = Path(__file__).resolve().parent / "data" / "base-model"
# The value of CHATSMITH_BASE_MODEL_PATH that asks for training from scratch even when one is packaged.
FROM_SCRATCH = "none"


def find_base_model(configured: Path | str | None, *, packaged: Path = PACKAGED_BASE_MODEL) -> Path | None:
    """The base model bundle to use, or None to train from scratch.

    Args:
        configured: `CHATSMITH_BASE_MODEL_PATH`, or None when unset.
        packaged: Where the packaged base model would be (tests point it elsewhere).

    Returns:
        The bundle directory, or None.

    Raises:
        TrainerError: A configured path does not exist; a typo should not silently train from scratch.
    """
    if configured is not None and str(configured).strip().lower() == FROM_SCRATCH:
        logger.info("base model: none (CHATSMITH_BASE_MODEL_PATH=none); new scopes train from scratch")
        return None
    if configured is not None and str(configured).strip():
        path = Path(configured).expanduser()
        if not path.is_dir():
            raise TrainerError(
                f"base model {path} does not exist; fix CHATSMITH_BASE_MODEL_PATH, or set it to 'none' to "
                "train new scopes from scratch"
            )
        return path
    if (packaged / "bundle.json").is_file():
        return packaged
    logger.info(
        "no base model (none packaged at %s, CHATSMITH_BASE_MODEL_PATH unset); new scopes train from "
        "scratch with the default spec and byte tokenizer",
        packaged,
    )
    return None
