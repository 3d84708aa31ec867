"""The admin actions that call the reward model's services: rollback and cancel."""

import pytest
from django.urls import reverse

from rewardtrain.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def version(project, number, folder, active=False):
    folder.mkdir(parents=True, exist_ok=True)
    return ModelVersion.objects.create(
        project=project, version=number, path=str(folder), backbone="tiny", is_active=active
    )


def test_activate_action_rolls_back(admin_client, project, tmp_path):
    old = version(project, 1, tmp_path / "1")
    new = version(project, 2, tmp_path / "2", active=True)

    response = admin_client.post(
        reverse("admin:rewardtrain_modelversion_changelist"),
        {"action": "activate_version", "_selected_action": [old.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "is now active" in response.content.decode()
    old.refresh_from_db()
    new.refresh_from_db()
    assert old.is_active and not new.is_active


def test_activate_action_refuses_a_missing_folder(admin_client, project, tmp_path):
    gone = ModelVersion.objects.create(
        project=project, version=1, path=str(tmp_path / "gone"), backbone="tiny"
    )
    active = version(project, 2, tmp_path / "2", active=True)

    response = admin_client.post(
        reverse("admin:rewardtrain_modelversion_changelist"),
        {"action": "activate_version", "_selected_action": [gone.pk]},
        follow=True,
    )

    assert "folder is missing" in response.content.decode()
    active.refresh_from_db()
    assert active.is_active


def test_cancel_action(admin_client, project):
    run = TrainingRun.objects.create(project=project)

    admin_client.post(
        reverse("admin:rewardtrain_trainingrun_changelist"),
        {"action": "cancel_runs", "_selected_action": [run.pk]},
    )

    run.refresh_from_db()
    assert run.status == TrainingRun.Status.CANCELLED


def test_admin_pages_render(admin_client, project, tmp_path):
    version(project, 1, tmp_path / "1", active=True)
    TrainingRun.objects.create(project=project)

    for name in ("trainingrun", "modelversion", "evaluation"):
        assert admin_client.get(reverse(f"admin:rewardtrain_{name}_changelist")).status_code == 200
