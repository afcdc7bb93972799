"""A reply names only people of its conversation (`bot.core.names`)."""

from bot.core.names import readdress

MEMBERS = {"karllekko", "hpar", "ann"}


def test_a_member_absent_from_the_conversation_is_named_as_its_last_speaker():
    text = "karllekko: ask @HPar or ann"
    # ann is in the conversation; karllekko and hpar are not: the reply names the last speaker instead.
    assert readdress(text, MEMBERS, present={"ann", "bob"}, speaker="bob") == "bob: ask @bob or ann"


def test_present_members_other_words_and_longer_words_stay_as_written():
    text = "karllekko: the hparser and annotations work"
    assert readdress(text, MEMBERS, present=MEMBERS, speaker="bob") == text
    assert readdress("the hparser and annotations", MEMBERS, present=set(), speaker="bob") == (
        "the hparser and annotations"
    )
    assert readdress("hi karllekko", set(), present=set(), speaker="bob") == "hi karllekko"
