"""Universe revision directories become build definitions, for every packagingVersion."""

from __future__ import annotations

import base64
import json

import jsonschema
import pytest

from dcos_bundle.errors import RegistryError
from dcos_bundle.universe.migrate import load_build_definition, metadata_from_package_directory, migrate_package
from tests.corpus import package_dirs, revision_id, schema

REVISIONS = package_dirs()


@pytest.fixture(scope="module")
def metadata_validator():
    return jsonschema.Draft4Validator(schema("metadata-schema.json"))


@pytest.fixture(scope="module")
def build_definition_validator():
    return jsonschema.Draft4Validator(schema("build-definition-schema.json"))


def test_the_corpus_is_there():
    assert len(REVISIONS) == 361


@pytest.mark.parametrize("revision", REVISIONS, ids=revision_id)
def test_every_revision_migrates_to_valid_metadata(
    revision, tmp_path, metadata_validator, build_definition_validator
):
    definition_path = migrate_package(revision, tmp_path)
    package = json.loads((revision / "package.json").read_text())
    assert definition_path.name == f"{package['name']}-{package['version']}.json"
    definition = json.loads(definition_path.read_text())
    assert [error.message for error in build_definition_validator.iter_errors(definition)] == []

    metadata = load_build_definition(definition_path)
    assert [error.message for error in metadata_validator.iter_errors(metadata)] == []
    assert metadata == metadata_from_package_directory(revision)
    assert "selected" not in metadata and "releaseVersion" not in metadata
    assert metadata["packagingVersion"] == {"2.0": "3.0"}.get(package["packagingVersion"], package["packagingVersion"])
    assert metadata["resource"] == json.loads((revision / "resource.json").read_text())
    if (revision / "marathon.json.mustache").exists():
        template = base64.b64decode(metadata["marathon"]["v2AppMustacheTemplate"])
        assert template == (revision / "marathon.json.mustache").read_bytes()
    if (revision / "command.json").exists():
        assert metadata["command"] == json.loads((revision / "command.json").read_text())
    for field in ("lastUpdated", "hasKnownIssues"):
        if field in package:
            assert metadata[field] == package[field]


def test_duplicate_keys_keep_the_last_value_as_the_universe_did(tmp_path):
    revision = next(path for path in REVISIONS if revision_id(path) == "postgresql-admin/1")
    raw = (revision / "package.json").read_text()
    assert raw.count('"postInstallNotes"') == 2
    metadata = load_build_definition(migrate_package(revision, tmp_path))
    assert metadata["postInstallNotes"] == json.loads(raw)["postInstallNotes"]


def test_build_definition_references_a_self_contained_folder(tmp_path):
    revision = next(path for path in REVISIONS if (path / "config.json").exists())
    output = tmp_path / "out"
    definition_path = migrate_package(revision, output)
    definition = json.loads(definition_path.read_text())
    stem = definition_path.stem
    assert definition["config"] == f"@{stem}/config.json"
    assert definition["resource"] == f"@{stem}/resource.json"
    assert definition["marathon"] == {"v2AppMustacheTemplate": f"@{stem}/marathon.json.mustache"}
    moved = tmp_path / "moved"
    output.rename(moved)
    assert load_build_definition(moved / definition_path.name) == metadata_from_package_directory(revision)


def test_migrate_refuses_to_overwrite(tmp_path):
    migrate_package(REVISIONS[0], tmp_path)
    with pytest.raises(RegistryError) as caught:
        migrate_package(REVISIONS[0], tmp_path)
    assert caught.value.code == "output_exists"


@pytest.mark.parametrize(
    "files, code",
    [
        ({}, "file_missing"),
        ({"package.json": "{not json"}, "invalid_json"),
        ({"package.json": '{"packagingVersion": "3.0", "name": "x", "version": "1"}'}, "file_missing"),
        ({"package.json": '{"packagingVersion": "4.0", "name": "x", "version": "1"}', "resource.json": "{}",
          "command.json": '{"pip": []}'}, "invalid_package"),
    ],
    ids=["no-package-json", "broken-json", "no-resource-json", "command-in-4.0"],
)
def test_broken_package_directories_get_specific_errors(tmp_path, files, code):
    package_dir = tmp_path / "pkg"
    package_dir.mkdir()
    for name, content in files.items():
        (package_dir / name).write_text(content)
    with pytest.raises(RegistryError) as caught:
        migrate_package(package_dir, tmp_path / "out")
    assert caught.value.code == code
    assert not (tmp_path / "out").exists()


def test_missing_referenced_file_names_the_field(tmp_path):
    definition = tmp_path / "x-1.json"
    definition.write_text(json.dumps({"packagingVersion": "4.0", "name": "x", "version": "1",
                                      "marathon": {"v2AppMustacheTemplate": "@gone.mustache"}}))
    with pytest.raises(RegistryError) as caught:
        load_build_definition(definition)
    assert caught.value.code == "file_missing"
    assert "marathon.v2AppMustacheTemplate" in caught.value.message
