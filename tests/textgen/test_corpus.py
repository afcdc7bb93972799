import json

import pytest

from textgen.corpus import guess_format, load_corpus
from textgen.errors import TextgenError

IRC = """[09:14] <alice> hello there
=== bob is now known as bobby
[09:15] <@bobby> hi alice, try `sudo apt update`
[09:15] * alice waves
[09:16] <carol>\x20
[09:17] <carol> anyone around?
"""


def write(tmp_path, name, content, mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_irc_log_keeps_messages_and_drops_system_lines(tmp_path):
    corpus = load_corpus(write(tmp_path, "chat.log", IRC), "irc")
    assert corpus.messages == ["hello there", "hi alice, try `sudo apt update`", "anyone around?"]
    assert corpus.authors == ["alice", "bobby", "carol"]


def test_jsonl_reads_text_fields(tmp_path):
    lines = [json.dumps({"text": "one", "author": "a"}), "", json.dumps({"text": "two 🎉"})]
    corpus = load_corpus(write(tmp_path, "m.jsonl", "\n".join(lines)), "jsonl")
    assert corpus.messages == ["one", "two 🎉"]
    assert corpus.authors == ["a", None]


def test_jsonl_without_text_names_the_line(tmp_path):
    path = write(tmp_path, "m.jsonl", '{"text": "ok"}\n{"body": "no"}\n')
    with pytest.raises(TextgenError, match="line 2"):
        load_corpus(path, "jsonl")


def test_lines_and_text_formats(tmp_path):
    path = write(tmp_path, "lines.txt", "first message\n\nsecond one\n")
    assert load_corpus(path, "lines").messages == ["first message", "second one"]
    assert load_corpus(path, "text").messages == ["first message\n\nsecond one\n"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (IRC, "irc"),
        ("\n".join(json.dumps({"text": f"m{i}"}) for i in range(20)), "jsonl"),
        ("\n".join(f"message number {i}" for i in range(50)), "lines"),
        ("First Citizen:\nBefore we proceed.\n\nAll:\nSpeak, speak.\n\n" * 10, "text"),
    ],
)
def test_auto_guesses_the_format_and_says_so(tmp_path, content, expected):
    assert guess_format(content) == expected
    corpus = load_corpus(write(tmp_path, "c", content), "auto")
    assert corpus.format == expected
    assert corpus.guessed


def test_shakespeare_is_guessed_as_text(shakespeare):
    assert guess_format(shakespeare) == "text"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("", "is empty"),
        ("  \n\n", "is empty"),
        (b"caf\xe9 latin-1", "not UTF-8"),
    ],
)
def test_bad_corpus_files_get_one_line_errors(tmp_path, content, message):
    path = tmp_path / "corpus.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(TextgenError, match=message) as error:
        load_corpus(path)
    assert "\n" not in str(error.value)


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(TextgenError, match="unknown corpus format 'csv'"):
        load_corpus(write(tmp_path, "c.txt", "x"), "csv")


def test_irc_file_with_no_messages_is_refused(tmp_path):
    with pytest.raises(TextgenError, match="no messages"):
        load_corpus(write(tmp_path, "c.log", "=== a is now known as b\n"), "irc")
