"""How `/generate` samples: the asked length and temperature, else the defaults or the channel's lengths."""

import numpy as np

from bot.core.generation import reply_params
from bot.core.services import BotConfig

SHORT_CHANNEL = tuple(["ok thanks"] * 40 + ["a" * 70] * 10)  # 9 and 70 bytes


def test_without_an_asked_length_a_reply_is_as_long_as_a_message_of_the_channel_drawn_at_random():
    config = BotConfig(best_of=3, min_p=0.1, top_p=None)
    rng = np.random.default_rng(0)
    lengths = [reply_params(config, SHORT_CHANNEL, rng=rng).max_tokens for _ in range(400)]
    # Short and long, as often as the channel writes them (one message in five is long).
    assert set(lengths) == {9, 70} and 0.1 < lengths.count(70) / len(lengths) < 0.3
    params = reply_params(config, SHORT_CHANNEL, rng=rng)
    assert (params.best_of, params.min_p, params.top_p) == (3, 0.1, None)
    assert reply_params(config, ()).max_tokens == config.default_length  # nothing read: the default


def test_an_asked_length_and_temperature_win_and_the_rule_can_be_off():
    config = BotConfig()
    params = reply_params(config, SHORT_CHANNEL, length=300, temperature=1.2)
    assert (params.max_tokens, params.temperature) == (300, 1.2)
    fixed = BotConfig(length_from_channel=False)
    assert reply_params(fixed, SHORT_CHANNEL).max_tokens == fixed.default_length


def test_replies_end_at_the_models_own_rate_unless_the_config_says_otherwise():
    assert reply_params(BotConfig()).end_untempered
    assert not reply_params(BotConfig(end_untempered=False)).end_untempered
