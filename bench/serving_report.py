"""The serving benchmark's Markdown report (`bench/SERVING.md`): the setting, each variant's tables and
goals, then batching across models."""

from __future__ import annotations

from typing import Any

from bench.serving_parts import SPECS

GOALS = {"p99_ms": 300, "rss_mb": 400, "rss_before_mb": 200, "load_ms": 5, "cycles_growth_mb": 50}


def format_report(record: dict[str, Any]) -> str:
    """The Markdown report: the setting, then each variant's tables and goals, then batching across models."""
    specs = ", ".join(
        f"{n:,} model{'s' if n > 1 else ''}: GRU {SPECS[s]['units']} units"
        for n, s in record["scenarios"].items()
    )
    lines = [
        "# Serving benchmark",
        "",
        f"`make bench-serving` (`python -m bench.serving`), {record['date']}. {record['machine']}",
        "",
        f"{record['rate']:g} `/generate` per second for {record['seconds']:g} s through the command core "
        "(`CommandCore.handle`), each for a channel picked at random among the channels with a model of "
        "their own; the bot process built as `chatsmith bot` builds it (default 128 MB model cache, 2 "
        "decoding threads), TensorFlow blocked. "
        + (
            "Channel models of the base model's size are real fine-tunes (a workspace model fine-tuned "
            "from the packaged base model on Ubuntu IRC chat, channel models fine-tuned from it, each with "
            "the copy guard and lexicon of its own training) and end their replies where chat does, at "
            "most 160 tokens; small models have random weights and run the full 160. "
            if record.get("bundles", {}).get("fine_tuned")
            else "Replies of 160 tokens (random weights: full length). "
        )
        + f"Specs: {specs} "
        "(embedding 64 for 384 units, 32 for 128; byte tokenizer). Follow-up: from the moment a request "
        "was due to its reply. Run twice on the same bundles: each carrying the packaged base model's "
        "lexicon (26,000 words; `textgen.lexicon`), as a model fine-tuned from it does, and without one "
        "(the decoding path alone).",
        "",
        'The machine may be shared: follow-up times include any wait for a core ("machine load" is the '
        "1-minute load average at the end of each run; above 2, the cores were oversubscribed). The CPU per request "
        "depends far less on that: at 20 requests per second it says how much of one core serving needs.",
    ]
    for variant in record["variants"]:
        lines += format_variant(variant)
    lines += [
        "",
        "## Batching across models",
        "",
        "`python -m bench.cross_model_batching`: M models of one spec (GRU, different random weights), one "
        "160-token reply each, decoded per model (what the bots do) or stacked into one step for all M "
        "(weights stacked once, `np.matmul` over the stacked kernels). Recurrent steps and logits only, best "
        "of 3, one thread.",
        "",
        record["cross_model_batching"].strip(),
    ]
    return "\n".join(lines) + "\n"


def format_variant(variant: dict[str, Any]) -> list[str]:
    """One variant's section: the serving runs, bundle loads, load/evict cycles, and the goals."""
    runs, cycles_result = variant["runs"], variant["cycles"]
    return [
        "",
        f"## {variant['label']}",
        *_runs_table(runs),
        *_loads_table(cycles_result),
        "",
        _cycles_sentence(cycles_result["cycles"]),
        *_goals_table(runs, cycles_result),
        "",
        '"Other" replies are neither an answer nor "busy": the output filter\'s fallback line, or an error; '
        '"busy" ones were '
        "refused at once by the bounded generation queue. Mean batch: requests decoded together per "
        "`generate_many` call.",
    ]


