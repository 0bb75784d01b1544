import json
import shutil
import subprocess

import pytest

from tests.bundles import AssetSpec, make_bundle, package_metadata
from tests.packages_app.test_universe_repo import upload
from tests.services import service_missing


@pytest.fixture
def hello(client, tmp_path):
    """hello 1.0.0, needing DC/OS 1.9, with one asset and no image."""
    assets = [AssetSpec("payload", "payload.tgz", 1000, 1)]
    metadata = {**package_metadata("hello", "1.0.0", assets, []), "minDcosReleaseVersion": "1.9"}
    built = make_bundle(tmp_path / "hello", assets=assets, images=[], metadata=metadata)
    assert upload(client, built.path)["state"] == "succeeded"
    return built


@pytest.fixture
def skopeo(tmp_path):
    """Runs skopeo with the given arguments and answers its output."""
    executable = shutil.which("skopeo")
    if not executable:
        service_missing("skopeo", "it is not installed (apt-get install skopeo)")
    # Our own policy: the copy must not depend on the machine's /etc/containers/policy.json.
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))

    def run(*args: str) -> bytes:
        return subprocess.run([executable, "--policy", str(policy), *args], capture_output=True, check=True,
                              timeout=120).stdout

    return run
