#!/usr/bin/env bash
# Install what the tests need, start the real local stack (Redis, Kafka, Elasticsearch), run the whole suite.
# Used as-is by CI (.ci/run). Safe to re-run: installs and a running stack are reused.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== system packages (redis-server, redis-tools, chromium)"
bash scripts/install-system-deps.sh

echo "== python packages"
python -m pip install --quiet --disable-pip-version-check -e '.[test,telemetry,learn,export,plots,rllib]'

echo "== local stack"
mdde-stream stack up
eval "$(mdde-stream stack env)"
if [ "${MDDE_KEEP_STACK:-0}" != "1" ]; then
  trap 'mdde-stream stack down || true' EXIT
fi

echo "== tests"
status=0
python -m pytest -p no:cacheprovider --timeout=900 -q "$@" || status=$?
exit "$status"
