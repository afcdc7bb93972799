"""The tells report: the names a text writes, masking them, and the length and name profiles."""

import pytest

from bench.reply_tells import (
    length_profile,
    mask_names,
    name_profile,
    names_in,
    strongest_features,
)


def test_names_are_found_with_or_without_an_at_sign_and_an_address_colon():
    members = {"karllekko", "hpar"}
    assert names_in("karllekko: try again, @hpar knows", members) == {"karllekko", "hpar"}
    # A longer word that merely contains a name is not that name.
    assert names_in("karllekkoish and hparty", members) == set()
    assert mask_names("@KarlLekko: ask hpar.", members) == "NAME: ask NAME."


def test_profiles_count_lengths_and_absent_members():
    texts = ["hi", "x" * 200, "karllekko: sure", "ask hpar"]
    lengths = length_profile(texts)
    assert lengths["short_share"] == pytest.approx(0.75) and lengths["long_share"] == pytest.approx(0.25)
    names = name_profile(texts, members={"karllekko", "hpar"}, absent={"karllekko"})
    assert names == {"names_member": 0.5, "names_absent_member": 0.25}


def test_the_strongest_features_are_what_sets_each_side_apart():
    pytest.importorskip("sklearn")
    written = [f"zebra number {n} says hello" for n in range(20)]
    real = [f"thanks for the answer {n}" for n in range(20)]
    reply_side, real_side = strongest_features(written, real, 5)
    assert "zebra" in reply_side and "thanks" in real_side
