# chatsmith: one image for every role (`bot discord`, `bot slack`, `trainer`, `console`).
#   docker build -t chatsmith .                                   # CPU TensorFlow
#   docker build -t chatsmith:cuda --build-arg TENSORFLOW_VARIANT=cuda .   # GPU trainers
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG TENSORFLOW_VARIANT=cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Dependencies first, in their own layer: code changes do not reinstall TensorFlow.
COPY pyproject.toml README.md ./
RUN mkdir -p chatsmith textgen db trainer bot \
    && touch chatsmith/__init__.py textgen/__init__.py db/__init__.py trainer/__init__.py bot/__init__.py \
    && if [ "$TENSORFLOW_VARIANT" = "cuda" ]; then extra="[cuda]"; else extra=""; fi \
    && pip install ".${extra}" \
    && pip uninstall -y chatsmith
COPY chatsmith chatsmith
COPY textgen textgen
COPY db db
COPY trainer trainer
COPY bot bot
RUN pip install --no-deps .

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    CHATSMITH_DATA_DIR=/data
RUN useradd --create-home --uid 10001 chatsmith \
    && mkdir -p /data \
    && chown chatsmith:chatsmith /data
COPY --from=build /opt/venv /opt/venv
COPY docker/entrypoint.sh /usr/local/bin/chatsmith-entrypoint
USER chatsmith
WORKDIR /home/chatsmith
VOLUME ["/data"]
# The health check asks the database and the model store, the same way every role sees them.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["chatsmith", "db", "current"]
ENTRYPOINT ["chatsmith-entrypoint"]
CMD ["console"]
