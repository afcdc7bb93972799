"""Errors raised by textgen. Each message names the problem and the fix, on one line."""


class TextgenError(ValueError):
    """Bad input to textgen: a corpus, a bundle, a setting. The message is safe to show a user."""
