"""Benchmarks 1-3: generation speed of the engine against the seed-style loop and the NumPy floor.

1. `generation`: 200 tokens, one stream, for the default model (`ModelSpec()`, byte vocabulary) and an
   LSTM of 512 units, random weights: engine (`Generator`) vs seed-style `model.predict` loop (timed on
   the same 200 tokens; quick mode: 5) vs NumPy floor, each reported per token. Targets: >=100x faster
   than the seed loop, <=3x the floor.
2. `throughput`: 32 concurrent requests with different prompts, lengths, temperatures and seeds through
   one `generate_tokens` call vs the same 32 one after another. Target: >=8x tokens/s.
3. `bilstm`: the BiLSTM engine (one window pass per token) vs its seed-style loop, both over 200 tokens
   (quick mode: 20 and 5). Target: >=20x.

Each runs in a fresh subprocess (`bench.worker generation`). The engine uses NumPy's BLAS as installed;
a second run with `OPENBLAS_NUM_THREADS=1` is recorded beside it because, on a small shared machine,
BLAS threads contending for cores can cost more than the products themselves.
"""

from __future__ import annotations

import sys
from typing import Any

from bench.children import ONE_BLAS_THREAD, run_worker
from bench.report import Outcome, Row
from bench.settings import RunSettings
from textgen.spec import ModelSpec

# The engine is fast enough to keep the full length even in quick mode.
TOKENS = 200


def _options(settings: RunSettings, parts: list[str]) -> dict[str, Any]:
    quick = settings.quick
    return {
        "parts": parts,
        "tiny": settings.tiny,
        "tokens": TOKENS,
        # Timed over as many tokens as the engine in a full run, so that its per-token figure is not an
        # extrapolation from a short sample; at tens of milliseconds a token, quick mode keeps it short.
        "seed_tokens": 5 if quick else TOKENS,
        "repeats": 3 if quick else 5,
        "requests": 32,
        "min_tokens": 20 if quick else 50,
        "max_tokens": 60 if quick else 200,
        "floor_tokens": 3 if quick else 10,
        "bilstm_tokens": 20 if quick else TOKENS,
    }


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def run_generation(settings: RunSettings) -> Outcome:
    """Benchmark 1: single-stream generation, engine vs seed-style loop vs NumPy floor."""
    _progress("generation: engine, seed-style loop and NumPy floor (BLAS as installed)")
    shipped, _ = run_worker("generation", _options(settings, ["single"]), timeout=600, log_name="generation")
    _progress("generation: engine and floor again with one BLAS thread (diagnostic)")
    one_thread_options = {**_options(settings, ["single"]), "seed_tokens": 0}
    one_thread, _ = run_worker(
        "generation",
        one_thread_options,
        timeout=600,
        extra_env=ONE_BLAS_THREAD,
        log_name="generation-1thread",
    )
    outcome = Outcome(figures={"blas_as_installed": shipped, "blas_one_thread": one_thread})
    default = ModelSpec()
    default_label = f"default model ({default.arch.upper()} {default.units})"
    for key, label in (("default_model", default_label), ("lstm_512", "LSTM 512")):
        figures, single = shipped[key], one_thread[key]
        engine, seed = figures["engine_ms_per_token"], figures["seed_ms_per_token"]
        # The floor is the best the plain products achieved under either BLAS setting.
        floor = min(figures["floor_ms_per_token"], single["floor_ms_per_token"])
        outcome.rows.append(
            Row(
                name=f"gen {TOKENS} tok, {label}: vs seed predict loop",
                baseline="seed loop",
                baseline_value=seed,
                project_value=engine,
                unit="ms/tok",
                ratio=seed / engine,
                target="≥100x",
                met=seed / engine >= 100,
            )
        )
        outcome.rows.append(
            Row(
                name=f"gen {TOKENS} tok, {label}: vs NumPy floor",
                baseline="floor",
                baseline_value=floor,
                project_value=engine,
                unit="ms/tok",
                ratio=engine / floor,
                target="≤3x",
                met=engine / floor <= 3,
            )
        )
        outcome.rows.append(
            Row(
                name=f"gen {TOKENS} tok, {label}: 1 BLAS thread vs floor",
                baseline="floor",
                baseline_value=floor,
                project_value=single["engine_ms_per_token"],
                unit="ms/tok",
                ratio=single["engine_ms_per_token"] / floor,
                target="",
                note="diagnostic",
            )
        )
    return outcome


def run_throughput(settings: RunSettings) -> Outcome:
    """Benchmark 2: 32 requests batched vs one after another."""
    outcome = Outcome()
    for label, env in (("BLAS as installed", None), ("1 BLAS thread", ONE_BLAS_THREAD)):
        _progress(f"throughput: 32 requests batched vs sequential ({label})")
        result, _ = run_worker(
            "generation",
            _options(settings, ["throughput"]),
            timeout=600,
            extra_env=env,
            log_name="throughput" if env is None else "throughput-1thread",
        )
        figures = result["throughput"]
        outcome.figures[label.replace(" ", "_")] = figures
        batched, sequential = figures["batched_tokens_per_sec"], figures["sequential_tokens_per_sec"]
        outcome.rows.append(
            Row(
                name="throughput, 32 mixed requests: batched vs sequential"
                + ("" if env is None else " (1 BLAS thread)"),
                baseline="sequential",
                baseline_value=sequential,
                project_value=batched,
                unit="tok/s",
                ratio=batched / sequential,
                target="≥8x" if env is None else "",
                met=batched / sequential >= 8 if env is None else None,
                note="" if env is None else "diagnostic",
            )
        )
    return outcome


def run_bilstm(settings: RunSettings) -> Outcome:
    """Benchmark 3: BiLSTM engine vs its seed-style loop (default size, and a seed-sized model)."""
    _progress("bilstm: engine vs seed-style loop vs NumPy floor")
    options = {**_options(settings, ["bilstm"]), "tokens": _options(settings, [])["bilstm_tokens"]}
    result, _ = run_worker("generation", options, timeout=600, log_name="bilstm")
    outcome = Outcome(figures=result)
    for key, label, headline in (
        ("bilstm_default", f"default BiLSTM ({ModelSpec().units} units, window {ModelSpec().seq_len})", True),
        ("bilstm_seed_size", "seed-size BiLSTM (150 units, window 20)", False),
    ):
        figures = result[key]
        engine, seed = figures["engine_ms_per_token"], figures["seed_ms_per_token"]
        outcome.rows.append(
            Row(
                name=f"gen, {label}: vs seed predict loop",
                baseline="seed loop",
                baseline_value=seed,
                project_value=engine,
                unit="ms/tok",
                ratio=seed / engine,
                target="≥20x" if headline else "",
                met=seed / engine >= 20 if headline else None,
                note="" if headline else "for comparison",
            )
        )
        outcome.rows.append(
            Row(
                name=f"gen, {label}: vs NumPy window floor",
                baseline="floor",
                baseline_value=figures["floor_ms_per_token"],
                project_value=engine,
                unit="ms/tok",
                ratio=engine / figures["floor_ms_per_token"],
                note="diagnostic",
            )
        )
    return outcome
