"""The catalogue ready to serve, and its rendered variants, kept per process for one catalogue generation."""

from __future__ import annotations

import gzip
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Max, Sum
from django.db.models.signals import post_delete, post_save

from access.clusters import EVERYTHING, Visibility
from blobs.outages import DATABASE_OUTAGES
from dcos_bundle.digests import sha256_hex
from packages_app.models import Package, PackageVersion

from .dcos_rules import escapes_quotes
from .render import Entry, load_entries, render

logger = logging.getLogger(__name__)

# Rendered variants kept per process, by size: a catalogue of thousands of versions renders to tens of MB.
VARIANT_CACHE_BYTES = 256 * 1024 * 1024
# Requests whose last answer is remembered (a few hundred bytes each), for while the database is away.
REMEMBERED_REQUESTS = 4096


@dataclass(frozen=True)
class Rendered:
    body: bytes
    gzipped: bytes
    etag: str


class RepoCache:
    """The catalogue ready to serve, and its rendered variants, for one catalogue generation.

    The generation is read from the database (two small queries) at most every REPO_FRESHNESS_SECONDS,
    so a web process notices a publish, a removal or a pin by another process within that time, and one by
    itself at once (``expire``, connected to the model signals by ``connect_signals``). Cosmos caches a
    repository for a minute anyway. Kept in process memory rather than in Django's cache: the values are
    megabytes. Variants are few (clients whose DC/OS versions let through the same packages share one)
    and their total size is capped, whatever DC/OS versions clients claim.

    While the database is away, the last catalogue read is served, and each request that was answered
    before gets what it got then (``served``): which cluster, DC/OS version and packages it resolved to
    needs the database too.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._generation = None
        self._checked_at = float("-inf")
        self._entries: list[Entry] = []
        self._variants: OrderedDict[tuple, Rendered] = OrderedDict()
        self._served: OrderedDict[tuple, tuple] = OrderedDict()

    @staticmethod
    def current_generation() -> tuple:
        # Ids are never reused, so a new version raises the maximum and a removal lowers the count; the sum
        # catches a removal racing a late-committing publish, the newest time a database that was reset.
        state = PackageVersion.objects.aggregate(count=Count("id"), last=Max("id"), total=Sum("id"),
                                                 newest=Max("published_at"))
        # Pinned versions decide releaseVersions; operators pin a few, so they are read whole.
        pins = tuple(Package.objects.exclude(pinned_version="").order_by("pk").values_list("pk", "pinned_version"))
        return (*state.values(), pins, settings.PUBLIC_BASE_URL)

    def expire(self, **_) -> None:
        self._checked_at = float("-inf")

    def entries(self) -> tuple[tuple, list[Entry]]:
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
        except DATABASE_OUTAGES:
            if self._generation is None:
                raise
            # Clusters keep the packages they could see while the database is away; asked again in a while.
            self._checked_at = time.monotonic()
            logger.warning("/repo serves its last rendering: the database is unavailable", exc_info=True)
        with self._lock:
            return self._generation, self._entries

    def rendered(self, repo_version: str, dcos: tuple[int, ...] | None,
                 visibility: Visibility = EVERYTHING) -> Rendered:
        generation, entries = self.entries()
        escape = escapes_quotes(dcos)
        # The highest minDcosReleaseVersion the cluster satisfies: what decides which packages it sees.
        cutoff = None if dcos is None else max((e.min_dcos for e in entries if e.min_dcos <= dcos), default=())
        key = (generation, repo_version, cutoff, escape, visibility)
        with self._lock:
            if key in self._variants:
                self._variants.move_to_end(key)
                return self._variants[key]
        body = render(entries, repo_version, cutoff, escape, visibility)
        etag = '"' + sha256_hex(body)[:40] + '"'
        result = Rendered(body, gzip.compress(body, compresslevel=6, mtime=0), etag)
        with self._lock:
            self._variants[key] = result
            while len(self._variants) > 1 and sum(
                    len(kept.body) + len(kept.gzipped) for kept in self._variants.values()) > VARIANT_CACHE_BYTES:
                self._variants.popitem(last=False)
        return result

    def served(self, request_key: tuple, repo_version: str, dcos: tuple[int, ...] | None,
               visibility: Visibility = EVERYTHING) -> Rendered:
        """``rendered``, remembered as the answer to ``request_key`` (who asked, and for what)."""
        result = self.rendered(repo_version, dcos, visibility)
        with self._lock:
            self._served[request_key] = (repo_version, dcos, visibility)
            self._served.move_to_end(request_key)
            if len(self._served) > REMEMBERED_REQUESTS:
                self._served.popitem(last=False)
        return result

    def served_before(self, request_key: tuple) -> tuple[str, Rendered] | None:
        """What ``request_key`` was last answered with, from the catalogue at hand; None if it never was."""
        with self._lock:
            remembered = self._served.get(request_key)
        if remembered is None:
            return None
        repo_version, dcos, visibility = remembered
        return repo_version, self.rendered(repo_version, dcos, visibility)


repo_cache = RepoCache()


def connect_signals() -> None:
    """A change this process makes to the catalogue is served at once (called from the app's ``ready``)."""
    post_save.connect(repo_cache.expire, sender=PackageVersion, dispatch_uid="universe-repo-expire-save")
    post_delete.connect(repo_cache.expire, sender=PackageVersion, dispatch_uid="universe-repo-expire-delete")
    post_save.connect(repo_cache.expire, sender=Package, dispatch_uid="universe-repo-expire-pin")
