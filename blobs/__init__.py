"""Content-addressed blobs: the Blob and StorageBackend models, the drivers, the configured store and its lock.
May import telemetry and dcos_bundle.
"""
