"""Plain Python: error codes, digests, the .dcos format, Universe metadata, the builder and dcos-registry.
Imports no other project package, and none of Django, DRF, Celery or prometheus_client.
"""
