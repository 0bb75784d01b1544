#!/usr/bin/env bash
# A private Docker engine (Debian's dockerd) for the tests that export images from it.
#
#   scripts/dockerd.sh start|stop|status|env
#
# It listens on its own unix socket only (no TCP), touches neither the host's networking
# (no bridge, no iptables) nor a system dockerd, and keeps its data, log and pid file in
# DOCKERD_DIR (default <repo>/.services/dockerd).
# Use it from tests with:  eval "$(scripts/dockerd.sh env)"
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO/scripts/service-lib.sh"
DIR="${DOCKERD_DIR:-$REPO/.services/dockerd}"
DIR="$(realpath -m "$DIR")"
# Unix socket paths are limited to 107 bytes, and dockerd's own containerd puts
# "containerd/containerd-debug.sock" under the exec root: when DIR is too long for that,
# the sockets and exec root go to a short directory named after DIR instead.
if [ $((${#DIR} + 40)) -le 107 ]; then
    RUN_DIR="$DIR"
else
    RUN_DIR="/tmp/dockerd-$(printf %s "$DIR" | sha256sum | cut -c1-12)"
fi
SOCKET="$RUN_DIR/docker.sock"
EXEC_ROOT="$RUN_DIR/exec"
PID_FILE="$DIR/dockerd.pid"
LOG_FILE="$DIR/dockerd.log"

engine_answers() {
    timeout 10 docker -H "unix://$SOCKET" version --format '{{.Server.Version}}' >/dev/null 2>&1
}

our_pid() {
    running_pid "$PID_FILE" dockerd
}

start() {
    if engine_answers; then
        echo "A Docker engine already answers on $SOCKET; not starting another."
        exit 0
    fi
    command -v dockerd >/dev/null || { echo "No dockerd (apt-get install docker.io)." >&2; exit 1; }
    mkdir -p "$DIR/data" "$EXEC_ROOT"
    # An empty config file: settings in /etc/docker/daemon.json (mirrors, proxies) stay out.
    echo '{}' >"$DIR/daemon.json"
    # vfs works on any filesystem, overlay or not, at the cost of disk space (fine for tests).
    setsid dockerd \
        --config-file "$DIR/daemon.json" \
        --host "unix://$SOCKET" \
        --data-root "$DIR/data" \
        --exec-root "$EXEC_ROOT" \
        --pidfile "$PID_FILE" \
        --storage-driver vfs \
        --iptables=false --ip-masq=false --bridge=none \
        </dev/null >"$LOG_FILE" 2>&1 &
    local launched=$!
    for _ in $(seq 60); do
        if engine_answers; then
            echo "Docker engine is up on $SOCKET (pid $(cat "$PID_FILE"), data in $DIR)."
            exit 0
        fi
        kill -0 "$launched" 2>/dev/null || break
        sleep 1
    done
    echo "dockerd did not come up on $SOCKET; last log lines:" >&2
    tail -n 40 "$LOG_FILE" >&2
    # dockerd may not have written its pid file yet; the process launched here is dockerd itself.
    echo "$launched" >"$PID_FILE"
    stop >/dev/null
    exit 1
}

stop() {
    local pid
    if ! pid="$(our_pid)"; then
        echo "No dockerd started by this script is running."
        return 0
    fi
    # dockerd stops its containerd before it exits.
    terminate dockerd "$pid"
    rm -f "$PID_FILE"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status)
        if engine_answers; then
            echo "A Docker engine answers on $SOCKET."
        else
            echo "No Docker engine answers on $SOCKET." >&2
            exit 1
        fi
        ;;
    env) echo "export DOCKER_HOST=unix://$SOCKET" ;;
    *)
        echo "usage: $0 start|stop|status|env" >&2
        exit 2
        ;;
esac
