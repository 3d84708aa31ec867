"""Training runs and model versions through the services, on a tiny offline backbone."""

import math
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from annotate.models import Pair
from rewardtrain.core.config import ConfigError, TrainConfig
from rewardtrain.models import Evaluation, ModelVersion, TrainingRun
from rewardtrain.services import (
    mark_stale_runs_failed,
    rescore_pairs,
    run_cancel,
    run_create,
    run_execute,
    scorer_for,
    version_activate,
    version_evaluate,
)
from rewardtrain.services.runs import ranks_check
from tests.factories import ProjectFactory
from tests.rewardtrain.judged import add_judged_pairs, use_tiny_backbone
from tests.rewardtrain.tiny import make_bert

pytestmark = pytest.mark.django_db

Status = TrainingRun.Status
COMMAND = TrainingRun.Trigger.COMMAND


def train_once(project, **overrides):
    run, created = run_create(project=project, trigger=COMMAND, config_overrides=overrides)
    assert created
    return run_execute(run_id=run.pk)


def model_folders(project, settings):
    folder = Path(settings.MODELS_DIR) / project.slug
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_first_run_creates_an_active_version_with_metrics(judged, settings):
    run = train_once(judged)

    assert run.status == Status.SUCCEEDED, run.error
    version = ModelVersion.objects.get(project=judged)
    assert version.run == run
    assert (version.version, version.is_active) == (1, True)
    assert version.promotion["promoted"] is True
    assert version.promotion["compared_to"] is None
    assert version.promotion["reason"] == "no active model yet"
    assert version.metrics["n"] == 4
    assert 0.0 <= version.metrics["accuracy"] <= 1.0
    # 40 train pairs in batches of 8: 5 steps, validated at the last; then the refit on train +
    # validation (44 pairs) for that one epoch: 6 more.
    training = version.metrics["training"]
    assert (training["steps"], training["selected_step"], training["refit_steps"]) == (11, 5, 6)
    assert version.metrics["training"]["warm_start_from"] is None
    assert Path(version.path) == Path(settings.MODELS_DIR) / "demo" / "1"
    assert (Path(version.path) / "prefloop.json").is_file()
    assert model_folders(judged, settings) == ["1"]
    # The record of the run: what it trained on, how it went.
    assert run.snapshot["counts"] == {"train": 40, "validation": 4, "test": 4}
    assert len(run.snapshot["content_hash"]) == 64
    assert run.snapshot["both_bad"] == 0 and run.snapshot["truncated"] == 0
    assert run.config["backbone"] == judged.reward_backbone
    assert run.config["max_length"] == 48
    assert run.progress["step"] == run.progress["total"] == 11
    assert [h["step"] for h in run.loss_history] == list(range(1, 12))
    assert "val_loss" in run.loss_history[4]
    assert run.device == "cpu" and run.pairs_per_second > 0
    assert run.started_at <= run.heartbeat_at <= run.finished_at
    evaluation = Evaluation.objects.get(model_version=version)
    assert evaluation.kind == Evaluation.Kind.TRAINING
    assert evaluation.snapshot["total"] == 4


def test_second_run_is_compared_with_the_active_one_and_warm_started(judged):
    train_once(judged)
    run = train_once(judged, seed=1)

    assert run.status == Status.SUCCEEDED, run.error
    first, second = ModelVersion.objects.filter(project=judged).order_by("version")
    assert second.version == 2
    assert second.promotion["compared_to"] == 1
    assert second.metrics["training"]["warm_start_from"] == 1
    assert set(second.metrics["baseline"]) >= {"accuracy", "log_loss"}
    assert 0.0 <= second.metrics["flip_rate"] <= 1.0
    promoted = second.promotion["promoted"]
    new, old = second.metrics, second.metrics["baseline"]
    assert promoted is (
        new["log_loss"] < old["log_loss"] and new["accuracy"] >= old["accuracy"] - 0.01
    )
    assert second.promotion["reason"].startswith("promoted" if promoted else "not promoted")
    assert (second.is_active, first.is_active) == (promoted, not promoted)
    assert ModelVersion.objects.filter(project=judged, is_active=True).count() == 1


