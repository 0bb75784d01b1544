"""The one error type of bundle handling, from the builder to the ingest pipeline.

Plain Python (no Django). ``code`` is machine-readable and stable, ``message`` is a sentence
for people, ``details`` says where (which file, field, member, layer or URL).
"""

from __future__ import annotations


class RegistryError(Exception):
    def __init__(self, code: str, message: str, **details):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def to_json(self) -> dict:
        return {"code": self.code, "message": self.message, "details": self.details}
