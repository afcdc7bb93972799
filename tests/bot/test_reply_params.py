"""How `/generate` samples: the asked length and temperature, else the defaults or the channel's lengths."""

from bot.core.generation import reply_params
from bot.core.services import BotConfig

SHORT_CHANNEL = tuple(["ok thanks"] * 40 + ["a" * 70] * 10)  # 90th percentile: 70 bytes


def test_without_an_asked_length_a_reply_after_the_conversation_is_capped_by_the_channel():
    config = BotConfig(length_from_channel=True, best_of=3, min_p=0.1, top_p=None)
    params = reply_params(config, SHORT_CHANNEL)
    assert params.max_tokens == 70
    assert (params.best_of, params.min_p, params.top_p) == (3, 0.1, None)
    assert reply_params(config, ()).max_tokens == config.default_length  # nothing read: the default


def test_an_asked_length_and_temperature_win_and_the_rule_can_be_off():
    config = BotConfig(length_from_channel=True)
    params = reply_params(config, SHORT_CHANNEL, length=300, temperature=1.2)
    assert (params.max_tokens, params.temperature) == (300, 1.2)
    assert reply_params(BotConfig(), SHORT_CHANNEL).max_tokens == BotConfig().default_length


def test_replies_end_at_the_models_own_rate_unless_the_config_says_otherwise():
    assert reply_params(BotConfig()).end_untempered
    assert not reply_params(BotConfig(end_untempered=False)).end_untempered
