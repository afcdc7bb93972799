"""`python -m bench.flood --tiny`: the fair-use benchmark runs end to end and reports its goals."""

from __future__ import annotations

from pathlib import Path

from bench.flood import HEADING, main, write_section


def test_tiny_flood_reports_quiet_and_flooded_p99_and_the_training_rank(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    out.write_text("# Results\n\n## Another section\n\nkept\n", encoding="utf-8")
    assert main(["--tiny", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "## Another section\n\nkept" in text and text.count(HEADING) == 1
    assert "| B's `/generate` p99 |" in text and "ratio " in text
    assert "| B's `/train` | — | claimed 1 of " in text, "B's job must be claimed next, not after A's"
    assert " 0 refused) |" in text, "B stays within its cooldowns and its share: nothing of it is refused"


def test_a_new_run_replaces_the_section_of_the_last(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    out.write_text(f"# Results\n\n{HEADING}\n\nold\n\n## Later\n\nstays\n", encoding="utf-8")
    write_section(f"{HEADING}\n\nnew\n", out)
    assert out.read_text(encoding="utf-8") == f"# Results\n\n{HEADING}\n\nnew\n\n## Later\n\nstays\n"
