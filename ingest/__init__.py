"""Uploads, staging, the ingest pipeline and its stages (stages/), its Celery tasks and the job models.
May import packages_app, access, blobs, telemetry and dcos_bundle.
"""
