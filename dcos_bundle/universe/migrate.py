"""From a Universe package revision directory to a build definition, and from that to metadata.

A revision directory holds ``package.json``, ``resource.json`` and optionally ``config.json``,
``marathon.json.mustache`` and ``command.json``. A build definition is the package's fields
plus ``@file`` references (relative to the definition's folder) for ``config``, ``resource``
and the Marathon template; resolving it gives the bundle's ``metadata.json``. Every
packagingVersion is handled: 2.0 packages become 3.0 metadata (its closest successor: same
resource format, ``command`` still allowed).
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

from dcos_bundle.errors import ErrorCode, RegistryError

from .metadata import REPOSITORY_FIELDS

PACKAGE_FILE = "package.json"
RESOURCE_FILE = "resource.json"
CONFIG_FILE = "config.json"
TEMPLATE_FILE = "marathon.json.mustache"
COMMAND_FILE = "command.json"
# packagingVersion 2.0 is upgraded; everything it may contain is valid 3.0.
UPGRADES = {"2.0": "3.0"}
COMMAND_VERSIONS = ("2.0", "3.0")


def _read_json(path: Path, what: str):
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except FileNotFoundError:
        raise RegistryError(ErrorCode.FILE_MISSING, f"{what} {path} does not exist.", file=str(path)) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RegistryError(ErrorCode.INVALID_JSON, f"{path} is not valid JSON: {error}.", file=str(path)) from None


def _package_fields(directory: Path) -> dict:
    package = _read_json(directory / PACKAGE_FILE, "Package file")
    if not isinstance(package, dict):
        raise RegistryError(ErrorCode.INVALID_PACKAGE, f"{directory / PACKAGE_FILE} must hold a JSON object.")
    packaging_version = package.get("packagingVersion")
    fields = {key: value for key, value in package.items() if key not in REPOSITORY_FIELDS}
    fields["packagingVersion"] = UPGRADES.get(packaging_version, packaging_version)
    if (directory / COMMAND_FILE).exists():
        if packaging_version not in COMMAND_VERSIONS:
            raise RegistryError(
                ErrorCode.INVALID_PACKAGE,
                f"{directory / COMMAND_FILE}: packagingVersion {packaging_version} has no `command`; "
                f"only {' and '.join(COMMAND_VERSIONS)} do.",
                file=str(directory / COMMAND_FILE),
            )
        fields["command"] = _read_json(directory / COMMAND_FILE, "Command file")
    return fields


def build_definition_for(directory: Path, reference_dir: str = "") -> tuple[dict, dict[str, Path]]:
    """The build definition of a revision directory, and the files its references name.

    References are ``@<reference_dir>/<file>``; the returned mapping gives, for each
    reference target, the source file to place there.
    """
    directory = Path(directory)
    definition = _package_fields(directory)
    files: dict[str, Path] = {}

    def reference(file_name: str) -> str:
        target = f"{reference_dir}/{file_name}" if reference_dir else file_name
        files[target] = directory / file_name
        return f"@{target}"

    if not (directory / RESOURCE_FILE).exists():
        raise RegistryError(ErrorCode.FILE_MISSING, f"Resource file {directory / RESOURCE_FILE} does not exist.")
    definition["resource"] = reference(RESOURCE_FILE)
    if (directory / CONFIG_FILE).exists():
        definition["config"] = reference(CONFIG_FILE)
    if (directory / TEMPLATE_FILE).exists():
        definition["marathon"] = {"v2AppMustacheTemplate": reference(TEMPLATE_FILE)}
    return definition, files


def migrate_package(directory: str | Path, output_directory: str | Path) -> Path:
    """Write ``<name>-<version>.json`` and a ``<name>-<version>/`` folder of the files it references."""
    directory, output_directory = Path(directory), Path(output_directory)
    if not (directory / PACKAGE_FILE).exists():
        raise RegistryError(
            ErrorCode.FILE_MISSING, f"{directory} is not a Universe package directory: it has no {PACKAGE_FILE}."
        )
    package = _package_fields(directory)
    stem = f"{package.get('name')}-{package.get('version')}"
    definition_path = output_directory / f"{stem}.json"
    files_dir = output_directory / stem
    for existing in (definition_path, files_dir):
        if existing.exists():
            raise RegistryError(ErrorCode.OUTPUT_EXISTS, f"{existing} already exists; refusing to overwrite it.", path=str(existing))
    definition, files = build_definition_for(directory, reference_dir=stem)
    output_directory.mkdir(parents=True, exist_ok=True)
    files_dir.mkdir()
    for target, source in files.items():
        shutil.copyfile(source, output_directory / target)
    definition_path.write_text(json.dumps(definition, indent=2) + "\n", encoding="utf-8")
    return definition_path


def resolve_build_definition(definition: dict, base_dir: str | Path) -> dict:
    """Replace ``@file`` references with the files' content: the result is bundle metadata."""
    base_dir = Path(base_dir)
    metadata = {key: value for key, value in definition.items() if key not in REPOSITORY_FIELDS}
    for field in ("config", "resource"):
        value = metadata.get(field)
        if isinstance(value, str) and value.startswith("@"):
            metadata[field] = _read_json(base_dir / value[1:], f"File referenced by `{field}`")
    marathon = metadata.get("marathon")
    if isinstance(marathon, dict):
        template = marathon.get("v2AppMustacheTemplate")
        if isinstance(template, str) and template.startswith("@"):
            path = base_dir / template[1:]
            try:
                encoded = base64.b64encode(path.read_bytes()).decode("ascii")
            except FileNotFoundError:
                raise RegistryError(
                    ErrorCode.FILE_MISSING,
                    f"File referenced by `marathon.v2AppMustacheTemplate` {path} does not exist.",
                    file=str(path),
                ) from None
            metadata["marathon"] = {**marathon, "v2AppMustacheTemplate": encoded}
    return metadata


def load_build_definition(path: str | Path) -> dict:
    """Read a build definition file and resolve its references: the bundle's metadata."""
    path = Path(path)
    definition = _read_json(path, "Build definition")
    if not isinstance(definition, dict):
        raise RegistryError(ErrorCode.INVALID_BUILD_DEFINITION, f"{path} must hold a JSON object.", file=str(path))
    return resolve_build_definition(definition, path.parent)


def metadata_from_package_directory(directory: str | Path) -> dict:
    """The metadata a revision directory becomes, without writing anything."""
    definition, _ = build_definition_for(Path(directory))
    return resolve_build_definition(definition, directory)
