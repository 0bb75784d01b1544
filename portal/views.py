"""The pages. Each asks ``access`` who is asking and what it reaches, and ``packages_app`` what the catalogue holds,
as the APIs do: a page shows exactly what the same caller reads over the API."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from access.auth import reader_of, sign_in_with_token
from access.principals import WRITE
from dcos_bundle.errors import RegistryError
from ingest.models import IngestJob
from packages_app.catalogue import (
    SUMMARY_FIELDS,
    contents,
    find_package,
    find_version,
    package_summaries,
    search_packages,
)
from packages_app.coordinates import registry_host, resource_path

from . import cards, schema

PAGE_SIZE = 24
# What the browser sends per PUT of a resumable upload: large enough to keep a fast link busy, small enough to
# lose little when the connection drops.
UPLOAD_CHUNK_BYTES = 8 * 1024 * 1024
# How often the pages ask the job API for a job's progress, in milliseconds.
JOB_POLL_MS = 1000


def page(request, template: str, context: dict | None = None, status: int = 200):
    principal = request.principal
    return render(request, f"portal/{template}", {
        "principal": principal, "may_write": principal.may(WRITE), "is_staff": request.user.is_staff,
        **(context or {}),
    }, status=status)


def reads(view):
    """The caller may read (a page asking a reader who may not read answers 401 with the sign-in form)."""
    def wrapped(request, *args, **kwargs):
        def refuse(status, code, message):
            request.principal = None
            return render(request, "portal/sign_in.html", {"message": message, "next": request.get_full_path()},
                          status=status)
        principal, refusal = reader_of(request, refuse)
        if refusal is not None:
            return refusal
        request.principal = principal
        return view(request, *args, **kwargs)
    wrapped.__name__, wrapped.__doc__ = view.__name__, view.__doc__
    return wrapped


def not_found(request, message: str):
    return page(request, "not_found.html", {"message": message}, status=404)


@reads
def catalogue(request):
    """Packages the caller sees, matching ``q`` and ``tag``, by name; paged by the name at a page's edge (after=
    or before=), so every page costs the same whatever the catalogue's size."""
    words, tag = request.GET.get("q", "").strip(), request.GET.get("tag", "").strip()
    visibility = request.principal.visibility
    matching = search_packages(visibility, words, tag)
    after, before = request.GET.get("after", ""), request.GET.get("before", "")
    if before:
        window = list(matching.filter(name__lt=before).order_by("-name")[:PAGE_SIZE + 1])
        more_before, window = len(window) > PAGE_SIZE, window[:PAGE_SIZE][::-1]
        more_after = True
    else:
        window = list((matching.filter(name__gt=after) if after else matching).order_by("name")[:PAGE_SIZE + 1])
        more_after, window = len(window) > PAGE_SIZE, window[:PAGE_SIZE]
        more_before = bool(after)
    summaries = cards.decorate(package_summaries(window, visibility)) if window else []
    return page(request, "catalogue.html", {
        "packages": summaries, "q": words, "tag": tag, "tags": cards.popular_tags(visibility),
        "total": matching.count(),
        "previous_edge": summaries[0]["name"] if more_before and summaries else "",
        "next_edge": summaries[-1]["name"] if more_after and summaries else "",
    })


@reads
def package_page(request, name: str):
    visibility = request.principal.visibility
    try:
        package = find_package(name, visibility)
    except RegistryError as error:
        return not_found(request, error.message)
    [summary] = cards.decorate(package_summaries([package], visibility))
    default = find_version(name, summary["default_version"], visibility)
    by_number = {version.version: version for version in
                 visibility.versions(package.versions.only(*SUMMARY_FIELDS, "min_dcos_release_version"))}
    metadata = default.metadata
    return page(request, "package.html", {
        "package": summary, "metadata": metadata,
        "versions": [by_number[number] for number in reversed(summary["versions"])],
        "licenses": [license for license in metadata.get("licenses") or [] if isinstance(license, dict)],
    })


@reads
def version_page(request, name: str, version: str):
    try:
        found = find_version(name, version, request.principal.visibility)
    except RegistryError as error:
        return not_found(request, error.message)
    jobs = request.principal.jobs(found.ingest_jobs.filter(state=IngestJob.State.SUCCEEDED))
    [summary] = cards.decorate(package_summaries([found.package], request.principal.visibility))
    held = contents(found)
    for number, image in enumerate(held.images):
        image["copy_id"], image["size"] = f"pull-{number}", sum(blob["size"] for blob in image["blobs"])
    for asset in held.assets:
        # The browser follows the path on the address it came by, whatever PUBLIC_BASE_URL says.
        asset["path"] = resource_path(name, version, asset["digest"], asset["file_name"])
    return page(request, "version.html", {
        "package": summary, "version": found, "metadata": found.metadata, "contents": held,
        "options": schema.options(found.metadata.get("config")),
        "job": jobs.order_by("-created_at").first(),
    })


@reads
def getting_started(request):
    """The commands that put a cluster on this registry: for the whole catalogue and for each cluster the caller
    reads, as the cluster API lists them."""
    base = settings.PUBLIC_BASE_URL
    return page(request, "getting_started.html", {
        "base_url": base, "host": registry_host(), "https": base.startswith("https://"),
        "anonymous_reads": settings.ANONYMOUS_READS,
        "clusters": request.principal.clusters().order_by("name"),
    })


def stage_rows(job: IngestJob | None) -> list[tuple[str, str, object]]:
    """(stage, label, its JobStage or None) for every stage in pipeline order: the table job.js keeps up to date."""
    reached = {stage.stage: stage for stage in job.stages.all()} if job is not None else {}
    return [(value, label, reached.get(value)) for value, label in IngestJob.Stage.choices]


@reads
def job_page(request, job_id: uuid.UUID):
    job = (request.principal.jobs(IngestJob.objects.select_related("package_version__package")
                                  .prefetch_related("stages")).filter(pk=job_id).first())
    if job is None:
        return not_found(request, f"There is no job {job_id}.")
    return page(request, "job.html", {"job": job, "job_url": reverse("job-detail", args=[job.pk]),
                                      "stage_rows": stage_rows(job), "poll_ms": JOB_POLL_MS})


@reads
def upload(request):
    if not request.principal.may(WRITE):
        message = ("Uploading needs the write scope: sign in with a write token, or as a staff user."
                   if request.principal.is_authenticated else "Sign in to upload.")
        return page(request, "upload.html", {"refused": message}, status=403)
    return page(request, "upload.html", {"chunk_bytes": UPLOAD_CHUNK_BYTES, "poll_ms": JOB_POLL_MS,
                                         "stage_rows": stage_rows(None)})


def _next_page(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or "/"
    return target if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()) else "/"


@require_http_methods(["GET", "POST"])
def sign_in(request):
    """Sign the browser in with an API token (staff sign in with their account on the admin's form)."""
    if request.method == "POST":
        try:
            sign_in_with_token(request, request.POST.get("token", "").strip())
        except RegistryError as error:
            return render(request, "portal/sign_in.html", {"message": error.message, "next": _next_page(request)},
                          status=400)
        return HttpResponseRedirect(_next_page(request))
    return render(request, "portal/sign_in.html", {"next": _next_page(request)})


@require_POST
def sign_out(request):
    logout(request)
    return HttpResponseRedirect(reverse("portal:catalogue"))
