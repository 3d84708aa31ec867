"""The staff training page without a worker: what it shows of runs and versions, the SVG
chart, rollback by activating an older version, and who may see it."""

from __future__ import annotations

import json

import pytest
import redis

from annotate.services.catalog import pair_get_or_create
from rewardtrain.models import Evaluation, ModelVersion, TrainingRun
from tests.factories import ResponseFactory, make_pair
from tests.rewardtrain.queue_helpers import broker  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def versions(project, tmp_path):
    """v1 (active) and v2 (not promoted), each with a folder and a training evaluation; v1
    re-evaluated once since."""
    made = []
    for number, accuracy, loss in ((1, 0.8, 0.45), (2, 0.78, 0.5)):
        folder = tmp_path / f"v{number}"
        folder.mkdir()
        run = TrainingRun.objects.create(project=project, status="succeeded")
        version = ModelVersion.objects.create(
            project=project,
            run=run,
            version=number,
            path=str(folder),
            backbone="tiny",
            metrics={"accuracy": accuracy, "log_loss": loss, "n": 40},
            is_active=number == 1,
            promotion={"promoted": number == 1, "reason": f"reason for v{number}"},
        )
        Evaluation.objects.create(model_version=version, kind="training", metrics=version.metrics)
        made.append(version)
    Evaluation.objects.create(
        model_version=made[0], kind="periodic", metrics={"accuracy": 0.75, "log_loss": 0.52}
    )
    return made


def test_page_shows_versions_chart_and_runs(client, staff, project, versions):
    client.force_login(staff)
    html = client.get(f"/projects/{project.slug}/training/").content.decode()
    assert "Retrain now" in html
    assert '<tr data-version="1" class="active">' in html
    assert "reason for v2" in html
    # v2 can be activated; v1 is the active one and has no button.
    assert f"/projects/{project.slug}/training/versions/2/activate/" in html
    assert f"/projects/{project.slug}/training/versions/1/activate/" not in html
    # Re-evaluation figures beside the ones at training.
    assert "0.750 / 0.520" in html
    # The chart: one marker per evaluation and series, hollow for the re-evaluation.
    assert html.count('data-series="accuracy"') == 3
    assert html.count('data-series="log_loss"') == 3
    assert 'fill="white" data-series="accuracy"><title>v1 re-evaluation: accuracy 0.750' in html


def test_page_lists_runs_in_progress_counts_and_the_queue_order(client, staff, project):
    failed = TrainingRun.objects.create(project=project, status="failed")
    ran = TrainingRun.objects.create(project=project, status="running")
    first, second = make_pair(project, priority=0.2), make_pair(project, priority=0.9)
    third = ResponseFactory(prompt=second.prompt)
    pair_get_or_create(
        project=project,
        prompt=second.prompt,
        first=second.response_a,
        second=third,
        added_by_model=True,
    )
    client.force_login(staff)

    html = client.get(f"/projects/{project.slug}/training/").content.decode()

    # "Recent runs" lists the run still in progress, beside finished ones.
    assert f'<tr data-run="{ran.pk}">' in html and f'<tr data-run="{failed.pk}">' in html
    assert 'data-status="running">Running</span>' in html
    # The counts say where the pairs came from.
    assert "on 3 pairs" in html and "(2 imported, " in html and "1 added by model pairing" in html
    # The queue in the order leasing serves it.
    assert html.index(f'<tr data-pair="{second.pk}">') < html.index(f'<tr data-pair="{first.pk}">')


def test_activating_an_older_version_rolls_back_and_queues_a_rescore(
    client,
    staff,
    project,
    versions,
    broker,  # noqa: F811
):
    client.force_login(staff)
    response = client.post(f"/projects/{project.slug}/training/versions/2/activate/", follow=True)
    assert "Version 2 is now the active model." in response.content.decode()
    assert list(ModelVersion.objects.filter(is_active=True).values_list("version", flat=True)) == [
        2
    ]
    # The open pairs get the rolled-back model's view, as after a promotion.
    message = json.loads(redis.Redis.from_url(broker).lpop("default"))
    assert message["headers"]["task"] == "rewardtrain.rescore_pairs"
    assert message["headers"]["argsrepr"] == f"[{project.pk}, False]"


def test_activating_a_version_whose_folder_is_gone_says_so(client, staff, project, versions):
    versions[1].path = "/nowhere/at/all"
    versions[1].save()
    client.force_login(staff)
    response = client.post(f"/projects/{project.slug}/training/versions/2/activate/", follow=True)
    assert "Version 2 was not activated" in response.content.decode()
    assert ModelVersion.objects.get(is_active=True).version == 1


def test_run_error_and_untrusted_text_are_escaped(client, staff, project):
    TrainingRun.objects.create(project=project, status="failed", error="<script>alert(1)</script>")
    client.force_login(staff)
    html = client.get(f"/projects/{project.slug}/training/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_page_is_for_staff_only(client, labeler, project):
    client.force_login(labeler)
    response = client.get(f"/projects/{project.slug}/training/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    assert client.post(f"/projects/{project.slug}/training/retrain/").status_code == 302
    assert TrainingRun.objects.count() == 0


def test_page_shows_how_a_run_trained(client, staff, project):
    TrainingRun.objects.create(
        project=project,
        status="running",
        world_size=2,
        lora_r=8,
        trainable_params=4_000_000,
        total_params=500_000_000,
        tokens_per_s=12_345.6,
        mfu=0.412,
        peak_memory_gb=[30.5, 31.0],
    )
    client.force_login(staff)
    html = client.get(f"/projects/{project.slug}/training/").content.decode()
    assert (
        "2 ranks · LoRA r=8 · 4,000,000 of 500,000,000 parameters trained (0.8%) · "
        "12,346 tokens/s · MFU 41.2% · peak 30.5 / 31.0 GB"
    ) in html


def test_the_live_loss_chart_is_the_server_svg_of_the_run_curve(client, staff, project):
    history = [{"step": 1, "loss": 0.7}, {"step": 2, "loss": 0.6}, {"step": 3, "loss": 0.65}]
    run = TrainingRun.objects.create(project=project, status="running", loss_history=history)
    client.force_login(staff)
    url = f"/projects/{project.slug}/training/loss-chart/"

    response = client.get(url, {"run": run.pk})

    assert response["Content-Type"] == "image/svg+xml"
    chart = response.content.decode()
    assert chart.startswith('<svg xmlns="http://www.w3.org/2000/svg" id="loss-curve"')
    assert 'points="48.0,8.0 340.0,26.9 632.0,17.4"' in chart
    # The page opens with the same chart, which its script then swaps for fresh copies.
    assert chart in client.get(f"/projects/{project.slug}/training/").content.decode()
    assert client.get(url, {"run": "x"}).status_code == 400
    assert client.get(url, {"run": run.pk + 1}).status_code == 404
