"""The README's quick check after `make run` also covers a registry bound to another address than the default."""

from __future__ import annotations

import re

from registry_site.management.commands.runregistry import Command
from tests.processes import PROJECT_DIR

DEFAULT_ADDRESS = "127.0.0.1:8000"


def quick_check_on_another_address() -> tuple[dict[str, str], str]:
    """The settings the README gives `make run` for another address, and the address its curl then checks."""
    text = (PROJECT_DIR / "README.md").read_text()
    run = re.search(r"^((?:[A-Z_]+=\S+ )+)make run$", text, re.MULTILINE)
    assert run, "the README shows no `make run` with settings"
    checked = re.findall(r"^curl (\S+)/health/ready$", text[run.end():], re.MULTILINE)
    assert checked, "the README checks no address after it"
    return dict(setting.split("=", 1) for setting in run.group(1).split()), checked[0]


def test_the_readme_checks_the_address_it_runs_on():
    settings, checked = quick_check_on_another_address()
    assert settings["LISTEN_ADDRESS"] == checked != DEFAULT_ADDRESS
    assert settings["PUBLIC_BASE_URL"] == f"http://{checked}"


def test_the_run_command_binds_listen_address(monkeypatch):
    monkeypatch.setenv("LISTEN_ADDRESS", "127.0.0.1:9000")
    assert Command().create_parser("manage.py", "runregistry").parse_args([]).bind == "127.0.0.1:9000"
    monkeypatch.delenv("LISTEN_ADDRESS")
    assert Command().create_parser("manage.py", "runregistry").parse_args([]).bind == DEFAULT_ADDRESS
