import pytest
from django.test import Client

from access.tokens import create_token
from tests.actors import TEST_ACTOR
from tests.factories import ClusterFactory, ClusterPackageRuleFactory, PackageVersionFactory


def signed_in(plaintext: str, **client_options) -> Client:
    """A browser session signed in on the sign-in page with ``plaintext``."""
    browser = Client(**client_options)
    browser.get("/sign-in/")
    response = browser.post("/sign-in/", {"token": plaintext, "next": "/",
                                          "csrfmiddlewaretoken": browser.cookies["csrftoken"].value})
    assert response.status_code == 302, response.content
    return browser


@pytest.fixture
def two_packages(db):
    """kafka (2 versions) and spark; cluster "prod" sees only kafka."""
    kafka = PackageVersionFactory(package__name="kafka", version="2.0.0", description="A queue", tags=["queue"])
    PackageVersionFactory(package=kafka.package, version="1.0.0", description="A queue", tags=["queue"])
    spark = PackageVersionFactory(package__name="spark", version="3.1.0", description="Big data", tags=["analytics"])
    prod = ClusterFactory(name="prod", sees_all_packages=False)
    ClusterPackageRuleFactory(cluster=prod, package_name="kafka")
    ClusterFactory(name="dev")
    return {"kafka": kafka, "spark": spark, "prod": prod}


@pytest.fixture
def prod_session(two_packages) -> Client:
    """A browser signed in with a write token of cluster prod."""
    return signed_in(create_token("prod ci", "write", two_packages["prod"], actor=TEST_ACTOR)[1])
