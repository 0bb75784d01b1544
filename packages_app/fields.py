"""Model fields of the catalogue."""

import json

from django.db import models


class ExactJSONField(models.TextField):
    """A JSON document kept as text, so it reads back exactly as written.

    PostgreSQL's jsonb would sort object keys (a package's config schema lists its options in
    the order the install form shows them) and rewrite numbers.
    """

    def from_db_value(self, value, expression, connection):
        return None if value is None else json.loads(value)

    def to_python(self, value):
        return json.loads(value) if isinstance(value, str) else value

    def get_prep_value(self, value):
        return None if value is None else json.dumps(value)

    def value_to_string(self, obj):
        return self.get_prep_value(self.value_from_object(obj))
