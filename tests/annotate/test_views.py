"""The home page, the labeling page and the instructions page, as a logged-in labeler."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotate.models import Project
from annotate.services.labeling import comparison_create, pair_lease_next
from tests.factories import ProjectFactory, make_pair

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser_client(client, labeler):
    client.force_login(labeler)
    return client


def test_home_lists_the_labelers_projects_with_their_progress(browser_client, project, labeler):
    ProjectFactory(name="Someone else's", slug="elsewhere")
    for _ in range(3):
        make_pair(project)
    lease = pair_lease_next(project=project, labeler=labeler)
    comparison_create(pair=lease.pair, labeler=labeler, choice="a")
    response = browser_client.get("/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Demo" in page and "Someone else" not in page
    assert '<td class="mine">1</td>' in page
    assert "1 / 3" in page and "/projects/demo/label/" in page


def test_home_costs_the_same_queries_whatever_the_data(browser_client, project, labeler):
    make_pair(project)
    with CaptureQueriesContext(connection) as small:
        browser_client.get("/")
    for _ in range(20):
        make_pair(project)
    for i in range(5):
        other = ProjectFactory(slug=f"extra-{i}")
        other.memberships.create(user=labeler)
    with CaptureQueriesContext(connection) as large:
        browser_client.get("/")
    assert len(large.captured_queries) == len(small.captured_queries)


def test_label_page_shows_the_scale_and_instructions(browser_client, project):
    Project.objects.filter(pk=project.pk).update(
        allow_both_bad=False,
        ask_strength=True,
        reason_tags=["clearer"],
        instructions="Prefer **correct** answers. <script>x()</script>",
    )
    page = browser_client.get("/projects/demo/label/").content.decode()
    assert 'data-choice="tie"' in page and 'data-choice="both_bad"' not in page
    assert "slightly better" in page and 'data-reason="clearer"' in page
    assert "<strong>correct</strong>" in page
    assert "<script>x()" not in page and "&lt;script&gt;x()" in page
    assert "annotate/label.js" in page


def test_instructions_page(browser_client, project):
    Project.objects.filter(pk=project.pk).update(instructions="# Rules\n\nBe *kind*.")
    page = browser_client.get("/projects/demo/instructions/").content.decode()
    assert "<h1>Rules</h1>" in page and "<em>kind</em>" in page


def test_home_gives_staff_the_management_links_and_labelers_none(client, staff, labeler, project):
    client.force_login(staff)
    body = client.get("/").content.decode()
    for page in ("training", "quality", "review", "import", "export"):
        assert f"/projects/{project.slug}/{page}/" in body
    client.force_login(labeler)
    body = client.get("/").content.decode()
    assert f"/projects/{project.slug}/label/" in body
    assert f"/projects/{project.slug}/training/" not in body
