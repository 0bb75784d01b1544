"""Ingest tests run the pipeline's tasks in-process (Celery eager) unless they start real workers."""

from __future__ import annotations

import pytest

from registry_site.celery import app as celery_app


@pytest.fixture
def eager_tasks():
    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = saved


@pytest.fixture
def registry(transactional_db, local_storage, settings, tmp_path, eager_tasks):
    """A registry with an empty local blob store and staging, running ingest inline."""
    settings.STAGING_DIR = tmp_path / "staging"
    settings.STAGING_DIR.mkdir()
    settings.INGEST_PROGRESS_INTERVAL = 0
    return local_storage
