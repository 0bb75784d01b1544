"""The Universe repository Cosmos reads: ``GET /repo`` (and HEAD).

What a cluster gets depends on its DC/OS version (``User-Agent: cosmos/<x> dcos/<X.Y>``) and on the
repository versions its ``Accept`` lists, exactly as the Universe generator (``scripts/gen_universe.py``)
rendered ``repo-up-to-<X.Y>.json``:

- packages whose ``minDcosReleaseVersion`` (missing: 0.0) is above the cluster's are left out;
- DC/OS up to 1.9 gets a v3 repository, 1.10 and 1.11 v4, 1.12 and later v5 (no DC/OS version: v5);
- in a v3 repository 4.0 packages become 3.0, without ``upgradesFrom``/``downgradesTo``;
- below DC/OS 1.10, double quotes in config descriptions and string defaults are escaped once more
  (Cosmos before 1.10 unescaped them once too often when rendering).

Each package is its stored metadata plus our ``releaseVersion``, with every URL and image the version
stored pointing at this registry. ``selected`` is left out: it is the repository's to set and we
select nothing (Cosmos reads a missing ``selected`` as false).
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import logging
import re
import threading
import time
from collections import OrderedDict, defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Max, Sum
from django.db.models.signals import post_delete, post_save
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.http import require_safe

from access.auth import WWW_AUTHENTICATE, acting_for, reader_of
from access.clusters import EVERYTHING, Visibility, dcos_version_of, find_cluster, visibility_of
from dcos_bundle.errors import RegistryError
from dcos_bundle.universe.resource import asset_urls, file_name_of, image_references
from packages_app.models import PackageVersion, VersionBlob

from .coordinates import registry_host, resource_url, split_reference

logger = logging.getLogger(__name__)

REPO_MEDIA_TYPE = "application/vnd.dcos.universe.repo+json"
ERROR_MEDIA_TYPE = "application/vnd.dcos.package.error+json;charset=utf-8;version=v1"
REPO_VERSIONS = ("v3", "v4", "v5")  # lowest first
# The packagingVersions each repository version carries (4.0 in v3 after downgrading it). A 5.0 package never
# reaches a v3/v4 repository: Universe only published 5.0 packages for DC/OS 1.12 and later (the generator would
# have failed its own schema check otherwise), and an older Cosmos can neither read one nor use its `manager`.
CARRIES = {"v3": ("3.0", "4.0"), "v4": ("3.0", "4.0"), "v5": ("3.0", "4.0", "5.0")}
ESCAPE_BELOW = (1, 10)
_DCOS_VERSION = re.compile(r"\bdcos/(\d+(?:\.\d+)*)")
# A media range or parameter list split at commas/semicolons outside quoted strings.
_LIST_ITEM = re.compile(r'(?:[^,"]|"(?:[^"\\]|\\.)*")+')
_PARAM_ITEM = re.compile(r'(?:[^;"]|"(?:[^"\\]|\\.)*")+')
# The generator's own pattern: a double quote not preceded by a backslash.
_UNESCAPED_QUOTE = re.compile(r'([^\\])"')
# Rendered variants kept per process, by size: a catalogue of thousands of versions renders to tens of MB.
VARIANT_CACHE_BYTES = 256 * 1024 * 1024


def repo_content_type(repo_version: str) -> str:
    # Exactly this: Cosmos rejects a response whose Content-Type carries any parameter it did not ask for.
    return f"{REPO_MEDIA_TYPE};charset=utf-8;version={repo_version}"


# --- Content negotiation -----------------------------------------------------------------------------------

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


def choose_repo_version(accepted: dict[str, float], highest: str) -> str | None:
    """The best repository version up to ``highest``: the client's favourite, and of equals the newest."""
    candidates = [version for version in REPO_VERSIONS[: REPO_VERSIONS.index(highest) + 1] if version in accepted]
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


# --- DC/OS versions ----------------------------------------------------------------------------------------

def dcos_version(user_agent: str | None) -> tuple[int, ...] | None:
    """The cluster's DC/OS version from Cosmos's User-Agent, e.g. ``dcos/1.10.2`` -> (1, 10, 2)."""
    found = _DCOS_VERSION.search(user_agent or "")
    return tuple(int(part) for part in found.group(1).split(".")) if found else None


