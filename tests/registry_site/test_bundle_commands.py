"""manage.py migrate_package and build_bundle: the dcos-registry verbs on the registry host."""

from __future__ import annotations

import json

from django.core.management import call_command

from dcos_bundle.reader import BundleReader
from tests.corpus import package_dirs
from tests.dcos_bundle.definitions import ORIGIN, write_definition


def test_migrate_package_writes_a_build_definition(tmp_path, capsys):
    package = package_dirs()[0]
    call_command("migrate_package", "--package-directory", str(package), "--output-directory", str(tmp_path / "defs"))
    written = list((tmp_path / "defs").glob("*.json"))
    assert written and json.loads(written[0].read_text())["name"]
    assert str(written[0].name) in capsys.readouterr().out


def test_build_bundle_writes_a_bundle(tmp_path, asset_server, capsys):
    definition = write_definition(tmp_path / "def", uris={"payload": ORIGIN + "hello/payload-1.0.tgz"})
    origin, mirror = asset_server.mirror_for(ORIGIN)
    call_command("build_bundle", "--build-definition-file", str(definition), "--output-directory", str(tmp_path / "out"),
                 "--asset-mirror", f"{origin}={mirror}")
    [bundle] = (tmp_path / "out").glob("*.dcos")
    with BundleReader(bundle) as reader:
        assert reader.verify()["assets"] == 1
    assert bundle.name in capsys.readouterr().out
