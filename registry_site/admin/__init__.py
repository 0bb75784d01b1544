"""The operator's admin: one module per layer it shows, each registering that layer's models."""

from . import access, blobs, catalogue, ingest, operations  # noqa: F401  (registration happens on import)
