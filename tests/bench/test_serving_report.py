"""The serving benchmark's report (`bench/SERVING.md`) from a record: its tables and whether each goal is met."""

from __future__ import annotations

from typing import Any

from bench.serving_parts import p99
from bench.serving_report import format_report


def _run(models: int, p99_ms: float, peak_mb: float, tensorflow_imported: bool = False) -> dict[str, Any]:
    return {
        "models": models,
        "p50_ms": 30.0,
        "p99_ms": p99_ms,
        "max_ms": 500.0,
        "rss_before_serving_mb": 150.0,
        "rss_peak_mb": peak_mb,
        "rss_end_mb": 280.0,
        "model_loads": 1200,
        "evictions": 1100,
        "cpu_percent": 55.0,
        "cpu_ms_per_request": 28.0,
        "mean_batch": 1.5,
        "answered": 880,
        "busy": 10,
        "other": 10,
        "load_average": 1.2,
        "tensorflow_imported": tensorflow_imported,
    }


def _cycles(packaged: bool) -> dict[str, Any]:
    cycles: dict[str, Any] = {
        "load_small": {"n": 200, "median_ms": 0.8, "p99_ms": 2.0},
        "load_base_spec": {"n": 50, "median_ms": 1.5, "p99_ms": 3.0},
        "cycles": {
            "loads": 1000,
            "distinct_bundles": 950,
            "rss_start_mb": 100.0,
            "rss_peak_mb": 130.0,
            "rss_end_mb": 112.0,
            "growth_mb": 12.0,
            "evictions": 990,
        },
    }
    if packaged:
        cycles["load_packaged_base"] = {"n": 5, "median_ms": 40.0, "p99_ms": 45.0}
    return cycles


def _record() -> dict[str, Any]:
    return {
        "date": "2026-12-01 06:00 UTC",
        "machine": "2 CPUs.",
        "rate": 20.0,
        "seconds": 45.0,
        "scenarios": {1: "base", 1000: "small"},
        "variants": [
            {
                "label": "With a lexicon",
                "runs": [_run(1, 40, 200), _run(1000, 350, 390)],
                "cycles": _cycles(True),
            },
            {
                "label": "Without",
                "runs": [_run(1, 40, 200, tensorflow_imported=True)],
                "cycles": _cycles(False),
            },
        ],
        "cross_model_batching": "| M | per model | stacked |\n",
    }


def test_each_variant_has_its_tables_and_each_goal_says_whether_it_was_met() -> None:
    report = format_report(_record())
    with_lexicon, without = report.split("## With a lexicon")[1].split("## Without")

    assert "1,000 models: GRU 128 units" in report
    assert "| 1,000 | 30 ms | 350 ms | 500 ms | 150 / 390 / 280 MB |" in with_lexicon
    assert "| follow-up p99, 1,000 models | < 300 ms | 350 ms | **no** |" in with_lexicon
    assert "| resident memory, 1,000 models (peak) | < 400 MB | 390 MB | yes |" in with_lexicon
    assert "| TensorFlow imported by the bot process | never | never | yes |" in with_lexicon
    assert "| TensorFlow imported by the bot process | never | yes | **no** |" in without
    # The packaged base model's load time is reported only where it was measured.
    assert "its `weights.npy` memory-mapped (5 loads) | 40.00 ms |" in with_lexicon
    assert "h5py" not in without
    # Batching across models comes last, after every variant, ending with its table.
    assert "## Batching across models" in without
    assert report.endswith("| M | per model | stacked |\n")


def test_p99_is_the_largest_figure_below_a_hundred_and_the_99th_percentile_above() -> None:
    assert p99([1.0, 2.0, 3.0]) == 3.0
    assert p99([float(n) for n in range(1, 201)]) == 199.0
