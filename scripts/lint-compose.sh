#!/usr/bin/env bash
# Lint docker-compose.yml against the Compose specification and dclint's rules, with
# no Docker daemon. dclint is pinned in package.json: `npm ci` installs it.
# Extra arguments go to dclint (e.g. --no-color, -f json).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dclint=node_modules/.bin/dclint
if [[ ! -x "$dclint" ]]; then
  echo "lint-compose: $dclint not found; run 'npm ci' first" >&2
  exit 2
fi
# Warnings fail too: the file is kept free of them.
exec "$dclint" --max-warnings 0 "$@" docker-compose.yml
