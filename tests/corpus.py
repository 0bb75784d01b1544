"""The shared third-party corpus (../shared/corpus beside the checkout): Universe packages and schemas."""

from __future__ import annotations

import json
from pathlib import Path

CORPUS_DIR = Path(__file__).resolve().parents[2] / "shared" / "corpus"
UNIVERSE_DIR = CORPUS_DIR / "universe"
SCHEMA_DIR = UNIVERSE_DIR / "schema"


def package_dirs() -> list[Path]:
    """Every package revision directory, as packages/<letter>/<name>/<revision>."""
    return sorted(UNIVERSE_DIR.glob("packages/*/*/*"), key=lambda path: (path.parent.name, int(path.name)))


def revision_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def schema(name: str) -> dict:
    return json.loads((SCHEMA_DIR / name).read_text())
