"""The layer contracts in pyproject.toml hold on the tree, and `lint-imports` breaks, naming the import, when a module
imports a layer above its own, pulls the server's stack into dcos_bundle, or closes a cycle inside a package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
PACKAGES = CONFIG["root_packages"]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LINT_IMPORTS, "--no-logo", "--no-cache"],
        cwd=tree,
        # The copy's packages, not the installed project's, are the ones analysed.
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_tree_keeps_every_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(CONFIG['contracts'])} kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "added_import", "report"),
    [
        pytest.param(
            "blobs/models.py", "import ingest.models",
            ["blobs is not allowed to import ingest", "blobs.models -> ingest.models"],
            id="a layer importing one above it",
        ),
        pytest.param(
            "access/tokens.py", "from operations.gc import collect",
            ["access is not allowed to import operations", "access.tokens -> operations.gc"],
            id="a layer importing one far above it",
        ),
        pytest.param(
            "dcos_bundle/digests.py", "from django.conf import settings",
            ["dcos_bundle is not allowed to import django", "dcos_bundle.digests -> django"],
            id="dcos_bundle importing Django",
        ),
        pytest.param(
            "dcos_bundle/reader.py", "from rest_framework import status",
            ["dcos_bundle is not allowed to import rest_framework", "dcos_bundle.reader -> rest_framework"],
            id="dcos_bundle importing DRF",
        ),
        pytest.param(
            "telemetry/metrics.py", "from dcos_bundle.errors import ErrorCode",
            ["telemetry is not allowed to import dcos_bundle", "telemetry.metrics -> dcos_bundle.errors"],
            id="telemetry importing a project package",
        ),
        pytest.param(
            "ingest/models.py", "import ingest.pipeline",
            ["No cycles are allowed in ingest"],
            id="a cycle inside a package",
        ),
    ],
)
def test_a_wrong_import_breaks_a_contract_and_is_named(tmp_path, module, added_import, report):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    assert lint_imports(tmp_path).returncode == 0, "the untouched copy keeps the contracts"

    with (tmp_path / module).open("a") as source:
        source.write(f"\n{added_import}\n")
    result = lint_imports(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    for line in report:
        assert line in result.stdout
