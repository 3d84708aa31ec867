"""Error pages: a form body over the size limit, in the admin or anywhere, answers 413 with
the limit named (Django's own answer is a bare 400)."""

import pytest
from django.test import Client

from annotate.models import Project

pytestmark = pytest.mark.django_db


def test_an_admin_form_over_the_size_limit_is_413_and_saves_nothing(staff, settings):
    settings.DEBUG = False
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client = Client()
    client.force_login(staff)
    answer = client.post(
        "/admin/annotate/project/add/", {"name": "x" * 5000, "slug": "big", "redundancy": 3}
    )
    assert answer.status_code == 413
    page = answer.content.decode()
    assert "DATA_UPLOAD_MAX_MEMORY_SIZE" in page and "1,000 bytes" in page
    assert not Project.objects.exists()
    # Other bad requests keep Django's 400.
    assert client.get("/", HTTP_HOST="bad host").status_code == 400
