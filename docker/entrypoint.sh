#!/bin/sh
# Container entrypoint: apply database migrations, then run `chatsmith <command>` (e.g. `bot discord`,
# `bot slack`, `trainer`) as this process, so that it receives the container's SIGTERM.
#
# - `config ...`, `db ...` and help run at once: they must work while the database is down or old.
# - The database may still be starting (compose, Kubernetes): `db upgrade` is retried for up to
#   CHATSMITH_DB_WAIT_SECONDS (default 60) before the container gives up.
# - Several containers may start together; on an up-to-date schema `db upgrade` only reads the version.
set -eu

# CHATSMITH_BIN: the tests put a stand-in here; in the image it is the installed `chatsmith`.
CHATSMITH=${CHATSMITH_BIN:-chatsmith}

case "${1:-}" in
    "" | -h | --help | config | db)
        exec "$CHATSMITH" "$@"
        ;;
esac

wait_seconds=${CHATSMITH_DB_WAIT_SECONDS:-60}
case "$wait_seconds" in
    '' | *[!0-9]*)
        echo "error: CHATSMITH_DB_WAIT_SECONDS must be a whole number of seconds, got '$wait_seconds'" >&2
        exit 2
        ;;
esac

deadline=$(($(date +%s) + wait_seconds))
until "$CHATSMITH" db upgrade; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "error: the database is still unavailable after ${wait_seconds}s; check CHATSMITH_DATABASE_URL" \
            "with \`chatsmith config check\`" >&2
        exit 1
    fi
    echo "entrypoint: database not ready; retrying in 2s" >&2
    sleep 2
done

exec "$CHATSMITH" "$@"
