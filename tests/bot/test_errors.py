"""Errors shown in chat name the problem and never the server's paths."""

import pytest

from bot.core.errors import user_message, without_server_paths
from textgen.errors import TextgenError


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("/srv/models/w1/v3/weights.npy is damaged; retrain", "weights.npy is damaged; retrain"),
        ("bundle /data/models/workspace-1/model-v3 lacks bundle.json", "bundle model-v3 lacks bundle.json"),
        ("file '/tmp/x/chatsmith.db' is locked", "file 'chatsmith.db' is locked"),
        ("C:\\models\\v3\\bundle.json is bad", "bundle.json is bad"),
        # Not paths: URLs, fractions, relative names.
        ("see https://stripe.com/docs/api", "see https://stripe.com/docs/api"),
        ("give 1/2 of it to models/v3", "give 1/2 of it to models/v3"),
    ],
)
def test_paths_are_cut_to_their_last_part(text, shown):
    assert without_server_paths(text) == shown


def test_a_textgen_error_reaches_chat_without_its_directory():
    error = TextgenError("/var/lib/chatsmith/models/workspace-1/channel-2/model-v3/weights.npy is damaged")
    assert user_message(error) == "weights.npy is damaged"
    assert user_message(RuntimeError("/secret/path")) is None  # unexpected errors are never shown
