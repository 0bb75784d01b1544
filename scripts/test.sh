#!/usr/bin/env bash
# Command 2: install, check the layer contracts, start every service the suite needs if it is not already running
# (PostgreSQL, Redis, SeaweedFS as the real S3 server, a Docker engine), run the whole suite, stop what this
# script started. A service that cannot start is an error, never a skipped test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
ensure_venv requirements-test.txt

# The layer contracts in pyproject.toml come first: a broken one stops the run with its report.
lint-imports --no-logo --no-cache

SERVICES_DIR=$PWD/.services
mkdir -p "$SERVICES_DIR"
PG_PORT=5432
REDIS_PORT=6379
started=()

stop_started() {
  local service
  for service in "${started[@]}"; do
    case $service in
      postgresql) pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main stop || true ;;
      redis) redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true ;;
      seaweedfs) scripts/seaweedfs.sh stop || true ;;
      dockerd) scripts/dockerd.sh stop || true ;;
    esac
  done
}
trap stop_started EXIT

need_debian_packages() {
  # Install what a fresh machine lacks; the packages come from Debian's archive.
  local missing=()
  local pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing ${missing[*]} from Debian's packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

wait_for() {
  local what=$1 seconds=$2
  shift 2
  for _ in $(seq "$seconds"); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 1
  done
  echo "$what did not come up within ${seconds}s." >&2
  return 1
}

need_debian_packages pg_isready:postgresql redis-server:redis-server dockerd:docker.io skopeo:skopeo busybox:busybox-static \
  chromium:chromium chromedriver:chromium-driver nginx:nginx pigz:pigz

if ! pg_isready -h 127.0.0.1 -p "$PG_PORT" -q; then
  echo "Starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
  started+=(postgresql)
  wait_for PostgreSQL 30 pg_isready -h 127.0.0.1 -p "$PG_PORT" -q
fi

if ! redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  echo "Starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$SERVICES_DIR" --logfile "$SERVICES_DIR/redis.log"
  started+=(redis)
  wait_for Redis 30 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping
fi

if ! scripts/seaweedfs.sh status >/dev/null 2>&1; then
  scripts/seaweedfs.sh start
  started+=(seaweedfs)
fi
eval "$(scripts/seaweedfs.sh env)"

if ! scripts/dockerd.sh status >/dev/null 2>&1; then
  scripts/dockerd.sh start
  started+=(dockerd)
fi
eval "$(scripts/dockerd.sh env)"

export DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:$PG_PORT/registry}
export TEST_REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/15}
export CELERY_BROKER_URL=$TEST_REDIS_URL
REGISTRY_DATA_DIR=$(mktemp -d -t registry-test-XXXXXX)
export REGISTRY_DATA_DIR

set +e
python -m pytest "$@"
status=$?
set -e
rm -rf "$REGISTRY_DATA_DIR"
exit $status
