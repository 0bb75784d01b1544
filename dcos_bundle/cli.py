"""The `dcos-registry` command: build bundles on a connected machine, carry them to the registry.

    dcos-registry migrate --package-directory DIR --output-directory OUT
    dcos-registry build --build-definition-file F --output-directory OUT [--asset-mirror FROM=TO]
    dcos-registry add --dcos-file F [--replace] [--no-wait] [--chunk-size N]
    dcos-registry describe --package-name P --package-version V
    dcos-registry list [WORD ...]        (also: search [WORD ...]; every word must match)
    dcos-registry remove --package-name P --package-version V
    dcos-registry set-default --package-name P (--package-version V | --unset)
    dcos-registry jobs [--state S] [--package P] [--limit N]

The verbs from add on talk to a running registry: --registry URL and --token TOKEN, else
DCOS_REGISTRY_URL and DCOS_REGISTRY_TOKEN, else the configuration file
(~/.config/dcos-registry/config.json or $DCOS_REGISTRY_CONFIG: {"registry": URL, "token": T}).
Every verb takes ``--json`` for machine output on stdout; progress bars go to stderr, on a
terminal only. Exit status: 0 done, 1 failed (the error's code and message are printed), 2 wrong
usage, 130 interrupted. The build verbs are also Django management commands (``migrate_package``,
``build_bundle``) on the server.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import Callable, NamedTuple, TextIO

from tqdm import tqdm

# The builder brings the Docker SDK: some 0.05 s more at the start of every verb (0.12 s to 0.16 s to import
# this module), small beside one request to a registry; the build verbs need it all.
from dcos_bundle.builder.assets import parse_mirror
from dcos_bundle.builder.build import build_bundle
from dcos_bundle.builder.progress import BuildProgress
from dcos_bundle.client import DEFAULT_CHUNK_SIZE, FINISHED_JOB_STATES, Registry, find_connection, upload_bundle
from dcos_bundle.errors import ErrorCode, RegistryError, RemoteError
from dcos_bundle.sizes import human_size, parse_size
from dcos_bundle.mirror import mirror
from dcos_bundle.universe.migrate import migrate_package
from dcos_bundle.universe.rules import dcos_version, package_rules
from dcos_bundle.version import installed_version


def add_migrate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--package-directory", required=True, help="A Universe package revision directory.")
    parser.add_argument("--output-directory", required=True, help="Where to write <name>-<version>.json.")
    parser.add_argument("--json", action="store_true", help="Print the result as JSON.")


def run_migrate(options) -> dict:
    path = migrate_package(options.package_directory, options.output_directory)
    return {"buildDefinition": str(path)}


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--build-definition-file", required=True, help="A build definition, e.g. from migrate.")
    parser.add_argument("--output-directory", required=True, help="Where to write <name>-<version>.dcos.")
    parser.add_argument(
        "--asset-mirror", action="append", default=[], metavar="FROM=TO",
        help="Download URLs starting with FROM from TO instead (repeatable); the manifest keeps the original URL.",
    )
    parser.add_argument(
        "--accept-changed-content-hashes", action="store_true",
        help="When a CLI binary no longer matches its declared contentHash, record the new hash instead of failing.",
    )
    parser.add_argument(
        "--record-builder", action="store_true",
        help="Record this host's and user's names in the manifest; bundles built elsewhere then differ in bytes.",
    )
    parser.add_argument("--json", action="store_true", help="Print the result as JSON; no progress bars.")


def run_build(options) -> dict:
    result = build_bundle(
        options.build_definition_file,
        options.output_directory,
        mirrors=[parse_mirror(text) for text in options.asset_mirror],
        accept_changed_content_hashes=options.accept_changed_content_hashes,
        record_builder=options.record_builder,
        progress=BuildProgress(enabled=False if options.json else None),
    )
    return result.to_json()




def add_mirror_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repository", required=True, metavar="URL|FILE",
                        help="A Universe repository: a /repo URL, or a repo-*.json / universe.json file (.gz too).")
    parser.add_argument("--output-directory", required=True, help="Where to write the <name>-<version>.dcos bundles.")
    parser.add_argument("--package", action="append", default=[], dest="packages", metavar="NAME[=PATTERNS]",
                        help="Mirror this package, or its versions matching the comma-separated patterns (2.3.0, "
                             "2.4.*), as cluster rules say it; repeat. Default: every package.")
    parser.add_argument("--dcos-version", help="Leave out versions that need a newer DC/OS.")
    parser.add_argument("--jobs", type=int, default=4, help="Versions built at once (default 4).")
    parser.add_argument("--asset-mirror", action="append", default=[], metavar="FROM=TO",
                        help="Download URLs starting with FROM from TO instead (repeatable).")
    parser.add_argument("--accept-changed-content-hashes", action="store_true",
                        help="When a CLI binary no longer matches its declared contentHash, record the new hash.")
    parser.add_argument("--json", action="store_true", help="Print the result as JSON; no progress bar.")


def run_mirror(options) -> dict:
    try:
        rules = package_rules(options.packages) if options.packages else None
        dcos = dcos_version(options.dcos_version) if options.dcos_version else None
    except ValueError as error:
        raise RegistryError(ErrorCode.INVALID_PACKAGE, str(error)) from None
    report = mirror(options.repository, options.output_directory, rules=rules, dcos=dcos,
                    mirrors=[parse_mirror(text) for text in options.asset_mirror], jobs=options.jobs,
                    accept_changed_content_hashes=options.accept_changed_content_hashes,
                    show_progress=False if options.json else None)
    if report.failed:
        reasons = "; ".join(f"{failure['package']} {failure['version']}: [{failure['code']}] {failure['message']}"
                            for failure in report.failed)
        raise RegistryError(ErrorCode.MIRROR_INCOMPLETE, f"{len(report.failed)} of {report.chosen} versions failed "
                            f"({len(report.built)} built, {len(report.kept)} already built): {reasons}",
                            **report.to_json())
    return report.to_json()


def show_mirror(report: dict) -> str:
    return (f"Mirrored {report['chosen']} versions of {report['source']} into {report['output_directory']}: "
            f"{len(report['built'])} built, {len(report['kept'])} already built and valid.")


def show_migrate(result: dict) -> str:
    return f"Wrote build definition {result['buildDefinition']}"


def show_build(result: dict) -> str:
    lines = [
        f"Built {result['bundle']} ({result['size']} bytes, {result['sha256']}): "
        f"{result['assets']} assets, {result['images']} images"
    ]
    lines += [f"  contentHash updated for {url}" for url in result["changedContentHashes"]]
    lines += [f"  kept as it is, not an http, https or file URL: {pointer} = {json.dumps(value)}"
              for pointer, value in result["keptValues"].items()]
    return "\n".join(lines)


# Verbs that talk to a running registry


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--registry", metavar="URL", help="The registry, e.g. https://registry.example "
                        "(default: $DCOS_REGISTRY_URL, then the configuration file).")
    parser.add_argument("--token", help="An API token (default: $DCOS_REGISTRY_TOKEN, then the configuration file); "
                        "prefer those: a flag shows in the process list.")
    parser.add_argument("--json", action="store_true", help="Print the result as JSON.")


def registry_of(options) -> Registry:
    return Registry(find_connection(options.registry, options.token))


def _stderr_bar(**kwargs) -> tqdm:
    return tqdm(file=sys.stderr, leave=False, disable=not sys.stderr.isatty(), **kwargs)


_byte_bar = functools.partial(_stderr_bar, unit="B", unit_scale=True, unit_divisor=1024)


def byte_count(text: str) -> int:
    """``8388608``, ``8M``, ``512KiB``, ``1G``: a positive number of bytes."""
    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dcos-file", required=True, type=Path, help="The .dcos bundle to upload.")
    parser.add_argument("--replace", action="store_true", help="Replace a published version of the same name "
                        "and version with different contents.")
    parser.add_argument("--no-wait", action="store_true", help="Print the ingest job's URL once the upload is "
                        "committed instead of following the job.")
    parser.add_argument("--chunk-size", type=byte_count, default=DEFAULT_CHUNK_SIZE,
                        help=f"Bytes per request (default {DEFAULT_CHUNK_SIZE // 1024 // 1024}M; K, M, G accepted).")
    add_connection_arguments(parser)


def run_add(options) -> dict:
    registry = registry_of(options)
    if not options.dcos_file.is_file():
        raise RegistryError(ErrorCode.FILE_NOT_FOUND, f"There is no file {options.dcos_file}.", path=str(options.dcos_file))
    job = upload_bundle(registry, options.dcos_file, replace=options.replace, chunk_size=options.chunk_size,
                        bar=_byte_bar, follow=None if options.no_wait else functools.partial(follow_job, registry))
    if job["state"] in FINISHED_JOB_STATES and job["state"] != "succeeded":
        error = job["error"] or {"code": f"job_{job['state']}", "message": f"Job {job['id']} was {job['state']}.",
                                 "details": {}}
        raise RemoteError(error["code"], error["message"], **error["details"], job=job["url"])
    return {"job": job}


def follow_job(registry: Registry, job: dict) -> dict:
    """Poll the job until it has finished, with a bar per stage on a terminal."""
    bars: dict[str, tqdm] = {}
    try:
        for job in registry.watch_job(job):
            for stage in job["stages"]:
                if stage["stage"] not in bars:
                    bars[stage["stage"]] = _stderr_bar(desc=stage["stage"], total=100,
                                                       bar_format="{desc:>13}: {percentage:3.0f}%|{bar}| {elapsed}")
                bars[stage["stage"]].n = stage["percent"]
                bars[stage["stage"]].refresh()
    finally:
        for bar in bars.values():
            bar.close()
    return job


def show_add(result: dict) -> str:
    job = result["job"]
    if job["state"] == "succeeded":
        package = job["result"]
        named = f"Package [{package['package']}] version [{package['version']}]"
        if job.get("outcome") == "unchanged":
            return (f"{named} is already in the registry with the same content (release "
                    f"{package['release_version']}); nothing changed.")
        done = "replaced" if job.get("outcome") == "replaced" else "added"
        return f"{named} {done} (release {package['release_version']})."
    return f"Uploaded {job['bundle_name'] or 'the bundle'}; the registry is checking it: {job['url']}"


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", required=True, help="Where the registry writes the transfer set: a directory on its "
                        "host, or s3://bucket/prefix.")
    parser.add_argument("--cluster", help="Export what this cluster sees.")
    parser.add_argument("--package", action="append", default=[], dest="packages", metavar="NAME[=PATTERNS]",
                        help="Export this package, or its versions matching the comma-separated patterns; repeat.")
    parser.add_argument("--dcos-version", help="Leave out versions that need a newer DC/OS.")
    parser.add_argument("--since", help="The destination's inventory or last transfer.json, on the registry's host.")
    parser.add_argument("--volume-size", type=byte_count, help="Cut the blob stream into volumes of this size.")
    parser.add_argument("--no-wait", action="store_true", help="Print the operation's URL instead of waiting.")
    add_connection_arguments(parser)


def run_export(options) -> dict:
    registry = registry_of(options)
    run = registry.start_export({"to": options.to, "cluster": options.cluster or "", "packages": options.packages,
                                 "dcos_version": options.dcos_version or "", "since": options.since or "",
                                 "volume_size": options.volume_size})
    return run if options.no_wait else registry.wait_operation(run)


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", required=True, dest="source", help="The transfer set, as the registry reaches it: "
                        "a directory on its host, or s3://bucket/prefix.")
    parser.add_argument("--replace", action="store_true", help="Replace versions published with different content.")
    parser.add_argument("--no-wait", action="store_true", help="Print the operation's URL instead of waiting.")
    add_connection_arguments(parser)


def run_import(options) -> dict:
    registry = registry_of(options)
    run = registry.start_import(options.source, options.replace)
    return run if options.no_wait else registry.wait_operation(run)


def show_operation(run: dict) -> str:
    if run["finished_at"] is None:
        return f"The registry runs the {run['kind']}: {run['url']}"
    summary = run["summary"]
    if run["kind"] == "export":
        return (f"Exported {summary['versions']} versions to {run['target']}: {summary['blobs_carried']} blobs "
                f"({human_size(summary['bytes_carried'])}) carried in {len(summary['volumes'])} volumes, "
                f"{summary['blobs_left_out']} left out.")
    return (f"Imported {run['target']}: {summary['added']} added, {summary['replaced']} replaced, "
            f"{summary['unchanged']} unchanged of {summary['versions']} versions.")


def add_version_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--package-name", required=True)
    parser.add_argument("--package-version", required=True)
    add_connection_arguments(parser)


def run_describe(options) -> dict:
    return registry_of(options).version(options.package_name, options.package_version)


def show_describe(version: dict) -> str:
    lines = [
        f"{version['name']} {version['version']} (release {version['release_version']}, "
        f"packaging {version['packaging_version']})",
        f"  {version['description']}",
        f"  published {version['published_at']}; {version['stored_bytes']} bytes stored in "
        f"{len(version['assets'])} assets and {len(version['images'])} images",
        f"  bundle {version['bundle_digest']}",
    ]
    for asset in version["assets"]:
        lines += [f"  asset {asset['url']} ({asset['size']} bytes)", f"    served as {asset['download_url']}"]
    lines += [f"  image {image['reference']}: docker pull {image['pull_reference']}" for image in version["images"]]
    return "\n".join(lines)


def run_remove(options) -> dict:
    garbage = registry_of(options).remove_version(options.package_name, options.package_version)
    return {"package": options.package_name, "version": options.package_version,
            "garbage_blobs": garbage["garbage_blobs"], "garbage_bytes": garbage.get("garbage_bytes")}


def show_remove(result: dict) -> str:
    # A registry from before sizes were reported answers the digests alone.
    size = "" if result["garbage_bytes"] is None else f" ({human_size(result['garbage_bytes'])})"
    return (f"Removed version [{result['version']}] of package [{result['package']}]; "
            f"{len(result['garbage_blobs'])} blobs{size} are left for the garbage collector.")


def add_set_default_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--package-name", required=True)
    choice = parser.add_mutually_exclusive_group(required=True)
    choice.add_argument("--package-version", help="The published version Cosmos installs when no version is asked "
                        "for, whatever the version order.")
    choice.add_argument("--unset", action="store_true", help="Remove the pin: the highest version is the default.")
    add_connection_arguments(parser)


def run_set_default(options) -> dict:
    registry = registry_of(options)
    if options.unset:
        return registry.unpin_default_version(options.package_name)
    return registry.pin_default_version(options.package_name, options.package_version)


def show_set_default(package: dict) -> str:
    if package["pinned_version"]:
        return f"Package [{package['name']}] defaults to version [{package['pinned_version']}] (pinned)."
    return (f"Package [{package['name']}] has no pinned version: it defaults to its highest version "
            f"[{package['default_version']}].")


def add_list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("words", nargs="*", metavar="WORD",
                        help="Only packages matching every word, each in the name, description or tags.")
    add_connection_arguments(parser)


def run_list(options) -> list[dict]:
    return registry_of(options).packages(" ".join(options.words) or None)


def table(headers: list[str], rows: list[list]) -> str:
    rows = [headers] + [["" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [max(len(row[column]) for row in rows) for column in range(len(headers))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def show_list(packages: list[dict]) -> str:
    if not packages:
        return "No packages."
    return table(["NAME", "VERSION", "VERSIONS", "DESCRIPTION"],
                 [[package["name"], package["default_version"], len(package["versions"]),
                   package["description"].splitlines()[0][:60] if package["description"] else ""]
                  for package in packages])


def add_jobs_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state", choices=["queued", "running", "succeeded", "failed", "cancelled"])
    parser.add_argument("--package", help="Only jobs of this package.")
    parser.add_argument("--limit", type=int, default=100, help="At most this many, newest first (default 100).")
    add_connection_arguments(parser)


def run_jobs(options) -> list[dict]:
    return registry_of(options).jobs(options.state, options.package, limit=options.limit)


def show_jobs(jobs: list[dict]) -> str:
    if not jobs:
        return "No jobs."
    return table(["ID", "STATE", "STAGE", "PACKAGE", "VERSION", "CREATED", "ERROR"],
                 [[job["id"], job["state"], job["stage"], job["package_name"], job["version"], job["created_at"],
                   (job["error"] or {}).get("code")] for job in jobs])


def execute(run: Callable[[object], object], show: Callable[[object], str], options, out: TextIO,
            err: TextIO, interrupted: str = "interrupted") -> int:
    """Run a verb and print its result or error (``interrupted`` on Ctrl-C); return the exit status."""
    try:
        result = run(options)
    except RegistryError as error:
        if options.json:
            out.write(json.dumps({"error": error.to_json()}) + "\n")
        else:
            err.write(f"error [{error.code}]: {error.message}\n")
        return 1
    except KeyboardInterrupt:
        err.write(interrupted + "\n")
        return 130
    out.write((json.dumps(result) if options.json else show(result)) + "\n")
    return 0


class Verb(NamedTuple):
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[object], object]
    show: Callable[[object], str]
    help: str
    aliases: tuple[str, ...] = ()
    interrupted: str = "interrupted"


VERBS = {
    "migrate": Verb(add_migrate_arguments, run_migrate, show_migrate,
                    "Turn a Universe package into a build definition."),
    "build": Verb(add_build_arguments, run_build, show_build, "Build a .dcos bundle from a build definition."),
    "mirror": Verb(add_mirror_arguments, run_mirror, show_mirror,
                   "Build a bundle of every chosen version of a Universe repository (resumable).",
                   interrupted="interrupted; run the same command again: it keeps what is built and valid"),
    "add": Verb(add_add_arguments, run_add, show_add, "Upload a bundle (resumable) and follow its ingest job.",
                interrupted="interrupted; run the same command again: it sends only what the registry lacks, "
                            "or follows the job of an upload already committed"),
    "describe": Verb(add_version_arguments, run_describe, show_describe, "Show a published version."),
    "list": Verb(add_list_arguments, run_list, show_list, "List or search the catalogue.", ("search",)),
    "remove": Verb(add_version_arguments, run_remove, show_remove, "Remove a published version."),
    "set-default": Verb(add_set_default_arguments, run_set_default, show_set_default,
                        "Pin the version Cosmos installs by default, or unpin it (--unset)."),
    "jobs": Verb(add_jobs_arguments, run_jobs, show_jobs, "List ingest jobs, newest first."),
    "export": Verb(add_export_arguments, run_export, show_operation,
                   "Have the registry export a selection as a transfer set, and wait for it."),
    "import": Verb(add_import_arguments, run_import, show_operation,
                   "Have the registry import a transfer set, and wait for it."),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dcos-registry", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    verbs = parser.add_subparsers(dest="verb", required=True)
    for name, verb in VERBS.items():
        subparser = verbs.add_parser(name, help=verb.help, description=verb.help, aliases=verb.aliases)
        verb.add_arguments(subparser)
        subparser.set_defaults(verb_name=name)
    options = parser.parse_args(argv)
    verb = VERBS[options.verb_name]
    return execute(verb.run, verb.show, options, sys.stdout, sys.stderr, verb.interrupted)


if __name__ == "__main__":
    sys.exit(main())
