# syntax=docker/dockerfile:1
# chatsmith: two targets of one Dockerfile, the command picks the role (README: "Deploy with Docker").
#   bot:     the Discord and Slack bots (and the console, db and config commands): NumPy decoding, no
#            TensorFlow, a fraction of the size and memory.
#   trainer: everything, TensorFlow included: the trainer, `chatsmith train`, `eval`, `demo` (the default).
#   docker build --target bot -t chatsmith-bot .                                  # the bots
#   docker build -t chatsmith .                                                   # trainer, CPU TensorFlow
#   docker build -t chatsmith:cuda --build-arg TENSORFLOW_VARIANT=cuda .          # GPU trainers
#   docker run --init --env-file .env -v chatsmith-data:/data chatsmith-bot bot discord   # or: bot slack
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------- build: a virtual environment in /opt/venv
# The bots' venv: the dependencies without TensorFlow.
FROM ${PYTHON_IMAGE} AS build-bot
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
WORKDIR /src
RUN python -m venv /opt/venv
# A C compiler for chatsmith's three compiled modules (setup.py: the sampler, the GRU step and the
# float16 products every reply runs); only the build stages have it, the images do not.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
# Dependencies first, in their own layer, computed from pyproject.toml alone: editing the code or the
# README does not reinstall them. The cache mount keeps downloaded wheels between builds and out of the
# image.
COPY pyproject.toml docker/requirements.py ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python requirements.py bot > requirements.txt \
    && pip install --requirement requirements.txt
# Then chatsmith itself, without touching the dependencies.
COPY README.md setup.py ./
COPY chatsmith chatsmith
COPY errortext errortext
COPY textgen textgen
COPY db db
COPY trainer trainer
COPY bot bot
# chatsmith/data (the demo corpus, the packaged base-model bundle) is copied whole: the package-data
# globs in pyproject.toml may miss nested directories, and a bot without its base model cannot answer.
# `python -I` keeps /src off sys.path, so the installed package is the one found (and smoke-tested).
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps . \
    && package="$(python -I -c 'import chatsmith, pathlib; print(pathlib.Path(chatsmith.__file__).parent)')" \
    && mkdir -p "$package/data" \
    && cp -a chatsmith/data/. "$package/data/" \
    && python -I -c 'from chatsmith.cli import build_parser; build_parser()'

# The trainer's venv: the same, with TensorFlow.
FROM ${PYTHON_IMAGE} AS build
# cpu: TensorFlow's CPU wheels. cuda: `pip install '.[cuda]'`, TensorFlow with the CUDA libraries as
# wheels, so the same slim base serves GPUs (the host needs the NVIDIA driver and container toolkit).
ARG TENSORFLOW_VARIANT=cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
WORKDIR /src
RUN python -m venv /opt/venv
# A C compiler for chatsmith's three compiled modules (setup.py: the sampler, the GRU step and the
# float16 products every reply runs); only the build stages have it, the images do not.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml docker/requirements.py ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python requirements.py "$TENSORFLOW_VARIANT" > requirements.txt \
    && pip install --requirement requirements.txt
COPY README.md setup.py ./
COPY chatsmith chatsmith
COPY errortext errortext
COPY textgen textgen
COPY db db
COPY trainer trainer
COPY bot bot
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps . \
    && package="$(python -I -c 'import chatsmith, pathlib; print(pathlib.Path(chatsmith.__file__).parent)')" \
    && mkdir -p "$package/data" \
    && cp -a chatsmith/data/. "$package/data/" \
    && python -I -c 'from chatsmith.cli import build_parser; build_parser()'

# ---------------------------------------------------------------- runtime: what both targets share
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="chatsmith" \
      org.opencontainers.image.description="Discord and Slack channels turned into a chatbot (bot discord | bot slack | trainer)" \
      org.opencontainers.image.licenses="MIT"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    CHATSMITH_DATA_DIR=/data
# A numeric uid/gid: Kubernetes' runAsNonRoot can verify it, and a host bind mount can be chowned to it.
# /data/models exists in the image so that a fresh named volume mounted there inherits the ownership.
RUN useradd --create-home --uid 10001 --user-group chatsmith \
    && mkdir -p /data/models \
    && chown -R 10001:10001 /data
COPY --chmod=0755 docker/entrypoint.sh /usr/local/bin/chatsmith-entrypoint
USER 10001:10001
WORKDIR /home/chatsmith
VOLUME ["/data"]
# Slack HTTP mode (CHATSMITH_SLACK_MODE=http) listens here; the other roles open no port.
EXPOSE 3000
# Every role needs the database at the code's schema: `db current` exits 1 when it is unreachable or
# out of date. It imports no TensorFlow, so it stays cheap next to the role it checks.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["chatsmith", "db", "current"]
# The entrypoint applies migrations (`chatsmith db upgrade`), then execs `chatsmith <command>`.
ENTRYPOINT ["chatsmith-entrypoint"]
CMD ["console"]

# ---------------------------------------------------------------- bot: the bots, no TensorFlow
FROM runtime AS bot
LABEL io.chatsmith.tensorflow-variant="none"
COPY --from=build-bot /opt/venv /opt/venv

# ---------------------------------------------------------------- trainer: everything (the default target)
FROM runtime AS trainer
ARG TENSORFLOW_VARIANT=cpu
LABEL io.chatsmith.tensorflow-variant="${TENSORFLOW_VARIANT}"
COPY --from=build /opt/venv /opt/venv
