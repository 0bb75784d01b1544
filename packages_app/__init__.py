"""The catalogue: packages, versions and their blobs, served as /repo, /resource, /v2 and its API.
May import access, blobs, telemetry and dcos_bundle.
"""