def _runs_table(runs: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        "| channel models | follow-up p50 | p99 | max | resident memory: before serving / peak / end | "
        "model loads (evictions) | bot CPU (per request) | mean batch | answered / busy / other | "
        "machine load |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        lines.append(
            f"| {run['models']:,} | {run['p50_ms']:.0f} ms | {run['p99_ms']:.0f} ms | {run['max_ms']:.0f} ms | "
            f"{run['rss_before_serving_mb']:.0f} / {run['rss_peak_mb']:.0f} / {run['rss_end_mb']:.0f} MB | "
            f"{run['model_loads']:,} ({run['evictions']:,}) | {run['cpu_percent']:.0f}% ({run['cpu_ms_per_request']:.0f} ms) | {run['mean_batch']:.2f} | "
            f"{run['answered']} / {run['busy']} / {run['other']} | {run.get('load_average', 0):.1f} |"
        )
    return lines


def _loads_table(cycles_result: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "| bundle load (`load_for_replies`, page cache warm) | median | p99 |",
        "| --- | --- | --- |",
    ]
    for key, label in (
        ("load_small", "GRU 128, `weights.npy` memory-mapped"),
        ("load_base_spec", "GRU 384, `weights.npy` memory-mapped"),
        ("load_packaged_base", "the packaged base model (GRU 384), its `weights.npy` memory-mapped"),
    ):
        if key in cycles_result:
            figures = cycles_result[key]
            lines.append(
                f"| {label} ({figures['n']} loads) | {figures['median_ms']:.2f} ms | {figures['p99_ms']:.2f} ms |"
            )
    return lines


def _cycles_sentence(cyc: dict[str, Any]) -> str:
    return (
        f"Load/evict cycles: {cyc['loads']:,} loads of {cyc['distinct_bundles']:,} different GRU 128 bundles "
        f"through an 8 MB cache ({cyc['evictions']:,} evictions), each model generating 40 tokens: resident "
        f"memory {cyc['rss_start_mb']:.0f} MB after 50 warm-up loads, peak {cyc['rss_peak_mb']:.0f} MB, "
        f"{cyc['rss_end_mb']:.0f} MB at the end ({cyc['growth_mb']:+.1f} MB)."
    )


def _goals_table(runs: list[dict[str, Any]], cycles_result: dict[str, Any]) -> list[str]:
    largest, cyc = runs[-1], cycles_result["cycles"]
    before_serving = max(r["rss_before_serving_mb"] for r in runs)
    load_median = cycles_result["load_base_spec"]["median_ms"]
    tensorflow_imported = any(r["tensorflow_imported"] for r in runs)
    # (goal, target, measured, met)
    checks = [
        (
            f"follow-up p99, {largest['models']:,} models",
            f"< {GOALS['p99_ms']} ms",
            f"{largest['p99_ms']:.0f} ms",
            largest["p99_ms"] < GOALS["p99_ms"],
        ),
        (
            f"resident memory, {largest['models']:,} models (peak)",
            f"< {GOALS['rss_mb']} MB",
            f"{largest['rss_peak_mb']:.0f} MB",
            largest["rss_peak_mb"] < GOALS["rss_mb"],
        ),
        (
            "bot process before serving",
            f"< {GOALS['rss_before_mb']} MB",
            f"{before_serving:.0f} MB",
            before_serving < GOALS["rss_before_mb"],
        ),
        (
            "bundle load (GRU 384, median)",
            f"< {GOALS['load_ms']} ms",
            f"{load_median:.2f} ms",
            load_median < GOALS["load_ms"],
        ),
        (
            f"{cyc['loads']:,} load/evict cycles",
            f"within {GOALS['cycles_growth_mb']} MB",
            f"{cyc['growth_mb']:+.1f} MB",
            abs(cyc["growth_mb"]) < GOALS["cycles_growth_mb"],
        ),
        (
            "TensorFlow imported by the bot process",
            "never",
            "yes" if tensorflow_imported else "never",
            not tensorflow_imported,
        ),
    ]
    lines = ["", "| goal | target | measured | met |", "| --- | --- | --- | --- |"]
    for goal, target, measured, met in checks:
        lines.append(f"| {goal} | {target} | {measured} | {'yes' if met else '**no**'} |")
    return lines