def test_run_execute_twice_is_harmless(judged):
    run = train_once(judged)
    again = run_execute(run_id=run.pk)

    assert again.status == Status.SUCCEEDED
    assert again.finished_at == run.finished_at
    assert ModelVersion.objects.filter(project=judged).count() == 1


def test_a_run_claimed_elsewhere_is_left_alone(judged):
    run, _ = run_create(project=judged, trigger=COMMAND)
    TrainingRun.objects.filter(pk=run.pk).update(status=Status.RUNNING)

    result = run_execute(run_id=run.pk)

    assert result.status == Status.RUNNING
    assert result.started_at is None
    assert not ModelVersion.objects.exists()


def test_run_create_twice_returns_the_active_run(judged, staff):
    first, created = run_create(project=judged, trigger=TrainingRun.Trigger.ADMIN)
    second, created_again = run_create(
        project=judged, trigger=TrainingRun.Trigger.THRESHOLD, requested_by=staff
    )

    assert created and not created_again
    assert second.pk == first.pk
    assert TrainingRun.objects.filter(project=judged).count() == 1
    assert first.comparison_count_at_start == 48


def test_run_create_after_the_last_run_ended_makes_a_new_one(judged):
    first, _ = run_create(project=judged, trigger=COMMAND)
    TrainingRun.objects.filter(pk=first.pk).update(status=Status.FAILED)

    second, created = run_create(project=judged, trigger=COMMAND)

    assert created and second.pk != first.pk


def test_run_create_refuses_unknown_settings(judged):
    with pytest.raises(ConfigError, match="unknown training setting"):
        run_create(project=judged, trigger=COMMAND, config_overrides={"epochz": 2})
    assert not TrainingRun.objects.exists()


def test_more_ranks_than_visible_gpus_is_refused_before_a_run_exists(judged, settings):
    cfg = TrainConfig(nproc=4, device="cuda")
    with pytest.raises(ConfigError, match=r"nproc=4 asks for more ranks than the 2 visible GPU"):
        ranks_check(cfg=cfg, visible_gpus=2)
    ranks_check(cfg=TrainConfig(nproc=2, device="cuda"), visible_gpus=2)
    ranks_check(cfg=TrainConfig(nproc=4), visible_gpus=0)  # CPU here: gloo ranks
    # Without GPUs here (a web server), a worker's GPUs are the worker's to count.
    ranks_check(cfg=TrainConfig(nproc=4, device="cuda"), visible_gpus=0)
    settings.TRAINING_NPROC = 3
    with pytest.raises(ConfigError, match="nproc=3"):
        ranks_check(cfg=TrainConfig(device="cuda"), visible_gpus=2)

    # A device naming one GPU has room for one rank, whatever this machine sees.
    settings.TRAINING_NPROC = 0
    settings.TRAINING_DEVICE = "cuda:0"
    with pytest.raises(ConfigError, match="device cuda:0 names one GPU"):
        run_create(project=judged, trigger=COMMAND, config_overrides={"nproc": 2})
    assert not TrainingRun.objects.exists()


def test_config_takes_project_settings_then_overrides_then_device(judged, settings):
    settings.TRAINING_DEVICE = "cpu"
    judged.training_config = {**judged.training_config, "epochs": 4, "device": "cuda"}
    judged.save()

    run, _ = run_create(project=judged, trigger=COMMAND, config_overrides={"batch_size": 2})

    assert run.config["epochs"] == 4
    assert run.config["batch_size"] == 2
    assert run.config["device"] == "cpu"
    assert run.config["backbone"] == judged.reward_backbone


def test_empty_backbone_falls_back_to_the_setting(project, settings):
    settings.REWARD_BACKBONE = "/models/site-default"

    run, _ = run_create(project=project, trigger=COMMAND)

    assert run.config["backbone"] == "/models/site-default"


def test_too_few_comparisons_fail_the_run_and_keep_the_active_model(judged, labeler, settings):
    train_once(judged)
    small = use_tiny_backbone(ProjectFactory(slug="small"), judged.reward_backbone)
    add_judged_pairs(small, labeler, 3)

    run = train_once(small)

    assert run.status == Status.FAILED
    assert run.error.startswith("Not enough data:")
    assert "0 test" in run.error
    assert run.finished_at is not None
    assert run.snapshot["counts"] == {"train": 3, "validation": 0, "test": 0}
    assert not ModelVersion.objects.filter(project=small).exists()
    assert ModelVersion.objects.get(project=judged).is_active


