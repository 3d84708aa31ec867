"""Staff download of a ModelVersion as a zip of its Hugging Face folder: small folders stream
from the request; larger ones are built once by a worker (rewardtrain/services/downloads.py)
and then sent as a file, by nginx when EXPORT_ACCEL_REDIRECT names its internal location."""

from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.urls import reverse

from annotate.selectors.projects import project_get_for_staff
from rewardtrain.models import ModelVersion
from rewardtrain.services.downloads import (
    ModelZip,
    folder_bytes,
    model_zip_request,
    model_zip_state,
)
from rewardtrain.services.model_exports import (
    ModelExportError,
    model_version_for_export,
    model_zip_name,
    model_zip_stream,
)

# The preparing page asks again this often; the answer that finds the zip ready is the file.
POLL_SECONDS = 5


def _version(request: HttpRequest, slug: str, version: int) -> ModelVersion:
    project = project_get_for_staff(user=request.user, slug=slug)
    try:
        return model_version_for_export(project=project, version=version)
    except ModelExportError as exc:
        raise Http404(str(exc)) from exc


@login_required
def model_version_download(request: HttpRequest, slug: str, version: int) -> HttpResponse:
    """200 with the zip (streamed when small, else the finished file); 202 and a page that asks
    again while a worker builds it; 409 with the reason when the build failed (`?retry=1`
    asks again)."""
    model_version = _version(request, slug, version)
    try:
        if folder_bytes(model_version) <= settings.MODEL_DOWNLOAD_SYNC_MAX_BYTES:
            response = StreamingHttpResponse(
                model_zip_stream(model_version=model_version), content_type="application/zip"
            )
            name = model_zip_name(model_version)
            response["Content-Disposition"] = f'attachment; filename="{name}.zip"'
            return response
        state = model_zip_request(model_version=model_version, retry="retry" in request.GET)
    except ModelExportError as exc:
        raise Http404(str(exc)) from exc
    if state.status == "ready" and state.path is not None:
        return _file_response(state.path, state.name)
    return render(
        request,
        "rewardtrain/model_download.html",
        {
            "project": model_version.project,
            "model_version": model_version,
            "state": state,
            "poll_seconds": POLL_SECONDS,
            "status_url": reverse("model-version-download-status", args=[slug, version]),
        },
        status=409 if state.status == "failed" else 202,
    )


@login_required
def model_version_download_status(request: HttpRequest, slug: str, version: int) -> JsonResponse:
    """Where the version's zip stands, for scripts: status, error and the download URL."""
    model_version = _version(request, slug, version)
    return JsonResponse(_state_json(model_zip_state(model_version), slug, version))


def _state_json(state: ModelZip, slug: str, version: int) -> dict[str, object]:
    return {
        "status": state.status,
        "error": state.error,
        "file_name": state.name,
        "download_url": reverse("model-version-download", args=[slug, version]),
    }


def _file_response(path: Path, name: str) -> HttpResponse:
    """The finished zip as an attachment: sent by nginx when EXPORT_ACCEL_REDIRECT names its
    internal location over MEDIA_ROOT/exports/ (no web worker held), else by this worker."""
    prefix = settings.EXPORT_ACCEL_REDIRECT
    if prefix:
        inside = path.relative_to(Path(settings.MEDIA_ROOT) / "exports").as_posix()
        response = HttpResponse(content_type="application/zip")
        response["X-Accel-Redirect"] = f"{prefix.rstrip('/')}/{inside}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    return FileResponse(path.open("rb"), as_attachment=True, filename=name)
