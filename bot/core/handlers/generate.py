"""`generate`: write something in the channel's voice with the model that serves there."""

from __future__ import annotations

import logging

from bot.core.arguments import float_arg, int_arg
from bot.core.request import Reply, Request
from bot.core.safety import generated_or_friendly, safe_reply
from bot.core.services import Services
from bot.core.serving import serving_model
from textgen.sampling import SamplingParams

log = logging.getLogger(__name__)

# Longest prompt fed to a model: every prompt token is one decoding step.
MAX_PROMPT_CHARS = 500


async def generate(services: Services, request: Request) -> Reply:
    """Continue the prompt (or start from nothing) with the serving model; the whole channel sees it."""
    config = services.config
    prompt = str(request.args.get("prompt") or "").strip()[:MAX_PROMPT_CHARS]
    length = int_arg(request.args, "length", config.default_length, 1, config.max_length)
    temperature = float_arg(request.args, "temperature", config.temperature, 0.0, 2.0)
    serving = await services.run_db(serving_model, services, request)
    if serving is None:
        return safe_reply(
            request,
            "No model answers here yet: an admin can run `collect on`, let people talk, then `train`.",
            ephemeral=True,
        )
    params = SamplingParams(max_tokens=length, temperature=temperature, top_p=config.top_p)
    continuation = await services.generation.generate(serving.path, prompt, params)
    if not continuation.strip():
        text = generated_or_friendly("")
    else:
        text = (
            f"{prompt} {continuation.lstrip()}"
            if prompt and continuation[:1].isalnum()
            else prompt + continuation
        )
    log.debug("generate in %s/%s answered by %s", request.workspace, request.channel, serving.label)
    return safe_reply(request, text, model=serving.label)
