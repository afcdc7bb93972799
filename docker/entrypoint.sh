#!/bin/sh
# Apply database migrations, then start the requested role (for example `bot discord` or `trainer`).
set -eu
chatsmith db upgrade
exec chatsmith "$@"
