"""Every /api/ answer is JSON, DEBUG on or off (404, 405, 500, field errors), and a body
nested 5,000 deep is a 400 that says why, never a 500."""

import json

import pytest
from django.urls import path
from rest_framework.test import APIClient

from annotate.models import Comparison
from config.urls import urlpatterns as base_urls
from tests.factories import make_pair

pytestmark = pytest.mark.django_db


def boom(request):
    raise RuntimeError("a bug")


# The project's URLs plus one API route that fails, as a bug would.
urlpatterns = [path("api/test-boom/", boom), *base_urls]


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
