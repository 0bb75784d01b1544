"""Who is served and who may act: clusters, API tokens, authentication, permissions, audit log, throttling.
May import blobs, telemetry and dcos_bundle.
"""
