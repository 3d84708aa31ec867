"""Every /api/ answer is JSON, DEBUG on or off (404, 405, 500, field errors), and a body
nested 5,000 deep is a 400 that says why, never a 500. A service's refusal answers with the
status, code and body its class names (annotate.errors), through the one handler."""

import importlib
import json
import pkgutil
import re
from http import HTTPStatus

import pytest
from django.urls import path
from rest_framework.test import APIClient
from rest_framework.views import APIView

import annotate.services
import rewardtrain.services
from annotate.errors import ApplicationError
from annotate.models import Comparison, Membership, Pair
from annotate.queue import QueueUnavailable
from annotate.services.imports import ImportRejected
from annotate.services.labeling import ComparisonExists, PairNotServed
from config.urls import urlpatterns as base_urls
from rewardtrain.core.config import ConfigError
from tests.factories import make_pair

pytestmark = pytest.mark.django_db


def boom(request):
    raise RuntimeError("a bug")


# What the refusal views below raise, by the name in their URL.
REFUSALS = {
    "exists": ComparisonExists(7),
    "not-served": PairNotServed("No such pair."),
    "import": ImportRejected("Bad lines; nothing was imported.", [(3, "no prompt")], 2500),
    "config": ConfigError("nproc 4 is more than the 1 visible GPU"),
    "queue": QueueUnavailable("could not reach the task queue"),
}


class RefusalApi(APIView):
    def get(self, request, name):
        raise REFUSALS[name]


class PrefixedRefusalApi(RefusalApi):
    refusal_prefix = "Not done: "


# The project's URLs plus API routes that fail, as a bug would or as a service refuses.
urlpatterns = [
    path("api/test-boom/", boom),
    path("api/test-refusal/<str:name>/", RefusalApi.as_view()),
    path("api/test-prefixed/<str:name>/", PrefixedRefusalApi.as_view()),
    *base_urls,
]


def _domain_errors() -> set[type[Exception]]:
    """The exception classes the services define, the queue's, the core config's, and every
    ApplicationError subclass wherever it lives."""
    modules = [importlib.import_module(n) for n in ("annotate.queue", "rewardtrain.core.config")]
    for package in (annotate.services, rewardtrain.services):
        for info in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
            modules.append(importlib.import_module(info.name))
    found = {
        value
        for module in modules
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, Exception)
        and value.__module__ == module.__name__
    }
    pending = [ApplicationError]
    while pending:
        for sub in pending.pop().__subclasses__():
            found.add(sub)
            pending.append(sub)
    return found


def test_each_domain_error_names_its_own_status_and_code():
    errors = _domain_errors()
    names = {cls.__name__ for cls in errors}
    assert {"ComparisonExists", "ImportRejected", "ExportError", "ConfigError"} <= names
    assert {"QueueUnavailable", "RunError", "PasswordRefused", "ModelExportError"} <= names
    codes = []
    for cls in errors:
        # On the class itself: an inherited answer would hide a forgotten one.
        assert isinstance(vars(cls).get("status"), HTTPStatus), cls
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", vars(cls).get("code", "")), cls
        codes.append(cls.code)
    assert len(codes) == len(set(codes)), sorted(codes)


@pytest.mark.parametrize(
    ("name", "status", "body"),
    [
        (
            "exists",
            409,
            {"detail": "You already judged this pair (comparison 7).", "code": "exists", "id": 7},
        ),
        ("not-served", 404, {"detail": "No such pair."}),
        (
            "import",
            400,
            {
                "detail": "Bad lines; nothing was imported.",
                "errors": [{"line": 3, "message": "no prompt"}],
                "error_count": 2500,
            },
        ),
        ("config", 400, {"detail": "nproc 4 is more than the 1 visible GPU"}),
        ("queue", 503, {"detail": "could not reach the task queue"}),
    ],
)
def test_a_raised_refusal_answers_its_status_and_body(api, settings, name, status, body):
    settings.ROOT_URLCONF = __name__
    response = api.get(f"/api/test-refusal/{name}/")
    assert response.status_code == status and response.json() == body
    prefixed = api.get(f"/api/test-prefixed/{name}/").json()
    assert prefixed == {**body, "detail": f"Not done: {body['detail']}"}


def test_an_excluded_labeler_is_403_with_its_code(api, project, labeler):
    make_pair(project)
    Membership.objects.filter(project=project, user=labeler).update(
        excluded=True, excluded_reason="Too fast."
    )
    response = api.get("/api/projects/demo/next/")
    assert response.status_code == 403
    assert response.json() == {
        "detail": "Staff excluded you from this project, so it has no more pairs for you; "
        "your earlier judgments stay stored. The reason given: Too fast.",
        "code": "excluded",
    }


def test_a_pair_closed_under_the_labeler_is_409_pair_full(api, project):
    pair = make_pair(project)
    api.get("/api/projects/demo/next/")
    Pair.objects.filter(pk=pair.pk).update(is_open=False)
    response = api.post(
        "/api/comparisons/", {"pair_id": pair.pk, "preferred": "tie"}, format="json"
    )
    assert response.status_code == 409
    assert response.json() == {
        "detail": "This pair already has all the judgments it needs.",
        "code": "pair_full",
    }
    assert not Comparison.objects.exists()


@pytest.fixture
def api(labeler):
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(labeler)
    return client


@pytest.mark.parametrize("debug", [True, False])
def test_api_errors_are_json_with_debug_on_or_off(api, settings, debug):
    settings.DEBUG = debug
    settings.ROOT_URLCONF = __name__
    unknown = api.get("/api/no-such-route/")
    assert unknown.status_code == 404 and unknown.json() == {"detail": "Not Found."}
    wrong_method = api.delete("/api/projects/")
    assert wrong_method.status_code == 405 and "detail" in wrong_method.json()
    crash = api.get("/api/test-boom/")
    assert crash.status_code == 500 and crash.json() == {"detail": "Internal Server Error."}
    assert "a bug" not in crash.content.decode()
    # Pages outside /api/ keep their HTML.
    assert "application/json" not in api.get("/no-such-page/")["Content-Type"]


def test_deeply_nested_body_is_400_never_500(api, project):
    pair = make_pair(project)
    api.get("/api/projects/demo/next/")
    nested = "[" * 5000 + "]" * 5000
    deep = f'{{"pair_id": {pair.pk}, "preferred": "tie", "reasons": {nested}}}'
    response = api.post("/api/comparisons/", deep, content_type="application/json")
    assert response.status_code == 400
    assert "nested deeper than 64 levels" in response.json()["detail"]
    moderate = json.dumps({"pair_id": pair.pk, "preferred": "tie", "comment": "x" * 10})
    assert (
        api.post("/api/comparisons/", moderate, content_type="application/json").status_code == 201
    )
    assert Comparison.objects.count() == 1


def test_a_json_body_over_the_size_limit_is_413_and_stores_nothing(api, project, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    pair = make_pair(project)
    api.get("/api/projects/demo/next/")
    big = json.dumps({"pair_id": pair.pk, "preferred": "tie", "comment": "x" * 2000})
    response = api.post("/api/comparisons/", big, content_type="application/json")
    assert response.status_code == 413
    assert "larger than DATA_UPLOAD_MAX_MEMORY_SIZE (1,000 bytes)" in response.json()["detail"]
    assert not Comparison.objects.exists()
