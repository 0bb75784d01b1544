"""The options a version takes, read from its config schema (JSON Schema, as Universe packages write it)."""

from __future__ import annotations

from dataclasses import dataclass

# Deeper than any Universe package nests its options (the deepest: 6): a hostile schema stops here.
MAX_DEPTH = 16
NO_DEFAULT = object()


@dataclass(frozen=True)
class Option:
    name: str  # dotted, as `dcos package install --options` takes it: service.name
    type: str
    default: object
    description: str
    required: bool
    depth: int

    @property
    def has_default(self) -> bool:
        return self.default is not NO_DEFAULT


def options(schema, prefix: str = "", depth: int = 0) -> list[Option]:
    """Every property of an object schema, parents before their children, in the order the package lists them."""
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return []
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return []
    required = schema.get("required") if isinstance(schema.get("required"), list) else []
    found = []
    for name, prop in properties.items():
        if not isinstance(prop, dict):
            continue
        kind = prop.get("type", "")
        found.append(Option(
            name=f"{prefix}{name}", type=" or ".join(kind) if isinstance(kind, list) else str(kind),
            default=prop.get("default", NO_DEFAULT), description=str(prop.get("description", "")),
            required=name in required, depth=depth,
        ))
        found.extend(options(prop, f"{prefix}{name}.", depth + 1))
    return found
