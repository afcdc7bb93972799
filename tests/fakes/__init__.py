"""Fake Discord and Slack servers on 127.0.0.1 that the real client libraries run against in tests."""

from tests.fakes.discord import FakeDiscord, InteractionRecord, InteractionReply, RestCall
from tests.fakes.slack import FakeSlack, SignedPostResult

__all__ = [
    "FakeDiscord",
    "FakeSlack",
    "InteractionRecord",
    "InteractionReply",
    "RestCall",
    "SignedPostResult",
]
