"""Restore figures: a registry with a long audit log, restored side by side with a baseline in the same run.

A source registry gets ``--events`` audit events (plus a few clusters, tokens and users) and is backed
up to a directory. The backup is then restored by ``manage.py restore`` into fresh, migrated
databases, twice each way:

- ours: the backup's creation times are put back with one UPDATE … FROM (VALUES …) per batch;
- baseline: the same restore with Django's ``bulk_update`` (one CASE per row) doing it instead.

The figure is the restore's wall time, best of ``--repeat``; schema creation is not counted (the
databases are migrated first). SQLite in temporary data directories by default; ``--postgres URL``
(a server URL whose user may create databases) runs against PostgreSQL instead.

    .venv/bin/python bench/restore.py [--events 50000] [--repeat 2] [--postgres postgres://postgres@127.0.0.1:5432]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

PROJECT_DIR = Path(__file__).resolve().parent.parent

SEED = """
from access.audit import Actor
from access.models import AuditEvent, Cluster
from access.tokens import create_token
from django.contrib.auth.models import User
for number in range(5):
    cluster = Cluster.objects.create(name=f"cluster-{number}")
    create_token(f"cluster {number}", "read", cluster, actor=Actor("user:bench"))
    User.objects.create_user(f"user-{number}", password="a-password")
AuditEvent.objects.bulk_create(
    [AuditEvent(actor="token:ci (0123456789ab)", action="upload", target=f"hello 1.0.{number}",
                details={"job": str(number)}, remote_addr="10.0.0.1") for number in range(EVENTS)],
    batch_size=1000)
"""
# The baseline, run by `manage.py shell`: the same restore with bulk_update putting the times back.
BASELINE_RESTORE = """
from datetime import datetime
from django.core.management import call_command
import operations.restore

def keep_times(model, rows, records, fields):
    for row, record in zip(rows, records):
        for name in fields:
            setattr(row, name, datetime.fromisoformat(record[name]))
    model.objects.bulk_update(rows, fields)

operations.restore._keep_times = keep_times
call_command("restore", "--from", {source!r})
"""


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT_DIR, env=env, check=True,
                   stdout=subprocess.DEVNULL)


def registry_env(data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "STORAGE_URL", "CELERY_BROKER_URL", "REGISTRY_DATA_DIR")}
    env.update(REGISTRY_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="registry_site.settings")
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


class Databases:
    """Fresh databases: SQLite files in new data directories, or new PostgreSQL databases (dropped at the end)."""

    def __init__(self, postgres: str | None):
        self.postgres = postgres.rstrip("/") if postgres else None
        self.created: list[str] = []

    def new(self) -> str | None:
        if not self.postgres:
            return None
        name = f"bench_restore_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(f"{self.postgres}/postgres", autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return f"{self.postgres}/{name}"

    def drop_all(self) -> None:
        if not self.created:
            return
        with psycopg.connect(f"{self.postgres}/postgres", autocommit=True) as connection:
            for name in self.created:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def timed_restore(backup: Path, database_url: str | None, work: Path, baseline: bool) -> float:
    env = registry_env(work / uuid.uuid4().hex, database_url)
    manage("migrate", "--no-input", "-v0", env=env)
    started = time.perf_counter()
    if baseline:
        manage("shell", "-v0", "-c", BASELINE_RESTORE.format(source=str(backup)), env=env)
    else:
        manage("restore", "--from", str(backup), env=env)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--postgres", help="A PostgreSQL server URL to create the databases on (default: SQLite).")
    args = parser.parse_args()

    databases = Databases(args.postgres)
    with tempfile.TemporaryDirectory(prefix="bench-restore-") as temporary:
        work = Path(temporary)
        try:
            source = registry_env(work / "source", databases.new())
            manage("migrate", "--no-input", "-v0", env=source)
            manage("shell", "-v0", "-c", SEED.replace("EVENTS", str(args.events)), env=source)
            manage("backup", "--to", str(work / "backup"), env=source)
            ways = (("baseline (bulk_update)", True), ("ours (UPDATE … FROM VALUES)", False))
            figures = {label: min(timed_restore(work / "backup", databases.new(), work, baseline)
                                  for _ in range(args.repeat)) for label, baseline in ways}
        finally:
            databases.drop_all()
    print(f"Restore of {args.events} audit events on {'PostgreSQL' if args.postgres else 'SQLite'}, "
          f"best of {args.repeat}:")
    for label, seconds in figures.items():
        print(f"  {label:<30} {seconds:7.1f} s")
    baseline, ours = figures.values()
    print(f"  ours / baseline: {ours / baseline:.2f}x")


if __name__ == "__main__":
    main()
