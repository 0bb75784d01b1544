"""``dcos-registry mirror``: a Universe repository turned into one bundle per chosen package version.

The repository is a ``/repo`` URL (of a registry or any Universe server) or a local ``repo-*.json`` /
``universe.json`` file (gzip-compressed too). Versions are chosen with the rule language clusters
use (``universe.rules``: names with version patterns, and a DC/OS version's cutoff). Each is built
by the builder (``builder.build``) from its repository entry, several at once; a bundle already
in the output directory is kept when it reads back whole with the same metadata, so a re-run
builds only what is missing, damaged or changed. One progress bar counts the versions; the report
names every failure and why.
"""

from __future__ import annotations

import gzip
import json
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import requests
from tqdm import tqdm

from dcos_bundle.builder.build import build_bundle
from dcos_bundle.errors import ErrorCode, RegistryError
from dcos_bundle.format import bundle_file_name
from dcos_bundle.reader import BundleReader
from dcos_bundle.universe.metadata import REPOSITORY_FIELDS
from dcos_bundle.universe.migrate import UPGRADES
from dcos_bundle.universe.rules import Rules, allows, runs_on

# What Cosmos asks a repository for: the newest content type first.
REPOSITORY_ACCEPT = ",".join(f"application/vnd.dcos.universe.repo+json;charset=utf-8;version={version}"
                             for version in ("v5", "v4", "v3"))
DEFINITIONS_DIR = ".definitions"
TIMEOUT = (30, 300)


def _invalid(source: str, why: str) -> RegistryError:
    return RegistryError(ErrorCode.INVALID_REPOSITORY, f"{source} is not a Universe repository: {why}.",
                         source=source)


def read_repository(source: str) -> list[dict]:
    """The package entries of the repository at ``source`` (a URL or a file)."""
    try:
        if source.startswith(("http://", "https://")):
            response = requests.get(source, headers={"Accept": REPOSITORY_ACCEPT, "User-Agent": "dcos-registry"},
                                    timeout=TIMEOUT)
            response.raise_for_status()
            document = response.json()
        else:
            opener = gzip.open if source.endswith(".gz") else open
            with opener(source, "rb") as file:
                document = json.load(file)
    except requests.RequestException as error:
        raise RegistryError(ErrorCode.REPOSITORY_UNREACHABLE, f"Cannot read the repository at {source}: {error}",
                            source=source) from None
    except OSError as error:
        raise RegistryError(ErrorCode.FILE_NOT_FOUND, f"Cannot read {source}: {error.strerror or error}.",
                            path=source) from None
    except ValueError as error:
        raise _invalid(source, f"it is not JSON ({error})") from None
    packages = document.get("packages") if isinstance(document, dict) else None
    if not isinstance(packages, list) or not all(isinstance(entry, dict) for entry in packages):
        raise _invalid(source, "it has no list of packages")
    return packages


def metadata_of(entry: dict) -> dict:
    """A repository entry as a bundle's metadata: the fields the repository adds dropped, packaging 2.0 as 3.0."""
    metadata = {key: value for key, value in entry.items() if key not in REPOSITORY_FIELDS}
    packaging = metadata.get("packagingVersion")
    metadata["packagingVersion"] = UPGRADES.get(packaging, packaging)
    return metadata


def chosen_versions(packages: list[dict], rules: Rules | None, dcos: tuple[int, ...] | None) -> list[dict]:
    """The entries the rules choose (None: every package) that run on DC/OS ``dcos``, each name and version once."""
    chosen = {}
    for entry in packages:
        name, version = entry.get("name"), entry.get("version")
        if not isinstance(name, str) or not isinstance(version, str):
            continue
        if rules is not None and not allows(rules, name, version):
            continue
        min_dcos = entry.get("minDcosReleaseVersion")
        if not runs_on(min_dcos if isinstance(min_dcos, str) else "", dcos):
            continue
        chosen[name, version] = entry  # a later release of the same version replaces an earlier one
    return list(chosen.values())


@dataclass
class MirrorReport:
    source: str
    output_directory: str
    chosen: int = 0
    built: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    # each: package, version, code, message
    failed: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def _already_built(path: Path, metadata: dict) -> bool:
    """Whether ``path`` is a whole bundle of exactly this metadata (every member re-hashed); a bad one is removed."""
    if not path.exists():
        return False
    try:
        with BundleReader(path) as reader:
            if reader.metadata() == metadata:
                reader.verify()
                return True
    except RegistryError:
        pass
    path.unlink()
    return False


def _build_one(entry: dict, output: Path, build: Callable[..., object]) -> bool:
    """Build one version unless it is built already; True if it was built now."""
    metadata = metadata_of(entry)
    if _already_built(output / bundle_file_name(metadata["name"], metadata["version"]), metadata):
        return False
    definition = output / DEFINITIONS_DIR / f"{metadata['name']}-{metadata['version']}.json"
    definition.parent.mkdir(parents=True, exist_ok=True)
    definition.write_text(json.dumps(metadata), encoding="utf-8")
    try:
        build(definition, output)
    finally:
        definition.unlink()
    return True


def mirror(source: str, output_directory: str | Path, *, rules: Rules | None = None,
           dcos: tuple[int, ...] | None = None, mirrors: list[tuple[str, str]] = (), jobs: int = 4,
           accept_changed_content_hashes: bool = False, docker_client_factory: Callable | None = None,
           show_progress: bool | None = None) -> MirrorReport:
    """Build a bundle of every chosen version of the repository at ``source`` into ``output_directory``."""
    output = Path(output_directory)
    output.mkdir(parents=True, exist_ok=True)
    entries = chosen_versions(read_repository(source), rules, dcos)
    report = MirrorReport(source=source, output_directory=str(output), chosen=len(entries))

    def build(definition: Path, directory: Path) -> None:
        build_bundle(definition, directory, mirrors=mirrors, docker_client_factory=docker_client_factory,
                     accept_changed_content_hashes=accept_changed_content_hashes)

    with (tqdm(total=len(entries), desc="mirror", unit="version", file=sys.stderr,
               disable=not sys.stderr.isatty() if show_progress is None else not show_progress) as bar,
          ThreadPoolExecutor(max_workers=max(1, jobs)) as pool):
        running = {pool.submit(_build_one, entry, output, build): entry for entry in entries}
        for done in as_completed(running):
            entry = running[done]
            label = f"{entry['name']} {entry['version']}"
            try:
                (report.built if done.result() else report.kept).append(label)
            except RegistryError as error:
                report.failed.append({"package": entry["name"], "version": entry["version"], "code": str(error.code),
                                      "message": error.message})
            except Exception as error:  # one version's failure must not stop the others; it is reported
                report.failed.append({"package": entry["name"], "version": entry["version"], "code": "build_failed",
                                      "message": f"{type(error).__name__}: {error}"})
            bar.update(1)
            bar.set_postfix(failed=len(report.failed), refresh=False)
    for names in (report.built, report.kept):
        names.sort()
    report.failed.sort(key=lambda failure: (failure["package"], failure["version"]))
    return report
