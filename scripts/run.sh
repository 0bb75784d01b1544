#!/usr/bin/env bash
# Command 1: install and run the registry on the embedded defaults (SQLite, local disk,
# filesystem broker) — web server on 127.0.0.1:8000 and a Celery worker, in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
ensure_venv requirements.txt

python manage.py migrate --no-input
python manage.py collectstatic --no-input --verbosity 0
exec python manage.py runregistry "$@"
