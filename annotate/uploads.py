"""Import uploads: written to a temporary file on disk (never into memory, whatever their
size) and refused past MAX_UPLOAD_BYTES, before and while the body arrives."""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from rest_framework import status
from rest_framework.exceptions import APIException


class UploadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "upload_too_large"

    def __init__(self) -> None:
        limit = settings.MAX_UPLOAD_BYTES
        super().__init__(
            f"The upload is larger than MAX_UPLOAD_BYTES ({limit:,} bytes); nothing was "
            "imported. Split the file, or ask the admin to raise the limit."
        )


class CappedUploadHandler(TemporaryFileUploadHandler):
    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        # A body announced as too large is refused before a byte of it is read.
        if content_length and content_length > settings.MAX_UPLOAD_BYTES:
            raise UploadTooLarge
        return super().handle_raw_input(input_data, META, content_length, boundary, encoding)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        # A body sent without a length (chunked) is counted as it arrives.
        if start + len(raw_data) > settings.MAX_UPLOAD_BYTES:
            raise UploadTooLarge
        return super().receive_data_chunk(raw_data, start)
