"""dcos_bundle.universe.metadata compared with Universe's own metadata-schema.json.

The registry validates metadata with its own code and never uses the schema at runtime. These tests hold that code
to the schema. Every corpus revision must be valid. Each mutation in REJECTED and ACCEPTED must get the same verdict
from the official schema run through jsonschema. BEYOND_THE_SCHEMA and ECMA_262_WHITESPACE list the cases where we
differ from jsonschema on purpose, and say why.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict
from functools import cache

import jsonschema
import pytest

from dcos_bundle.errors import RegistryError
from dcos_bundle.universe.metadata import FieldError, check_metadata, validate_metadata
from dcos_bundle.universe.migrate import metadata_from_package_directory
from tests.corpus import UNIVERSE_DIR, package_dirs, revision_id, schema

REVISIONS = package_dirs()

# One real revision per packagingVersion, chosen for what they contain. 3.0 has `command`, `cli` and
# assets.uris["jre-tar-gz"]. 4.0 has licenses, Docker images, `cli` and upgradesFrom/downgradesTo. 5.0 has `manager`.
BASES = {"3.0": "A/alluxio-enterprise/0", "4.0": "S/spark/800", "5.0": "K/kubernetes-cluster/0"}
DELETE = object()
BINARIES = ("resource", "cli", "binaries")
LINUX_CLI = (*BINARIES, "linux", "x86-64")
LINUX_CLI_PATH = '$.resource.cli.binaries.linux["x86-64"]'
CONTENT_HASH = (*LINUX_CLI, "contentHash")
HASH = (*CONTENT_HASH, 0)
HASH_PATH = f"{LINUX_CLI_PATH}.contentHash[0]"
TEMPLATE = ("marathon", "v2AppMustacheTemplate")
TEMPLATE_PATH = "$.marathon.v2AppMustacheTemplate"
SCREENSHOTS = ("resource", "images", "screenshots")
JRE_URI = ("resource", "assets", "uris", "jre-tar-gz")
JRE_URI_PATH = '$.resource.assets.uris["jre-tar-gz"]'


@cache
def base(version: str) -> dict:
    return metadata_from_package_directory(UNIVERSE_DIR / "packages" / BASES[version])


@cache
def official_validator() -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(schema("metadata-schema.json"))


def mutated(version: str, path: tuple, value):
    """A copy of the base metadata with `value` at `path` (or removed there). The empty path replaces all of it."""
    if not path:
        return value
    metadata = copy.deepcopy(base(version))
    *parents, last = path
    target = metadata
    for step in parents:
        target = target[step]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return metadata


@pytest.mark.parametrize("directory", REVISIONS, ids=revision_id)
def test_every_corpus_revision_is_valid(directory):
    assert validate_metadata(metadata_from_package_directory(directory)) == []


def reject(name, version, path, value, expected_path):
    return pytest.param(version, path, value, expected_path, id=name)


REJECTED = [
    # packagingVersion: the schema's oneOf matches none of the three.
    reject("packaging-2.0", "3.0", ("packagingVersion",), "2.0", "$.packagingVersion"),
    reject("packaging-6.0", "5.0", ("packagingVersion",), "6.0", "$.packagingVersion"),
    reject("packaging-number", "4.0", ("packagingVersion",), 4.0, "$.packagingVersion"),
    reject("packaging-missing", "4.0", ("packagingVersion",), DELETE, "$"),
    reject("not-an-object", "4.0", (), ["spark"], "$"),
    # Required fields and the types of plain fields.
    reject("name-missing", "4.0", ("name",), DELETE, "$"),
    reject("maintainer-missing", "5.0", ("maintainer",), DELETE, "$"),
    reject("tags-missing", "3.0", ("tags",), DELETE, "$"),
    reject("description-null", "4.0", ("description",), None, "$.description"),
    reject("scm-number", "4.0", ("scm",), 1, "$.scm"),
    reject("notes-array", "3.0", ("postInstallNotes",), ["done"], "$.postInstallNotes"),
    reject("framework-string", "4.0", ("framework",), "true", "$.framework"),
    reject("has-known-issues-number", "5.0", ("hasKnownIssues",), 0, "$.hasKnownIssues"),
    reject("last-updated-string", "4.0", ("lastUpdated",), "1571120354", "$.lastUpdated"),
    reject("last-updated-boolean", "4.0", ("lastUpdated",), True, "$.lastUpdated"),
    # Patterns.
    reject("name-upper-case", "4.0", ("name",), "Spark", "$.name"),
    reject("name-one-letter", "4.0", ("name",), "s", "$.name"),
    reject("name-trailing-dash", "4.0", ("name",), "spark-", "$.name"),
    reject("version-space", "4.0", ("version",), "1.0 beta", "$.version"),
    reject("version-empty", "4.0", ("version",), "", "$.version"),
    reject("version-number", "4.0", ("version",), 2, "$.version"),
    reject("tags-string", "4.0", ("tags",), "bigdata", "$.tags"),
    reject("tag-space", "4.0", ("tags", 1), "map reduce", "$.tags[1]"),
    reject("tag-number", "4.0", ("tags", 0), 7, "$.tags[0]"),
    reject("dcos-leading-zero", "4.0", ("minDcosReleaseVersion",), "1.01", "$.minDcosReleaseVersion"),
    reject("dcos-suffix", "4.0", ("minDcosReleaseVersion",), "1.11-dev", "$.minDcosReleaseVersion"),
    reject("dcos-number", "4.0", ("minDcosReleaseVersion",), 1.11, "$.minDcosReleaseVersion"),
    # Fields the repository assigns, unknown fields, and fields of other packagingVersions.
    reject("selected", "4.0", ("selected",), True, "$.selected"),
    reject("release-version", "3.0", ("releaseVersion",), 3, "$.releaseVersion"),
    reject("unknown-field", "4.0", ("foo",), 1, "$.foo"),
    reject("upgrades-from-in-3.0", "3.0", ("upgradesFrom",), ["*"], "$.upgradesFrom"),
    reject("downgrades-to-in-3.0", "3.0", ("downgradesTo",), [], "$.downgradesTo"),
    reject("command-in-4.0", "4.0", ("command",), {"pip": []}, "$.command"),
    reject("command-in-5.0", "5.0", ("command",), {"pip": []}, "$.command"),
    reject("manager-in-4.0", "4.0", ("manager",), {"packageName": "spark"}, "$.manager"),
    reject("upgrades-from-string", "4.0", ("upgradesFrom",), "*", "$.upgradesFrom"),
    reject("downgrades-to-number", "5.0", ("downgradesTo",), [1], "$.downgradesTo[0]"),
    # licenses
    reject("licenses-object", "4.0", ("licenses",), {}, "$.licenses"),
    reject("license-url-missing", "4.0", ("licenses", 0, "url"), DELETE, "$.licenses[0]"),
    reject("license-url-empty", "4.0", ("licenses", 0, "url"), "", "$.licenses[0].url"),
    reject("license-url-newline", "4.0", ("licenses", 0, "url"), "\n", "$.licenses[0].url"),
    reject("license-extra", "5.0", ("licenses", 1, "spdx"), "Apache-2.0", "$.licenses[1].spdx"),
    # marathon
    reject("marathon-string", "4.0", ("marathon",), "e30=", "$.marathon"),
    reject("template-missing", "4.0", TEMPLATE, DELETE, "$.marathon"),
    reject("marathon-extra", "4.0", ("marathon", "v2AppTemplate"), "e30=", "$.marathon.v2AppTemplate"),
    reject("template-not-base64", "4.0", TEMPLATE, "{}!", TEMPLATE_PATH),
    reject("template-unpadded", "4.0", TEMPLATE, "e30", TEMPLATE_PATH),
    reject("template-over-padded", "4.0", TEMPLATE, "e30==", TEMPLATE_PATH),
    reject("template-empty", "4.0", TEMPLATE, "", TEMPLATE_PATH),
    # resource, assets, images
    reject("resource-array", "4.0", ("resource",), [], "$.resource"),
    reject("resource-extra", "4.0", ("resource", "icons"), {}, "$.resource.icons"),
    reject("assets-extra", "4.0", ("resource", "assets", "files"), {}, "$.resource.assets.files"),
    reject("uri-number", "3.0", JRE_URI, 5, JRE_URI_PATH),
    reject("container-extra", "4.0", ("resource", "assets", "container", "rkt"), {}, "$.resource.assets.container.rkt"),
    reject(
        "docker-image-object", "4.0", ("resource", "assets", "container", "docker", "spark_docker"), {},
        "$.resource.assets.container.docker.spark_docker",
    ),
    reject("images-extra", "4.0", ("resource", "images", "logo"), "x.png", "$.resource.images.logo"),
    reject("icon-null", "4.0", ("resource", "images", "icon-small"), None, '$.resource.images["icon-small"]'),
    reject("screenshots-string", "4.0", SCREENSHOTS, "a.png", "$.resource.images.screenshots"),
    reject("screenshot-number", "4.0", SCREENSHOTS, [1], "$.resource.images.screenshots[0]"),
    # resource.cli
    reject("cli-extra", "4.0", ("resource", "cli", "python"), {}, "$.resource.cli.python"),
    reject("binaries-missing", "4.0", BINARIES, DELETE, "$.resource.cli"),
    reject("binaries-empty", "4.0", BINARIES, {}, "$.resource.cli.binaries"),
    reject("binaries-unknown-os", "4.0", (*BINARIES, "solaris"), {}, "$.resource.cli.binaries.solaris"),
    reject("x86-64-missing", "4.0", LINUX_CLI, DELETE, "$.resource.cli.binaries.linux"),
    reject("arch-extra", "4.0", (*BINARIES, "linux", "arm64"), {}, "$.resource.cli.binaries.linux.arm64"),
    reject("cli-url-missing", "4.0", (*LINUX_CLI, "url"), DELETE, LINUX_CLI_PATH),
    reject("cli-url-empty", "4.0", (*LINUX_CLI, "url"), "", f"{LINUX_CLI_PATH}.url"),
    reject("cli-kind-tar", "4.0", (*LINUX_CLI, "kind"), "tar", f"{LINUX_CLI_PATH}.kind"),
    reject("cli-extra-field", "4.0", (*LINUX_CLI, "size"), 1, f"{LINUX_CLI_PATH}.size"),
    reject("content-hash-empty", "4.0", CONTENT_HASH, [], f"{LINUX_CLI_PATH}.contentHash"),
    reject("content-hash-md5", "4.0", (*HASH, "algo"), "md5", f"{HASH_PATH}.algo"),
    reject("content-hash-no-value", "4.0", (*HASH, "value"), DELETE, HASH_PATH),
    reject("content-hash-extra", "4.0", (*HASH, "hex"), "00", f"{HASH_PATH}.hex"),
    # command (3.0)
    reject("pip-missing", "3.0", ("command", "pip"), DELETE, "$.command"),
    reject("pip-string", "3.0", ("command", "pip"), "requests", "$.command.pip"),
    reject("pip-number", "3.0", ("command", "pip", 0), 1, "$.command.pip[0]"),
    reject("command-extra", "3.0", ("command", "npm"), [], "$.command.npm"),
    # manager (5.0)
    reject("manager-string", "5.0", ("manager",), "kubernetes", "$.manager"),
    reject("manager-name-pattern", "5.0", ("manager", "packageName"), "Kubernetes", "$.manager.packageName"),
    reject("manager-version-pattern", "5.0", ("manager", "minPackageVersion"), "2 beta", "$.manager.minPackageVersion"),
]


@pytest.mark.parametrize("version, path, value, expected_path", REJECTED)
def test_rejected_like_the_official_schema(version, path, value, expected_path):
    metadata = mutated(version, path, value)
    assert [error.path for error in validate_metadata(metadata)] == [expected_path]
    assert not official_validator().is_valid(metadata)


def accept(name, version, path, value):
    return pytest.param(version, path, value, id=name)


ACCEPTED = [
    accept("without-licenses", "4.0", ("licenses",), DELETE),
    accept("without-resource", "4.0", ("resource",), DELETE),
    accept("without-config", "3.0", ("config",), DELETE),
    accept("without-marathon", "5.0", ("marathon",), DELETE),
    accept("without-command", "3.0", ("command",), DELETE),
    accept("without-cli", "4.0", ("resource", "cli"), DELETE),
    accept("no-tags", "4.0", ("tags",), []),
    accept("any-upgrade", "4.0", ("upgradesFrom",), ["*"]),
    accept("fractional-last-updated", "4.0", ("lastUpdated",), 1571120354.5),
    accept("huge-last-updated", "4.0", ("lastUpdated",), 10**400),
    accept("screenshots", "4.0", SCREENSHOTS, ["https://example.com/1.png"]),
    accept("no-images", "4.0", ("resource", "images"), {}),
    accept("no-darwin-cli", "4.0", (*BINARIES, "darwin"), DELETE),
    accept("zip-cli", "4.0", (*LINUX_CLI, "kind"), "zip"),
    accept("two-hashes", "4.0", CONTENT_HASH, [{"algo": "sha256", "value": "a"}] * 2),
    # The schema only asks for a string as the hash value.
    accept("empty-hash-value", "4.0", (*HASH, "value"), ""),
    # metadata-schema.json asks only for a non-empty URL, unlike the repository schemas with their ^https?://.
    accept("relative-license-url", "4.0", ("licenses", 0, "url"), "LICENSE"),
    accept("config-without-type", "4.0", ("config",), {"properties": {}}),
    accept("dcos-release-zero", "4.0", ("minDcosReleaseVersion",), "0"),
    accept("dcos-release-three-parts", "4.0", ("minDcosReleaseVersion",), "1.10.0"),
    accept("two-letter-name", "4.0", ("name",), "s3"),
    accept("template-with-two-padding", "4.0", TEMPLATE, "YQ=="),
    accept("non-ascii-tag", "4.0", ("tags", 0), "données"),
    # Both schemas leave `manager` open to other fields.
    accept("manager-extra-field", "5.0", ("manager", "channel"), "stable"),
    accept("manager-min-version", "5.0", ("manager", "minPackageVersion"), "2.0.0-1.12.1"),
]


@pytest.mark.parametrize("version, path, value", ACCEPTED)
def test_accepted_like_the_official_schema(version, path, value):
    metadata = mutated(version, path, value)
    assert validate_metadata(metadata) == []
    assert official_validator().is_valid(metadata)


def stricter(name, version, path, value, expected_path):
    return pytest.param(version, path, value, expected_path, id=name)


# We reject these and jsonschema accepts them. If jsonschema changes (for example by adopting ECMA-262 regexes), the
# second assertion fails: move the row to REJECTED then.
BEYOND_THE_SCHEMA = [
    # jsonschema runs patterns through Python's re.search. There, "$" also matches before a trailing newline. In
    # ECMA-262, which JSON Schema prescribes, "$" matches only at the very end.
    stricter("version-newline", "4.0", ("version",), "2.9.0\n", "$.version"),
    stricter("name-newline", "4.0", ("name",), "spark\n", "$.name"),
    stricter("tag-newline", "4.0", ("tags", 0), "bigdata\n", "$.tags[0]"),
    stricter("dcos-newline", "4.0", ("minDcosReleaseVersion",), "1.11\n", "$.minDcosReleaseVersion"),
    stricter("template-newline", "4.0", TEMPLATE, "e30=\n", TEMPLATE_PATH),
    stricter("manager-name-newline", "5.0", ("manager", "packageName"), "kubernetes\n", "$.manager.packageName"),
    # ECMA-262's \s includes U+FEFF. Python's does not.
    stricter("tag-bom", "4.0", ("tags", 0), "big\ufeffdata", "$.tags[0]"),
    # ECMA-262's "." excludes all line terminators. Python's excludes only \n.
    stricter("license-url-cr", "4.0", ("licenses", 0, "url"), "\r", "$.licenses[0].url"),
    stricter("cli-url-line-separator", "4.0", (*LINUX_CLI, "url"), "\u2028", f"{LINUX_CLI_PATH}.url"),
    # The schema's `config` is `{}`, which accepts anything. Cosmos needs a JSON Schema of an object of options.
    stricter("config-array", "4.0", ("config",), [], "$.config"),
    stricter("config-string", "4.0", ("config",), "{}", "$.config"),
    stricter("config-type-array", "4.0", ("config", "type"), "array", "$.config.type"),
    stricter("config-properties-array", "4.0", ("config", "properties"), [], "$.config.properties"),
    # The schema's `command` lacks "type": "object", so any non-object passes.
    stricter("command-string", "3.0", ("command",), "pip install dcos-alluxio", "$.command"),
    # metadata-schema.json does not require manager.packageName. The v5 repository schema and Cosmos do.
    stricter("manager-without-package-name", "5.0", ("manager", "packageName"), DELETE, "$.manager"),
    # JSON has no NaN or Infinity, but Python's json module reads them and jsonschema counts them as numbers.
    stricter("last-updated-nan", "4.0", ("lastUpdated",), float("nan"), "$.lastUpdated"),
    stricter("last-updated-infinity", "4.0", ("lastUpdated",), float("inf"), "$.lastUpdated"),
]


@pytest.mark.parametrize("version, path, value, expected_path", BEYOND_THE_SCHEMA)
def test_stricter_than_jsonschema_on_purpose(version, path, value, expected_path):
    metadata = mutated(version, path, value)
    assert [error.path for error in validate_metadata(metadata)] == [expected_path]
    assert official_validator().is_valid(metadata)


# Characters that only one of ECMA-262's and Python's \s counts as whitespace. A tag is one word under ECMA-262 (the
# schema's dialect) and we follow it, even where jsonschema's Python regex disagrees.
ECMA_262_WHITESPACE = [
    pytest.param("\ufeff", False, id="U+FEFF-is-space"),
    pytest.param("\u3000", False, id="U+3000-is-space"),
    pytest.param("\x85", True, id="U+0085-is-not-space"),
    pytest.param("\x1c", True, id="U+001C-is-not-space"),
]


@pytest.mark.parametrize("character, valid", ECMA_262_WHITESPACE)
def test_tags_follow_ecma_262_whitespace(character, valid):
    tag = f"big{character}data"
    expected = [] if valid else [FieldError("$.tags[0]", f"{json.dumps(tag)} does not match ^[^\\s]+$ (no whitespace)")]
    assert validate_metadata(mutated("4.0", ("tags", 0), tag)) == expected


MESSAGES = [
    ("4.0", ("version",), "1.0 beta", '$.version: "1.0 beta" does not match ^[-a-zA-Z0-9.]+$'),
    ("4.0", LINUX_CLI, DELETE, '$.resource.cli.binaries.linux: missing required field "x86-64"'),
    ("4.0", ("selected",), False, "$.selected: is assigned by the repository and may not appear in metadata"),
    ("4.0", ("foo",), 1, "$.foo: unknown field for packagingVersion 4.0"),
    ("3.0", ("upgradesFrom",), [], "$.upgradesFrom: unknown field for packagingVersion 3.0; only 4.0 and 5.0 have it"),
    ("4.0", ("command",), {"pip": []}, "$.command: unknown field for packagingVersion 4.0; only 3.0 has it"),
    ("3.0", JRE_URI, 5, f"{JRE_URI_PATH}: expected a string, got number 5"),
    ("4.0", (*LINUX_CLI, "kind"), "tar", f'{LINUX_CLI_PATH}.kind: "tar" is not one of "executable", "zip"'),
    ("4.0", CONTENT_HASH, [], f"{LINUX_CLI_PATH}.contentHash: must not be empty; expected at least one item"),
    (
        "4.0", BINARIES, {},
        '$.resource.cli.binaries: must not be empty; expected at least one of "darwin", "linux", "windows"',
    ),
    (
        "4.0", ("resource", "images", "logo"), "",
        '$.resource.images.logo: unknown field; expected one of "icon-small", "icon-medium", "icon-large", '
        '"screenshots"',
    ),
    ("4.0", ("version",), "2.9.0\n", '$.version: "2.9.0\\n" does not match ^[-a-zA-Z0-9.]+$'),
    (
        "3.0", ("packagingVersion",), "2.0",
        '$.packagingVersion: "2.0" is not supported (supported: "3.0", "4.0", "5.0"; migrate packagingVersion 2.0 to '
        "3.0 first)",
    ),
]


@pytest.mark.parametrize("version, path, value, expected", MESSAGES)
def test_messages_say_what_is_wrong_and_what_is_expected(version, path, value, expected):
    assert [str(error) for error in validate_metadata(mutated(version, path, value))] == [expected]


def test_all_errors_are_reported_in_path_order():
    metadata = copy.deepcopy(base("4.0"))
    metadata["tags"] = ["ok"] * 2 + ["not ok"] + ["ok"] * 7 + ["also not"]
    metadata["selected"] = True
    del metadata["maintainer"]
    metadata["resource"]["cli"]["binaries"]["windows"]["x86-64"]["kind"] = "msi"
    metadata["resource"]["cli"]["binaries"]["darwin"]["x86-64"]["kind"] = "dmg"
    # Index 10 sorts after index 2, as numbers and not as text.
    assert [error.path for error in validate_metadata(metadata)] == [
        "$",
        '$.resource.cli.binaries.darwin["x86-64"].kind',
        '$.resource.cli.binaries.windows["x86-64"].kind',
        "$.selected",
        "$.tags[2]",
        "$.tags[10]",
    ]


def test_check_metadata_raises_with_every_error():
    metadata = mutated("4.0", ("version",), "1.0 beta")
    metadata["tags"][2] = "two words"
    with pytest.raises(RegistryError) as raised:
        check_metadata(metadata)
    errors = validate_metadata(metadata)
    assert raised.value.code == "invalid_metadata"
    assert raised.value.message == f"Invalid metadata: {errors[0]}; 1 more."
    assert raised.value.details == {"errors": [asdict(error) for error in errors]}
    assert [error["path"] for error in raised.value.details["errors"]] == ["$.tags[2]", "$.version"]


def test_check_metadata_accepts_valid_metadata():
    assert check_metadata(base("5.0")) is None
