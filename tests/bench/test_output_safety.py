"""The `output` benchmark in its tiny mode: every row is produced, and the filter's figures hold."""

from __future__ import annotations

from bench.output_safety import run_output_safety
from bench.settings import RunSettings
from bench.sources import Sources


def test_output_benchmark_rows_in_tiny_mode(tmp_path) -> None:
    outcome = run_output_safety(RunSettings(quick=True, tiny=True, sources=Sources(tmp_path, None, "test")))
    names = [row.name for row in outcome.rows]
    for model in ("base", "fine-tuned"):
        assert f"output {model}: slurs in 20 replies" in names
        assert f"output {model}: copy rate" in names
        assert any(name.startswith(f"output {model}: offensive") for name in names)
        assert outcome.figures[model]["replies"] == 20 and outcome.figures[model]["slurs"] == 0
    assert outcome.figures["clean"]["clean_messages"] > 0
    timing = outcome.rows[-1]
    assert timing.unit == "ms" and timing.project_value is not None and timing.project_value > 0
