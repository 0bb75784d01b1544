"""What a package card shows beyond the catalogue's summary: its icon and whether it is certified, read from the
default versions' metadata in the database (not the whole documents), and the tags to filter by."""

from __future__ import annotations

from collections import Counter

from django.db.models import JSONField
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Cast

from access.clusters import Visibility
from dcos_bundle.universe.resource import file_name_of
from packages_app.coordinates import resource_path
from packages_app.models import PackageVersion, VersionBlob

# The icon a card shows, by preference: the sizes Universe packages carry.
ICON_SIZES = ("icon-medium", "icon-small", "icon-large")


def _metadata_parts(version_ids: list[int]) -> dict[int, tuple[dict, bool]]:
    """(resource.images, selected) of each version, extracted by the database from its stored metadata."""
    document = Cast("metadata", JSONField())
    rows = PackageVersion.objects.filter(pk__in=version_ids).values_list(
        "pk", KeyTransform("images", KeyTransform("resource", document)), KeyTransform("selected", document))
    return {pk: (images if isinstance(images, dict) else {}, selected is True) for pk, images, selected in rows}


def icon_url(images: dict) -> str:
    return next((images[size] for size in ICON_SIZES if isinstance(images.get(size), str)), "")


def decorate(summaries: list[dict]) -> list[dict]:
    """The summaries (``package_summaries``) with ``icon`` (a /resource path, "" for none) and ``selected``:
    two queries for a whole page."""
    version_ids = {summary["name"]: summary["default_version_id"] for summary in summaries}
    parts = _metadata_parts(list(version_ids.values()))
    wanted = {pk: icon_url(images) for pk, (images, _) in parts.items()}
    stored = {
        (version_id, url): digest
        for version_id, url, digest in VersionBlob.objects.filter(
            version_id__in=version_ids.values(), role=VersionBlob.Role.ASSET,
            name__in={url for url in wanted.values() if url},
        ).values_list("version_id", "name", "blob_id")
    }
    for summary in summaries:
        pk = version_ids[summary["name"]]
        digest = stored.get((pk, wanted.get(pk, "")))
        # Only an icon the version stored is served; another URL would send an air-gapped browser outside.
        summary["icon"] = (resource_path(summary["name"], summary["default_version"], digest,
                                         file_name_of(wanted[pk])) if digest else "")
        summary["selected"] = parts.get(pk, ({}, False))[1]
    return summaries


def popular_tags(visibility: Visibility, limit: int = 20) -> list[str]:
    """The tags most versions the caller sees carry, counted over the distinct tag lists (one light query)."""
    lists = visibility.versions(PackageVersion.objects.all()).order_by().values_list("tags", flat=True).distinct()
    counts = Counter(tag for tags in lists if isinstance(tags, list) for tag in tags if isinstance(tag, str))
    return sorted(tag for tag, _ in counts.most_common(limit))