def test_no_validation_pair_fails_with_the_trainers_message(project, labeler, backbone):
    from annotate.selectors.dataset import preference_rows

    use_tiny_backbone(project, backbone)
    add_judged_pairs(project, labeler, 40)
    validation = [r["pair_id"] for r in preference_rows(project) if r["split"] == "validation"]
    Pair.objects.filter(pk__in=validation).delete()

    run = train_once(project)

    assert run.status == Status.FAILED
    assert run.error == (
        "Not enough data: need at least 2 training and 1 validation pairs, got 33 and 0"
    )


def test_a_broken_backbone_fails_the_run_and_keeps_the_active_model(judged, settings):
    train_once(judged)
    judged.reward_backbone = "/nonexistent/backbone"
    judged.save()

    run = train_once(judged)

    assert run.status == Status.FAILED
    assert run.error == "Backbone folder not found: /nonexistent/backbone"
    active = ModelVersion.objects.get(project=judged)
    assert active.is_active and active.version == 1
    # No half-written folder is left behind.
    assert model_folders(judged, settings) == ["1"]


def test_a_cancelled_run_stops_and_creates_nothing(judged, settings):
    run, _ = run_create(project=judged, trigger=COMMAND)
    # The request arrives as the worker picks the run up: the loop sees it before its first step.
    TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)

    run = run_execute(run_id=run.pk)

    assert run.status == Status.CANCELLED
    assert run.error == "Cancelled on request at step 0."
    assert run.finished_at is not None
    assert not ModelVersion.objects.exists()
    assert model_folders(judged, settings) == []


def test_run_cancel_of_a_queued_run_is_immediate(judged):
    run, _ = run_create(project=judged, trigger=COMMAND)

    run = run_cancel(run=run)
    again = run_execute(run_id=run.pk)

    assert run.status == Status.CANCELLED
    assert again.status == Status.CANCELLED and again.started_at is None


def test_run_cancel_of_a_running_run_sets_the_flag(judged):
    run, _ = run_create(project=judged, trigger=COMMAND)
    TrainingRun.objects.filter(pk=run.pk).update(status=Status.RUNNING)

    run = run_cancel(run=run)

    assert run.status == Status.RUNNING and run.cancel_requested


def test_stale_running_runs_are_marked_failed(labeler):
    now = timezone.now()
    stale_project, fresh_project, queued_project = ProjectFactory.create_batch(3)
    stale = TrainingRun.objects.create(
        project=stale_project,
        status=Status.RUNNING,
        started_at=now - timedelta(minutes=30),
        heartbeat_at=now - timedelta(minutes=10),
    )
    fresh = TrainingRun.objects.create(
        project=fresh_project,
        status=Status.RUNNING,
        started_at=now - timedelta(minutes=30),
        heartbeat_at=now - timedelta(seconds=30),
    )
    queued = TrainingRun.objects.create(project=queued_project)

    count = mark_stale_runs_failed(now=now, timeout_seconds=180)

    assert count == 1
    for run in (stale, fresh, queued):
        run.refresh_from_db()
    assert stale.status == Status.FAILED
    assert stale.error == "Worker lost: no heartbeat for more than 180 s."
    assert stale.finished_at == now
    assert fresh.status == Status.RUNNING
    assert queued.status == Status.QUEUED
    assert mark_stale_runs_failed(now=now, timeout_seconds=180) == 0


def test_rescore_pairs_stores_the_active_models_view(judged, labeler):
    assert rescore_pairs(project=judged) == 0
    train_once(judged)
    open_pairs = add_judged_pairs(judged, labeler, 3, start=100)
    Pair.objects.filter(project=judged).exclude(pk__in=[p.pk for p in open_pairs]).update(
        is_open=False
    )

    count = rescore_pairs(project=judged)

    assert count == 3
    scorer = scorer_for(version=ModelVersion.objects.get(project=judged))
    for pair in Pair.objects.filter(pk__in=[p.pk for p in open_pairs]).select_related(
        "prompt", "response_a", "response_b"
    ):
        r_a, r_b = scorer.score(
            [pair.prompt.messages] * 2, [pair.response_a.text, pair.response_b.text]
        )
        p = 1 / (1 + math.exp(r_b - r_a))
        assert pair.model_p_a == pytest.approx(p, abs=1e-6)
        entropy = -(p * math.log2(p) + (1 - p) * math.log2(1 - p))
        assert pair.model_uncertainty == pytest.approx(entropy, abs=1e-6)
    assert not Pair.objects.filter(is_open=False, model_p_a__isnull=False).exists()


