# chatsmith: `make demo` and `make test` work on a fresh machine with Python 3.11 and make.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Installed and compiled to bytecode (below): what every target runs on.
READY := $(VENV)/.compiled

.PHONY: install demo test lint format bench bench-quick bench-serving base-model clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=python3 ...'"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The bench extra too: the tests of the benchmarks' measures (the detectability classifier, markovify)
# run in `make test` rather than being skipped.
$(STAMP): pyproject.toml setup.py textgen/_sampler.c textgen/_gru.c textgen/_halfmatmul.c textgen/_halfmatmul_kernels.h | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[train,dev,bench]'
	@touch $(STAMP)

# The installed packages compiled to bytecode: where PYTHONDONTWRITEBYTECODE is set (CI images,
# many containers) pip leaves them as source, and every process (each test worker, trainer, bot) compiled
# TensorFlow, Keras and SQLAlchemy again at import: `chatsmith trainer --once` took 11.0 CPU-s against 6.6
# compiled; `make test`'s tests, run alternately, 223.8 and 240.4 s uncompiled against 179.3 and 177.7 s
# (2 cores, 2026-12-07).
$(READY): $(STAMP)
	$(BIN)/python -m compileall -q -j 0 $$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
	@touch $(READY)

install: $(READY)

demo: $(READY)
	$(BIN)/chatsmith demo

# Three workers on a 2-core CI machine: a third of the suite's time is spent waiting (subprocesses
# starting, databases restarting, outages timed out), and a third worker fills it (173 s against 218 s
# with two, measured on 2 cores). A module's tests run together, slow modules first (tests/conftest.py).
PYTEST_WORKERS ?= -n 3 --dist loadscope --no-loadscope-reorder
# chatsmith's own modules are compiled before the tests, like the packages at install: otherwise each
# chatsmith process the tests start compiles them again where PYTHONDONTWRITEBYTECODE is set. They change
# between runs, so here rather than at install.
test: $(READY)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m compileall -q bench bot chatsmith db errortext tests textgen trainer
	$(BIN)/python -m pytest $(PYTEST_WORKERS)

lint: $(READY)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(READY)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(READY)
	$(BIN)/python -m pip install --quiet -e '.[train,dev,bench]'
	$(BIN)/python -m bench

bench-quick: $(READY)
	$(BIN)/python -m pip install --quiet -e '.[train,dev,bench]'
	$(BIN)/python -m bench --quick

# /generate at 20 per second over 1, 50 and 1,000 channel models through the command core, in a bot
# process without TensorFlow; writes bench/SERVING.md. About 5 minutes.
bench-serving: $(READY)
	$(BIN)/python -m bench.serving

# The base model new scopes are fine-tuned from: the default spec trained on real chat (the Ubuntu IRC
# logs, CC-BY-4.0) for BASE_MODEL_BUDGET seconds, without the messages that hold a slur. Shipped inside
# the package with its copy guard; rebuild after changing the default spec.
BASE_MODEL_CORPUS ?= ../shared/data/ubuntu-irc-train.log
BASE_MODEL_BUDGET ?= 4500
# Wider than `chatsmith train`'s default, which is sized for 100-second runs: the base model trains for
# 75 minutes. tests/textgen/test_base_model.py checks the shipped model has this shape. A peak rate of
# 2e-3 rather than the 100-second default of 5e-3: at 5e-3 a run this long diverged in its second epoch
# (bench/logs/base-model-2026-12-06-lr5e-3.log); at 2e-3 validation improved in every one of 10 epochs.
BASE_MODEL_SPEC ?= --arch gru --layers 1 --units 384 --embedding 64 --seq-len 64 --batch-size 64 --learning-rate 2e-3
base-model: $(READY)
	$(BIN)/chatsmith train --corpus $(BASE_MODEL_CORPUS) --format irc --val-fraction 0.02 --drop-slurs \
		$(BASE_MODEL_SPEC) --time-budget $(BASE_MODEL_BUDGET) --out chatsmith/data/base-model --json

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
