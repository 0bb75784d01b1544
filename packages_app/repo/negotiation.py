"""Content negotiation for /repo: which repository version (v3, v4, v5) a client accepts, gzip, ETags."""

from __future__ import annotations

import re

REPO_MEDIA_TYPE = "application/vnd.dcos.universe.repo+json"
REPO_VERSIONS = ("v3", "v4", "v5")  # lowest first
# A media range or parameter list split at commas/semicolons outside quoted strings.
_LIST_ITEM = re.compile(r'(?:[^,"]|"(?:[^"\\]|\\.)*")+')
_PARAM_ITEM = re.compile(r'(?:[^;"]|"(?:[^"\\]|\\.)*")+')


def repo_content_type(repo_version: str) -> str:
    # Exactly this: Cosmos rejects a response whose Content-Type carries any parameter it did not ask for.
    return f"{REPO_MEDIA_TYPE};charset=utf-8;version={repo_version}"


def _parameters(items: list[str]) -> tuple[dict[str, str], float | None]:
    """A media range's parameters (before ``q``), and its q-value; q None means the range is malformed."""
    params, quality = {}, 1.0
    for item in items:
        key, _, value = item.partition("=")
        key, value = key.strip().lower(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        if key == "q":
            try:
                quality = float(value)
            except ValueError:
                return params, None
            if not 0 <= quality <= 1:
                return params, None
            break  # what follows q are accept-extensions, not media type parameters
        params[key] = value
    return params, quality


def accepted_repo_versions(accept: str | None) -> dict[str, float]:
    """The q-value the Accept header gives each repository version; absent or zero: not acceptable.

    Each version takes the q of the most specific range that matches it (RFC 9110 §12.5.1): a range
    naming the version beats one naming only the type, which beats ``application/*`` and ``*/*``.
    """
    if accept is None or not accept.strip():
        return dict.fromkeys(REPO_VERSIONS, 1.0)
    best: dict[str, tuple[int, float]] = {}
    for media_range in _LIST_ITEM.findall(accept):
        parts = _PARAM_ITEM.findall(media_range)
        if not parts or not parts[0].strip():
            continue
        media_type = parts[0].strip().lower()
        params, quality = _parameters(parts[1:])
        if quality is None:
            continue
        for repo_version in REPO_VERSIONS:
            specificity = _match(media_type, params, repo_version)
            if specificity is not None and specificity > best.get(repo_version, (-1, 0.0))[0]:
                best[repo_version] = (specificity, quality)
    return {version: quality for version, (_, quality) in best.items() if quality > 0}


def _match(media_type: str, params: dict[str, str], repo_version: str) -> int | None:
    """How specifically a media range names ``repo_version``'s type, or None if it does not."""
    if media_type == "*/*" and not params:
        return 0
    if media_type == "application/*" and not params:
        return 1
    if media_type != REPO_MEDIA_TYPE:
        return None
    ours = {"charset": "utf-8", "version": repo_version}
    if any(key not in ours or value.lower() != ours[key] for key, value in params.items()):
        return None
    return 2 + len(params)


def servable_repo_versions(highest: str) -> tuple[str, ...]:
    """The repository versions a cluster whose highest is ``highest`` can read, lowest first."""
    return REPO_VERSIONS[: REPO_VERSIONS.index(highest) + 1]


def choose_repo_version(accepted: dict[str, float], highest: str) -> str | None:
    """The best repository version up to ``highest``: the client's favourite, and of equals the newest."""
    candidates = [version for version in servable_repo_versions(highest) if version in accepted]
    return max(candidates, key=lambda version: (accepted[version], version), default=None)


def gzip_accepted(accept_encoding: str | None) -> bool:
    codings = {}
    for item in _LIST_ITEM.findall(accept_encoding or ""):
        parts = item.split(";")
        params, quality = _parameters(parts[1:])
        codings[parts[0].strip().lower()] = quality or 0.0
    if "gzip" in codings:
        return codings["gzip"] > 0
    return codings.get("*", 0.0) > 0

