"""The staff upload page for imports: a form in front of the import service, with the result
or every bad line shown back."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from annotate.importers.detect import IMPORTERS
from annotate.selectors.imports import import_batches_recent
from annotate.selectors.pairs import pair_counts
from annotate.selectors.projects import project_get_for_staff
from annotate.services.imports import ImportRejected, import_upload
from annotate.uploads import CappedUploadHandler, UploadTooLarge


class ImportForm(forms.Form):
    file = forms.FileField()
    skip_invalid = forms.BooleanField(
        required=False, label="Skip bad lines (import the good rows, report the bad ones)"
    )


# The upload handlers can only be swapped before the CSRF check reads the body, so the check
# runs inside the view, after the swap (the pattern Django's upload docs give).
@csrf_exempt
@login_required
def project_import(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_get_for_staff(user=request.user, slug=slug)
    # Uploads go to a temporary file on disk, never into memory, up to MAX_UPLOAD_BYTES.
    request.upload_handlers = [CappedUploadHandler(request)]
    try:
        return _project_import(request, project)
    except UploadTooLarge as exc:
        return render(
            request,
            "annotate/import.html",
            _context(project, ImportForm(), None, ImportRejected(str(exc.detail))),
            status=413,
        )


@csrf_protect
def _project_import(request: HttpRequest, project) -> HttpResponse:
    result = rejected = None
    status = 200
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                result = import_upload(
                    project=project,
                    upload=upload,
                    skip_invalid=form.cleaned_data["skip_invalid"],
                    created_by=request.user,
                )
            except ImportRejected as exc:
                rejected = exc
                status = 400
            project.refresh_from_db()
        else:
            status = 400
    else:
        form = ImportForm()
    return render(
        request, "annotate/import.html", _context(project, form, result, rejected), status=status
    )


def _context(project, form, result, rejected) -> dict:
    return {
        "project": project,
        "form": form,
        "result": result,
        "rejected": rejected,
        "shapes": [(i.NAME, i.SHAPE) for i in IMPORTERS],
        "batches": import_batches_recent(project=project),
        "counts": pair_counts(project=project),
    }