def test_rollback_activates_an_older_version(judged):
    train_once(judged)
    train_once(judged, seed=1)
    first, second = ModelVersion.objects.filter(project=judged).order_by("version")
    version_activate(version=second)

    version_activate(version=first)

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.is_active and not second.is_active


def test_activating_a_version_whose_folder_is_gone_is_refused(judged):
    import shutil

    train_once(judged)
    train_once(judged, seed=1)
    first, second = ModelVersion.objects.filter(project=judged).order_by("version")
    active_before = ModelVersion.objects.get(project=judged, is_active=True)
    shutil.rmtree(first.path)

    with pytest.raises(ValueError, match="folder is missing"):
        version_activate(version=first)
    assert ModelVersion.objects.get(project=judged, is_active=True) == active_before


def test_version_evaluate_uses_the_current_test_split(judged, labeler):
    train_once(judged)
    version = ModelVersion.objects.get(project=judged)
    # Prompts 48..71 add pairs to every split, the test split included.
    add_judged_pairs(judged, labeler, 24, start=48)

    evaluation = version_evaluate(version=version, kind=Evaluation.Kind.PERIODIC)

    assert evaluation.kind == Evaluation.Kind.PERIODIC
    assert evaluation.snapshot["total"] == evaluation.metrics["n"]
    assert evaluation.metrics["n"] > 4
    assert (
        evaluation.snapshot["content_hash"]
        != version.evaluations.get(kind="training").snapshot["content_hash"]
    )


def test_scorer_cache_loads_a_version_once(judged):
    train_once(judged)
    version = ModelVersion.objects.get(project=judged)

    assert scorer_for(version=version) is scorer_for(version=version)


def test_warm_start_off_trains_from_the_backbone_and_is_still_compared(judged):
    first = train_once(judged, seed=1)
    cold = train_once(judged, seed=1, warm_start=False)
    warm = train_once(judged, seed=1)

    loss = {
        name: ModelVersion.objects.get(run=run).metrics["training"]["best_val_loss"]
        for name, run in (("first", first), ("cold", cold), ("warm", warm))
    }
    cold_version = ModelVersion.objects.get(run=cold)
    assert cold_version.metrics["training"]["warm_start_from"] is None
    assert cold_version.promotion["compared_to"] == 1
    # The same seed and rows from the backbone: the first run's training, to the digit; a
    # warm start begins elsewhere.
    assert loss["cold"] == loss["first"] and loss["warm"] != loss["first"]
    assert ModelVersion.objects.get(run=warm).metrics["training"]["warm_start_from"] is not None


def test_a_different_backbone_trains_from_scratch(judged, tmp_path):
    train_once(judged)
    judged.reward_backbone = str(make_bert(tmp_path / "other-bert", hidden=32, seed=1))
    judged.save()

    run = train_once(judged)

    assert run.status == Status.SUCCEEDED, run.error
    second = ModelVersion.objects.get(run=run)
    assert second.metrics["training"]["warm_start_from"] is None
    assert second.backbone == judged.reward_backbone
    assert second.promotion["compared_to"] == 1


def test_an_unexpected_error_fails_the_run_and_keeps_the_active_model(judged, labeler, settings):
    train_once(judged)
    # Inputs longer than the tiny model's 128 positions break inside the model itself.
    add_judged_pairs(judged, labeler, 1, start=200)
    pair = judged.pairs.order_by("-id").first()
    long_text = " ".join(["w1"] * 300)
    type(pair.response_a).objects.filter(pk=pair.response_a_id).update(text=long_text)

    run = train_once(judged, max_length=400)

    assert run.status == Status.FAILED
    assert run.error.startswith("RuntimeError: The expanded size of the tensor")
    assert run.finished_at is not None
    assert ModelVersion.objects.get(project=judged).is_active
    assert model_folders(judged, settings) == ["1"]
