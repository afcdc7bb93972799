"""Training text loses IRC's `nick:` address at a message's start, so replies do not open with names."""

from __future__ import annotations

from textgen.corpus import parse_corpus, without_addressee


def test_an_address_to_a_speaker_goes_and_the_rest_stays() -> None:
    speakers = {"seveas", "orbo"}
    assert without_addressee("Seveas: try sudo apt-get update", speakers) == "try sudo apt-get update"
    assert without_addressee("orbo, it works now: thanks", speakers) == "it works now: thanks"
    # Not a speaker of the corpus: an ordinary sentence.
    assert without_addressee("Note: the mirror is down", speakers) == "Note: the mirror is down"
    assert without_addressee("Seveas:", speakers) == "Seveas:"
    assert without_addressee("I told seveas: no", speakers) == "I told seveas: no"


def test_an_irc_log_trains_on_messages_without_their_addresses() -> None:
    log = "[10:00] <Seveas> hello all\n[10:01] <alice> Seveas: try this\n[10:02] <bob> alice, thanks\n"
    corpus = parse_corpus(log, "irc")
    assert corpus.messages == ["hello all", "try this", "thanks"]
    assert corpus.records[1].text == "Seveas: try this"  # importers keep the message as said
