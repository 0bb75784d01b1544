"""Schemathesis drives every operation of the OpenAPI schema with generated requests: no answer is a 500."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

# Bounded: the whole schema in well under a minute, the same examples on every run.
EXAMPLES_PER_OPERATION = 25


def test_no_operation_answers_a_server_error(registry, operator_token):
    from registry_site.wsgi import application

    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    headers = {"Authorization": f"Bearer {operator_token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15, [operation.label for operation in operations]
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def answers_without_a_server_error(case):
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        answers_without_a_server_error()
