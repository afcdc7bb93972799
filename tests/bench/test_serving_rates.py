"""The rate sweep's verdict: a rate is held only when nothing was refused and the p99 is within goal."""

from __future__ import annotations

import pytest

from bench.serving_rates import format_rates, held, main


def _run(rate: float, p99: float, busy: int = 0) -> dict[str, float]:
    return {
        "rate": rate,
        "p50_ms": p99 / 3,
        "p99_ms": p99,
        "rss_peak_mb": 300.0,
        "cpu_percent": 2 * rate,
        "cpu_ms_per_request": 9.0,
        "mean_reply_chars": 70.0,
        "model_loads": 50,
        "answered": int(rate * 30) - busy,
        "busy": busy,
        "other": 0,
    }


def test_a_rate_is_held_only_without_busy_refusals_and_within_the_p99_goal() -> None:
    assert held(_run(20, 24))
    assert held(_run(60, 300))
    assert not held(_run(60, 301))
    assert not held(_run(80, 120, busy=1))


def test_the_table_names_the_highest_rate_held_not_the_last_one_run() -> None:
    table = format_rates([_run(20, 24), _run(40, 90), _run(60, 1_233, busy=470)], 50, 30, "load 1.0")
    assert table.splitlines()[-1] == "Highest rate held (p99 ≤ 300 ms, none busy): 40 requests per second."
    assert "| 60/s | 411 ms | 1,233 ms |" in table and table.count("| no |") == 1


def test_no_rate_held_says_so() -> None:
    table = format_rates([_run(80, 900)], 50, 30, "load 1.0")
    assert table.endswith("none of these rates.")


@pytest.mark.parametrize("argv", [["--rates", "20,fast"], ["--rates", "0"], ["--models", "0"]])
def test_bad_rates_or_counts_are_one_line_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert "error:" in capsys.readouterr().err