def release_key(value: str) -> tuple[int, ...]:
    """Loose version order for ``minDcosReleaseVersion`` ("1.10" > "1.9"; "1.10" < "1.10.0"), as LooseVersion."""
    return tuple(int(part) for part in value.split("."))


def highest_repo_version(dcos: tuple[int, ...] | None) -> str:
    if dcos is None:
        return "v5"
    # Compared by major.minor: a patch release (1.9.5) belongs with its minor (the generator only saw X.Y).
    if dcos[:2] < (1, 10):
        return "v3"
    return "v4" if dcos[:2] < (1, 12) else "v5"


# --- Rendering ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Entry:
    min_dcos: tuple[int, ...]
    packaging_version: str
    package: dict  # metadata + releaseVersion, URLs rewritten
    encoded: bytes  # the same as JSON: most variants reuse it as it is


def _encode(document) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _replace_at(document, pointer: str, value) -> None:
    """Set the value an RFC 6901 pointer names (the pointers asset_urls and image_references give)."""
    *parents, last = [part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]]
    for part in parents:
        document = document[int(part) if isinstance(document, list) else part]
    document[int(last) if isinstance(document, list) else last] = value


def package_entry(name: str, version: str, release_version: int, metadata: dict, assets: dict[str, str],
                  images: dict[str, str]) -> _Entry:
    """One version as /repo serves it; ``assets`` maps stored URLs, ``images`` stored references, to digests."""
    package = {**metadata, "releaseVersion": release_version}
    if "resource" in package:
        # Rewritten below: a copy, so the caller's metadata stays as stored.
        package["resource"] = copy.deepcopy(package["resource"])
    packaging_version = package["packagingVersion"]
    if packaging_version not in CARRIES["v5"]:
        raise ValueError(f"packagingVersion {packaging_version!r}")
    # Only what the version stored is ours to serve; a metadata-only version keeps its original URLs.
    for url, pointers in asset_urls(package).items():
        if url in assets:
            for pointer in pointers:
                _replace_at(package, pointer, resource_url(name, version, assets[url], file_name_of(url)))
    for reference, pointers in image_references(package).items():
        if reference in images:
            pulled = f"{registry_host()}/{split_reference(reference)[0]}@{images[reference]}"
            for pointer in pointers:
                _replace_at(package, pointer, pulled)
    min_dcos = release_key(package.get("minDcosReleaseVersion") or "0.0")
    return _Entry(min_dcos, packaging_version, package, _encode(package))


def load_entries() -> list[_Entry]:
    """Every published version, ready to serve: two queries whatever the catalogue's size."""
    stored: dict[int, tuple[dict, dict]] = defaultdict(lambda: ({}, {}))
    links = VersionBlob.objects.filter(role__in=[VersionBlob.Role.ASSET, VersionBlob.Role.MANIFEST])
    for version_id, role, name, digest in links.values_list("version_id", "role", "name", "blob_id"):
        stored[version_id][0 if role == VersionBlob.Role.ASSET else 1][name] = digest
    entries = []
    rows = PackageVersion.objects.order_by("package__name", "release_version").values_list(
        "id", "package__name", "version", "release_version", "metadata")
    for version_id, name, version, release_version, metadata in rows:
        try:
            assets, images = stored.get(version_id, ({}, {}))
            entries.append(package_entry(name, version, release_version, metadata, assets, images))
        except Exception:
            # One bad row must not take every cluster's package list down with it.
            logger.exception("/repo leaves out %s %s (release %s): its metadata cannot be served", name, version,
                             release_version)
    return entries


def _escape_json_string(value):
    return _UNESCAPED_QUOTE.sub(r'\1\\"', value) if isinstance(value, str) else value


def _escape_properties(properties: dict) -> None:
    """The generator's json_escape_compatibility: descriptions, string defaults, nested object properties."""
    for schema in properties.values():
        if not isinstance(schema, dict):
            continue
        if "description" in schema:
            schema["description"] = _escape_json_string(schema["description"])
        if schema.get("type") == "string" and "default" in schema:
            schema["default"] = _escape_json_string(schema["default"])
        elif schema.get("type") == "object" and isinstance(schema.get("properties"), dict):
            _escape_properties(schema["properties"])


