"""Who the suite's own changes are made by, as the audit log records them."""

from access.audit import Actor

TEST_ACTOR = Actor("user:tests")
