import subprocess
import sys

import pytest

from blobs.drivers.local import LocalBlobStore
from blobs.models import StorageBackend
from blobs.store import StorageBackendMismatch, ensure_backend_lock
from tests.processes import free_port, manage, registry_env


@pytest.mark.django_db
def test_first_start_records_the_backend(local_storage):
    lock = ensure_backend_lock()
    assert (lock.kind, lock.identity) == ("local", local_storage.identity)
    assert StorageBackend.objects.count() == 1


@pytest.mark.django_db
def test_a_later_start_with_the_same_backend_is_accepted(local_storage):
    first = ensure_backend_lock()
    assert ensure_backend_lock(LocalBlobStore(local_storage.root)) == first
    assert StorageBackend.objects.count() == 1


@pytest.mark.django_db
def test_a_different_backend_is_refused_with_the_migration_command(local_storage, tmp_path, settings):
    ensure_backend_lock()
    elsewhere = LocalBlobStore(tmp_path / "elsewhere")
    with pytest.raises(StorageBackendMismatch) as refused:
        ensure_backend_lock(elsewhere)
    message = str(refused.value)
    assert local_storage.identity in message and elsewhere.identity in message
    assert f"manage.py migrate_storage --to {settings.STORAGE_URL}" in message
    assert StorageBackend.objects.get().identity == local_storage.identity


@pytest.mark.slow
def test_processes_refuse_to_start_on_another_backend(tmp_path):
    env = registry_env(tmp_path / "data")
    manage("migrate", "--no-input", env=env)
    manage("shell", "-c", "from blobs.store import ensure_backend_lock; ensure_backend_lock()", env=env)
    moved = dict(env, STORAGE_URL=(tmp_path / "moved").as_uri())

    run = manage("runregistry", "--bind", f"127.0.0.1:{free_port()}", env=moved, check=False)
    assert run.returncode != 0
    assert "Refusing to start" in run.stderr and "migrate_storage --to" in run.stderr

    worker = subprocess.run(
        [sys.executable, "-m", "celery", "--app", "registry_site", "worker", "--pool", "solo"],
        env=moved, capture_output=True, text=True, timeout=60,
    )
    assert worker.returncode != 0
    assert "migrate_storage --to" in worker.stderr