def _variant_package(entry: _Entry, repo_version: str, escape: bool) -> bytes:
    config = entry.package.get("config")
    escapes = escape and isinstance(config, dict) and isinstance(config.get("properties"), dict)
    downgrades = repo_version == "v3" and entry.packaging_version == "4.0"
    if not (escapes or downgrades):
        return entry.encoded
    package = json.loads(entry.encoded)  # a deep copy, several times faster than copy.deepcopy
    if escapes:
        _escape_properties(package["config"]["properties"])
    if downgrades:
        package.pop("upgradesFrom", None)
        package.pop("downgradesTo", None)
        package["packagingVersion"] = "3.0"
    return _encode(package)


def render(entries: list[_Entry], repo_version: str, cutoff: tuple[int, ...] | None, escape: bool,
           visibility: Visibility = EVERYTHING) -> bytes:
    parts = []
    for entry in entries:
        if cutoff is not None and entry.min_dcos > cutoff:
            continue
        if not visibility.allows(entry.package["name"], entry.package["version"]):
            continue
        if entry.packaging_version not in CARRIES[repo_version]:
            continue
        try:
            parts.append(_variant_package(entry, repo_version, escape))
        except Exception:
            logger.exception("/repo leaves out %s %s from a %s repository", entry.package.get("name"),
                             entry.package.get("version"), repo_version)
    return b'{"packages":[' + b",".join(parts) + b"]}"


# --- Caches ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Rendered:
    body: bytes
    gzipped: bytes
    etag: str


