"""Multipart bundle uploads, streamed straight into staging by a Django upload handler."""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler

from access.audit import Actor
from blobs.store import refuse_uploads_when_disk_low, refuse_uploads_while_storage_moves
from dcos_bundle.digests import HashingCopier
from dcos_bundle.errors import ErrorCode, RegistryError
from dcos_bundle.flags import parse_bool
from ingest import services, staging, tasks
from ingest.models import IngestJob

BUNDLE_FIELD = "bundle"


class StagingUploadHandler(FileUploadHandler):
    """Writes the ``bundle`` file field to its staged location as it arrives, hashing it."""

    def __init__(self, request, location: str):
        super().__init__(request)
        self.location = location
        self.staged: UploadedFile | None = None
        self._file = None

    def new_file(self, field_name, file_name, *args, **kwargs):
        super().new_file(field_name, file_name, *args, **kwargs)
        if field_name != BUNDLE_FIELD or self.staged is not None or self._file is not None:
            raise RegistryError(ErrorCode.INVALID_REQUEST, f"Send exactly one file, in the form field {BUNDLE_FIELD!r}.")
        self._file = staging.writer(self.location)
        self._copier = HashingCopier()
        self._head = b""

    def receive_data_chunk(self, raw_data, start):
        if len(self._head) < staging.ZIP_START:
            # The first chunk decides: a file that is no ZIP is refused before the rest of the form is read.
            self._head += raw_data[:staging.ZIP_START - len(self._head)]
            staging.check_zip_start(self._head)
        if self._copier.size + len(raw_data) > settings.MAX_BUNDLE_BYTES:
            raise staging.too_large(self._copier.size + len(raw_data))
        self._copier.update(raw_data)
        self._file.write(raw_data)
        return None

    def file_complete(self, file_size):
        self._file.commit()
        self._file = None
        self.staged = UploadedFile(name=self.file_name, size=self._copier.size)
        self.staged.digest = self._copier.digest
        return self.staged

    def close(self) -> None:
        """Give up a file the form did not finish (the job's removal deletes a finished one)."""
        if self._file is not None:
            self._file.abort()
            self._file = None


def staged_multipart_bundle(request, *, actor: Actor, replace: bool, expected_digest: str) -> IngestJob:
    refuse_uploads_while_storage_moves()
    refuse_uploads_when_disk_low()
    tasks.require_broker()
    with services.receiving_job(actor=actor, bundle_name="", replace=replace) as job:
        handler = StagingUploadHandler(request, job.staging_path)
        request.upload_handlers = [handler]
        try:
            request.FILES  # parses the form, streaming the file through the handler
        finally:
            handler.close()
        if handler.staged is None:
            raise RegistryError(ErrorCode.INVALID_REQUEST, f"The form has no file field {BUNDLE_FIELD!r}.")
        form_replace = parse_bool(request.POST.get("replace"), "replace", default=False)
        services.check_declared_digest(
            handler.staged.digest, expected_digest or services.parse_sha256(request.POST.get("sha256")))
        IngestJob.objects.filter(pk=job.pk).update(bundle_name=handler.staged.name or "",
                                                   replace=replace or form_replace)
        job.refresh_from_db()
        return services.queue(job, size=handler.staged.size, digest=handler.staged.digest, actor=actor)
