"""add_labelers and seed_demo, run as management commands, then the rows they left."""

import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from annotate.models import Comparison, Membership, Pair, Project
from annotate.selectors.labeling import projects_for_labeler
from annotate.services.labeling import comparison_create, pair_lease_next

pytestmark = pytest.mark.django_db
User = get_user_model()


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_add_labelers_creates_accounts_and_memberships(project, labeler):
    out = run("add_labelers", "--project", "demo", "alice", "bob", "--password", "s3cret-pass")
    assert "alice: existing account, password unchanged; already on demo" in out
    assert "bob: created with the given password; added to demo" in out
    assert User.objects.get(username="bob").check_password("s3cret-pass")
    assert set(Membership.objects.values_list("user__username", flat=True)) == {"alice", "bob"}


def test_add_labelers_prints_a_generated_password(project):
    out = run("add_labelers", "--project", "demo", "carol")
    password = out.split("password: ", 1)[1].split(";", 1)[0]
    assert len(password) >= 12
    assert User.objects.get(username="carol").check_password(password)


def test_add_labelers_needs_an_existing_project(db):
    with pytest.raises(CommandError, match="No project"):
        run("add_labelers", "--project", "nope", "dave")


def test_seed_demo_refuses_with_debug_off(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="only with DEBUG=1"):
        run("seed_demo")
    assert not User.objects.exists() and not Project.objects.exists()


def test_seed_demo_is_idempotent_and_labelable(monkeypatch, settings):
    settings.DEBUG = True  # as make run sets it
    monkeypatch.delenv("DEMO_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("DEMO_LABELER_PASSWORD", raising=False)
    first = run("seed_demo")
    second = run("seed_demo")
    assert "admin / admin-demo-pass" in first and "labeler / labeler-demo-pass" in first
    made = re.search(
        r"'loop-demo': (\d+) pairs \(\1 added now\), (\d+) comparisons \(\2 added", first
    )
    assert made and int(made[2]) > 0
    assert "(0 added now)" in second
    # Three demo projects (demo, rank-demo, loop-demo), pairs and comparisons each.
    assert second.count("(0 added now)") == 6
    project = Project.objects.get(slug="demo")
    assert project.pair_count == Pair.objects.filter(project=project).count() >= 40
    admin = User.objects.get(username="admin")
    labeler = User.objects.get(username="labeler")
    assert admin.is_staff and admin.is_superuser and not labeler.is_staff
    assert labeler.check_password("labeler-demo-pass")
    # The demo has a multi-turn conversation and a response carrying script payloads.
    assert any(len(p.prompt.messages) > 2 for p in Pair.objects.select_related("prompt"))
    assert Pair.objects.filter(response_a__text__contains="<script>").exists() or (
        Pair.objects.filter(response_b__text__contains="<script>").exists()
    )
    lease = pair_lease_next(project=project, labeler=labeler)
    comparison_create(pair=lease.pair, labeler=labeler, choice="tie")
    assert Comparison.objects.filter(project=project).count() == 1
    mine = {p.project.slug: p.mine for p in projects_for_labeler(labeler=labeler)}
    assert mine == {"demo": 1, "loop-demo": 0, "rank-demo": 0}


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("short1", "too short"),
        ("password123", "too common"),
        ("84736291057", "entirely numeric"),
        ("bob-the-builder", "too similar to the username"),
    ],
)
def test_add_labelers_refuses_a_weak_password_and_creates_nothing(project, password, rule):
    with pytest.raises(CommandError, match=rule) as refused:
        run("add_labelers", "--project", "demo", "bob-the-builder", "--password", password)
    assert "Password refused for 'bob-the-builder'" in str(refused.value)
    assert "Nothing was created" in str(refused.value)
    assert not User.objects.filter(username="bob-the-builder").exists()
    assert Membership.objects.filter(project=project).count() == 1  # alice only


def test_seed_demo_refuses_a_weak_demo_password(monkeypatch, settings):
    settings.DEBUG = True
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "12345678")
    with pytest.raises(CommandError, match="Password refused for 'admin'.*DEMO_"):
        run("seed_demo")
    assert not User.objects.exists() and not Project.objects.exists()
