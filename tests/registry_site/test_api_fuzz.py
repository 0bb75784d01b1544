"""Schemathesis drives every operation of the OpenAPI schema with generated requests: no answer is a 500.

Requests that fit the schema and requests that break it (negative mode: values outside enums, wrong types,
NUL characters...). Besides each operation's own parameters, every operation is also sent the headers
the registry reads somewhere (an upload's file name and chunk range, ranges, conditional requests, the
client's identity), with hostile values among them (numbers of thousands of digits, names longer than
any column): a header an operation ignores must not break it, and one it reads must not either.
"""

from __future__ import annotations

import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from dcos_bundle.format import BUNDLE_MEDIA_TYPE

# Bounded: the whole schema in well under a minute, the same examples on every run.
EXAMPLES_PER_OPERATION = 25
# Positions as clients write them, and numbers of more digits than Python converts (4,300).
NUMBER = "([0-9]{1,19}|[0-9]{4301,4310})"
FUZZED_HEADERS = {
    "X-File-Name": {"anyOf": [{"type": "string"}, {"type": "string", "minLength": 256, "maxLength": 300}]},
    "Content-Range": {"anyOf": [{"type": "string"}, {"type": "string", "pattern": f"^bytes {NUMBER}-{NUMBER}/{NUMBER}$"}]},
    "Range": {"anyOf": [{"type": "string"}, {"type": "string", "pattern": f"^bytes=({NUMBER})?-({NUMBER})?$"}]},
    "If-None-Match": {"type": "string"},
    "User-Agent": {"anyOf": [{"type": "string"}, {"type": "string", "pattern": f"^cosmos/0.7 dcos/{NUMBER}(\\.{NUMBER})?$"}]},
}
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def with_fuzzed_headers(schema) -> None:
    @schema.hook
    def before_process_path(context, path, methods):
        for method, operation in methods.items():
            if method not in HTTP_METHODS:
                continue
            # A header the operation declares keeps its place and whether it is required, with these values.
            parameters = operation.setdefault("parameters", [])
            declared = {parameter["name"].lower(): parameter for parameter in parameters if parameter.get("in") == "header"}
            for name, header_schema in FUZZED_HEADERS.items():
                if name.lower() in declared:
                    declared[name.lower()]["schema"] = header_schema
                else:
                    parameters.append({"in": "header", "name": name, "required": False, "schema": header_schema})


def test_no_operation_answers_a_server_error(registry, operator_token):
    # A bundle upload's body is bytes, as any binary body.
    schemathesis.serializer.alias(BUNDLE_MEDIA_TYPE, "application/octet-stream")
    # The WSGI application itself; registry_site.wsgi adds only the storage lock check, made at a server's start.
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    with_fuzzed_headers(schema)
    headers = {"Authorization": f"Bearer {operator_token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15, [operation.label for operation in operations]
    assert all({"X-File-Name", "Range"} <= {parameter.name for parameter in operation.headers}
               for operation in operations)
    for operation in operations:
        @given(case=st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                              operation.as_strategy(GenerationMode.NEGATIVE)))
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def answers_without_a_server_error(case):
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        answers_without_a_server_error()
