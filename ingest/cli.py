"""The `dcos-registry` command: build bundles on a connected machine, carry them to the registry.

    dcos-registry migrate --package-directory DIR --output-directory OUT
    dcos-registry build --build-definition-file F --output-directory OUT [--asset-mirror FROM=TO]

Every verb takes ``--json`` for machine output. Exit status: 0 done, 1 failed (the error's
code and message are printed), 2 wrong usage. The same verbs are Django management commands
(``migrate_package``, ``build_bundle``) on the server.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, TextIO

from ingest.errors import IngestError


def add_migrate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--package-directory", required=True, help="A Universe package revision directory.")
    parser.add_argument("--output-directory", required=True, help="Where to write <name>-<version>.json.")
    parser.add_argument("--json", action="store_true", help="Print the result as JSON.")


def run_migrate(options) -> dict:
    from ingest.universe.migrate import migrate_package

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
    parser.add_argument("--json", action="store_true", help="Print the result as JSON; no progress bars.")


def run_build(options) -> dict:
    from ingest.builder.assets import parse_mirror
    from ingest.builder.build import build_bundle
    from ingest.builder.progress import Progress

    result = build_bundle(
        options.build_definition_file,
        options.output_directory,
        mirrors=[parse_mirror(text) for text in options.asset_mirror],
        accept_changed_content_hashes=options.accept_changed_content_hashes,
        progress=Progress(enabled=False if options.json else None),
    )
    return result.to_json()


def describe(result: dict) -> str:
    if "buildDefinition" in result:
        return f"Wrote build definition {result['buildDefinition']}"
    lines = [
        f"Built {result['bundle']} ({result['size']} bytes, {result['sha256']}): "
        f"{result['assets']} assets, {result['images']} images"
    ]
    lines += [f"  contentHash updated for {url}" for url in result["changedContentHashes"]]
    return "\n".join(lines)


def execute(run: Callable[[object], dict], options, out: TextIO, err: TextIO) -> int:
    """Run a verb and print its result or error; return the exit status."""
    try:
        result = run(options)
    except IngestError as error:
        if options.json:
            out.write(json.dumps({"error": error.to_json()}) + "\n")
        else:
            err.write(f"error [{error.code}]: {error.message}\n")
        return 1
    out.write((json.dumps(result) if options.json else describe(result)) + "\n")
    return 0


VERBS = {"migrate": (add_migrate_arguments, run_migrate), "build": (add_build_arguments, run_build)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dcos-registry", description=__doc__.split("\n\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    for verb, (add_arguments, _) in VERBS.items():
        add_arguments(verbs.add_parser(verb))
    options = parser.parse_args(argv)
    return execute(VERBS[options.verb][1], options, sys.stdout, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
