"""Yes/no values as people write them: environment variables, query parameters and form fields.

One parser for all of them, so ``replace=on`` means the same in a query string, a form and the
settings, and a value that is neither yes nor no is refused instead of read as no.
"""

from __future__ import annotations

from dcos_bundle.errors import ErrorCode, RegistryError

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def parse_bool(value: str | bool | None, name: str, default: bool | None = None) -> bool | None:
    """``value`` as a bool; ``default`` when it is absent or empty.

    Words are compared without case or surrounding blanks. Anything else raises RegistryError
    (invalid_request: an API answers it with 400) naming ``name``, the variable or parameter.
    """
    if isinstance(value, bool):
        return value
    word = (value or "").strip().lower()
    if not word:
        return default
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise RegistryError(
        ErrorCode.INVALID_REQUEST,
        f"{name}={value!r} is neither yes nor no: use one of {', '.join(TRUE_WORDS)} or {', '.join(FALSE_WORDS)}.",
        field=name, value=value,
    )