class _RepoCache:
    """The catalogue ready to serve, and its rendered variants, for one catalogue generation.

    The generation is read from the database (one aggregate query) at most every REPO_FRESHNESS_SECONDS,
    so a web process notices a publish or a removal by another process within that time, and one by
    itself at once (the model signals below). Cosmos caches a repository for a minute anyway. Kept in process memory rather than in
    Django's cache: the values are megabytes. Variants are few (clients whose DC/OS versions let through the
    same packages share one) and their total size is capped, whatever DC/OS versions clients claim.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._generation = None
        self._checked_at = float("-inf")
        self._entries: list[_Entry] = []
        self._variants: OrderedDict[tuple, _Rendered] = OrderedDict()

    @staticmethod
    def current_generation() -> tuple:
        # Ids are never reused, so a new version raises the maximum and a removal lowers the count; the sum
        # catches a removal racing a late-committing publish, the newest time a database that was reset.
        state = PackageVersion.objects.aggregate(count=Count("id"), last=Max("id"), total=Sum("id"),
                                                 newest=Max("published_at"))
        return (*state.values(), settings.PUBLIC_BASE_URL)

    def expire(self, **_) -> None:
        self._checked_at = float("-inf")

    def entries(self) -> tuple[tuple, list[_Entry]]:
        if time.monotonic() - self._checked_at < settings.REPO_FRESHNESS_SECONDS:
            with self._lock:
                return self._generation, self._entries
        try:
            generation = self.current_generation()
            self._checked_at = time.monotonic()
            if generation != self._generation:
                # Read after the generation: a change in between only makes the next request render again.
                entries = load_entries()
                with self._lock:
                    self._generation, self._entries = generation, entries
                    self._variants.clear()
        except DatabaseError:
            if self._generation is None:
                raise
            # Clusters keep the packages they could see while the database is away.
            logger.exception("/repo serves its last rendering: the database is unavailable")
        with self._lock:
            return self._generation, self._entries

    def rendered(self, repo_version: str, dcos: tuple[int, ...] | None,
                 visibility: Visibility = EVERYTHING) -> _Rendered:
        generation, entries = self.entries()
        escape = dcos is not None and dcos < ESCAPE_BELOW
        # The highest minDcosReleaseVersion the cluster satisfies: what decides which packages it sees.
        cutoff = None if dcos is None else max((e.min_dcos for e in entries if e.min_dcos <= dcos), default=())
        key = (generation, repo_version, cutoff, escape, visibility)
        with self._lock:
            if key in self._variants:
                self._variants.move_to_end(key)
                return self._variants[key]
        body = render(entries, repo_version, cutoff, escape, visibility)
        etag = '"' + hashlib.sha256(body).hexdigest()[:40] + '"'
        result = _Rendered(body, gzip.compress(body, compresslevel=6, mtime=0), etag)
        with self._lock:
            self._variants[key] = result
            while len(self._variants) > 1 and sum(
                    len(kept.body) + len(kept.gzipped) for kept in self._variants.values()) > VARIANT_CACHE_BYTES:
                self._variants.popitem(last=False)
        return result


_cache = _RepoCache()
post_save.connect(_cache.expire, sender=PackageVersion, dispatch_uid="universe-repo-expire-save")
post_delete.connect(_cache.expire, sender=PackageVersion, dispatch_uid="universe-repo-expire-delete")


# --- The view ----------------------------------------------------------------------------------------------

def _error(status: int, error_type: str, message: str, **data) -> HttpResponse:
    body = json.dumps({"type": error_type, "message": message, "data": data})
    return HttpResponse(body, status=status, content_type=ERROR_MEDIA_TYPE)


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    # Weak comparison, as If-None-Match asks for.
    tags = [tag.strip().removeprefix("W/") for tag in _LIST_ITEM.findall(if_none_match or "")]
    return "*" in tags or etag in tags


def _refuse(status: int, code: str, message: str) -> HttpResponse:
    response = _error(status, "Unauthorized", message, reason=code)
    response["WWW-Authenticate"] = WWW_AUTHENTICATE
    return response


@require_safe
def repo(request):
    """The whole catalogue (the default cluster's repository); a cluster's token gets its cluster's."""
    reader, refused = reader_of(request, _refuse)
    if refused:
        return refused
    if reader.cluster is not None:
        return _serve_cluster(request, reader.cluster)
    return _serve(request, dcos_version(request.headers.get("User-Agent")), EVERYTHING)


@require_safe
def cluster_repo(request, name: str):
    """What one cluster may see; its configured DC/OS version, when set, wins over what its Cosmos reports.

    Another cluster's repository does not exist for a cluster's token.
    """
    reader, refused = reader_of(request, _refuse)
    if refused:
        return refused
    try:
        cluster = find_cluster(name, reader.clusters())
    except RegistryError as error:
        return _error(404, "RepositoryNotFound", error.message, cluster=name)
    return _serve_cluster(request, cluster)


def _serve_cluster(request, cluster):
    acting_for(request, cluster.name)
    dcos = dcos_version_of(cluster) or dcos_version(request.headers.get("User-Agent"))
    return _serve(request, dcos, visibility_of(cluster))


def _serve(request, dcos: tuple[int, ...] | None, visibility: Visibility):
    highest = highest_repo_version(dcos)
    repo_version = choose_repo_version(accepted_repo_versions(request.headers.get("Accept")), highest)
    vary = "Accept, Accept-Encoding, User-Agent"
    if repo_version is None:
        servable = REPO_VERSIONS[: REPO_VERSIONS.index(highest) + 1]
        available = [repo_content_type(version) for version in reversed(servable)]
        response = _error(
            406, "IncompatibleAcceptHeader",
            f"None of the media types in Accept [{request.headers.get('Accept', '')}] is served here; "
            f"/repo serves: {', '.join(available)}",
            specified=request.headers.get("Accept", ""), available=available)
        response["Vary"] = vary
        return response
    try:
        rendered = _cache.rendered(repo_version, dcos, visibility)
    except DatabaseError:
        logger.exception("/repo cannot read the catalogue")
        return _error(503, "ServiceUnavailable", "The package catalogue is unavailable; try again shortly.")

    compressed = gzip_accepted(request.headers.get("Accept-Encoding"))
    # Strong ETags name one representation: the gzip one has its own.
    etag = rendered.etag[:-1] + '-gzip"' if compressed else rendered.etag
    headers = {"ETag": etag, "Vary": vary, "Cache-Control": "no-cache"}
    if _etag_matches(request.headers.get("If-None-Match"), etag):
        response = HttpResponse(status=304, headers=headers)
        del response["Content-Type"]
        return response
    body = rendered.gzipped if compressed else rendered.body
    if compressed:
        headers["Content-Encoding"] = "gzip"
    response = HttpResponse(b"" if request.method == "HEAD" else body, headers=headers,
                            content_type=repo_content_type(repo_version))
    response["Content-Length"] = str(len(body))
    return response


urlpatterns = [
    path("repo", repo, name="universe-repo"),
    path("clusters/<slug:name>/repo", cluster_repo, name="cluster-repo"),
]
