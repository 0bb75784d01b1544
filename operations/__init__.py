"""Maintenance: GC, verify, backup, restore, storage migration, and the OperationRun records of their runs.
May import ingest, packages_app, access, blobs, telemetry and dcos_bundle.
"""
