"""The monitoring files parse, and every metric their alert rules and dashboard query is really exposed."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from dcos_bundle.format import BUNDLE_MEDIA_TYPE
from operations.models import OperationRun
from operations.runs import recorded_run
from tests.bundles import make_bundle
from tests.processes import PROJECT_DIR
from tests.registry_site.test_metrics import scrape

MONITORING_DIR = PROJECT_DIR / "helm-free-marathon" / "monitoring"
METRIC_NAME = re.compile(r"\bregistry_[a-z0-9_]+\b")


def alert_rules() -> list[dict]:
    rules = yaml.safe_load((MONITORING_DIR / "alerts.yml").read_text())
    return [rule for group in rules["groups"] for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    dashboard = json.loads((MONITORING_DIR / "grafana-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_alert_rules_are_complete():
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} >= {
        "RegistryMetricsDown", "RegistryBrokerDown", "RegistryDiskLow", "RegistryIngestFailing",
        "RegistryIngestJobsStuck", "RegistryNoRecentBackup",
    }
    for rule in rules:
        assert rule["expr"].strip() and rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


@pytest.mark.usefixtures("registry")
def test_every_metric_the_monitoring_files_use_is_exposed(client, tmp_path):
    response = client.post("/api/v1/bundles/", data=make_bundle(tmp_path / "b").path.read_bytes(),
                           content_type=BUNDLE_MEDIA_TYPE)
    assert response.status_code == 202
    with recorded_run(OperationRun.Kind.BACKUP):
        pass
    exposed = {key[0] for key in scrape(client)}

    used = {name for expr in [rule["expr"] for rule in alert_rules()] + dashboard_queries()
            for name in METRIC_NAME.findall(expr)}
    assert len(used) > 10
    assert used - exposed == set()
