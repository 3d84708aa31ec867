"""Staff download of a ModelVersion as a zip of its Hugging Face folder."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, StreamingHttpResponse

from annotate.selectors.projects import project_get_for_staff
from rewardtrain.exports import (
    ModelExportError,
    model_version_for_export,
    model_zip_name,
    model_zip_stream,
)


@login_required
def model_version_download(request: HttpRequest, slug: str, version: int) -> StreamingHttpResponse:
    project = project_get_for_staff(user=request.user, slug=slug)
    try:
        model_version = model_version_for_export(project=project, version=version)
        chunks = model_zip_stream(model_version=model_version)
    except ModelExportError as exc:
        raise Http404(str(exc)) from exc
    response = StreamingHttpResponse(chunks, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{model_zip_name(model_version)}.zip"'
    return response
