import pytest

from tests.bundles import AssetSpec, make_bundle, package_metadata
from tests.packages_app.test_universe_repo import upload


@pytest.fixture
def hello(client, tmp_path):
    """hello 1.0.0, needing DC/OS 1.9, with one asset and no image."""
    assets = [AssetSpec("payload", "payload.tgz", 1000, 1)]
    metadata = {**package_metadata("hello", "1.0.0", assets, []), "minDcosReleaseVersion": "1.9"}
    built = make_bundle(tmp_path / "hello", assets=assets, images=[], metadata=metadata)
    assert upload(client, built.path)["state"] == "succeeded"
    return built
