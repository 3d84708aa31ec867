"""The reward model's management commands, called as a person would (call_command)."""

import json
import math
from io import StringIO
from pathlib import Path

import pytest
import redis
from django.core.management import CommandError, call_command

from annotate.services.demo import LOOP_TRAINING_CONFIG, demo_seed
from rewardtrain.models import Evaluation, ModelVersion, TrainingRun
from rewardtrain.services import run_create, run_execute, scorer_for
from tests.factories import ProjectFactory
from tests.rewardtrain.judged import add_judged_pairs, use_tiny_backbone
from tests.rewardtrain.queue_helpers import broker  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def trained(judged):
    run, _ = run_create(project=judged, trigger=TrainingRun.Trigger.COMMAND)
    assert run_execute(run_id=run.pk).status == TrainingRun.Status.SUCCEEDED
    return judged


def call(*args, **options):
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


# --- train_reward_model ---


def test_train_reward_model_trains_and_reports(judged):
    out, err = call(
        "train_reward_model", "--project", "demo", "--epochs", "2", "--batch-size", "10"
    )

    run = TrainingRun.objects.get(project=judged)
    version = ModelVersion.objects.get(project=judged)
    assert run.trigger == TrainingRun.Trigger.COMMAND
    assert (run.config["epochs"], run.config["batch_size"]) == (2, 10)
    # 8 steps, then the refit on 44 pairs for the chosen 1 or 2 epochs (5 steps an epoch).
    refit_steps = version.metrics["training"]["refit_steps"]
    assert refit_steps in (5, 10) and run.progress["total"] == 8 + refit_steps
    assert f"Run {run.pk} succeeded on cpu" in out
    assert "Data: 40 train, 4 validation, 4 test pairs" in out
    assert f"the model is the refit on train + validation ({refit_steps} steps)" in out
    assert f"Model version 1: {version.path}" in out
    assert f"Test accuracy {version.metrics['accuracy']:.3f}" in out
    assert "Promotion: no active model yet" in out
    # Not a terminal: the bar prints a line per tenth of the run, ending at the last step.
    assert f"step {8 + refit_steps}/{8 + refit_steps}" in err.splitlines()[-1]
    assert version.is_active


def test_train_reward_model_no_warm_start_trains_from_the_backbone(trained):
    call("train_reward_model", "--project", "demo", "--epochs", "1", "--no-warm-start")
    call("train_reward_model", "--project", "demo", "--epochs", "1")

    cold, warm = TrainingRun.objects.filter(project=trained).order_by("pk")[1:]
    assert (cold.config["warm_start"], warm.config["warm_start"]) == (False, True)
    started_from = {
        run.pk: ModelVersion.objects.get(run=run).metrics["training"]["warm_start_from"]
        for run in (cold, warm)
    }
    assert started_from[cold.pk] is None and started_from[warm.pk] is not None


def test_train_reward_model_fails_with_the_error_text(labeler, backbone):
    small = use_tiny_backbone(ProjectFactory(slug="small"), backbone)
    add_judged_pairs(small, labeler, 3)

    with pytest.raises(
        CommandError, match=r"run \d+ failed: Not enough data: no pairs in the test"
    ):
        call("train_reward_model", "--project", "small")
    assert TrainingRun.objects.get(project=small).status == TrainingRun.Status.FAILED


def test_train_reward_model_refuses_a_second_active_run(judged):
    run, _ = run_create(project=judged, trigger=TrainingRun.Trigger.SCHEDULE)

    with pytest.raises(CommandError, match=f"run {run.pk} of demo is already queued"):
        call("train_reward_model", "--project", "demo")


def test_train_reward_model_rejects_bad_settings_and_projects(judged):
    with pytest.raises(CommandError, match="epochs must be at least 1"):
        call("train_reward_model", "--project", "demo", "--epochs", "0")
    with pytest.raises(CommandError, match="no project with slug 'nope'"):
        call("train_reward_model", "--project", "nope")
    assert not TrainingRun.objects.exists()


def test_train_reward_model_refuses_more_ranks_than_the_device_has_before_a_run(judged, settings):
    settings.TRAINING_DEVICE = "cuda:0"
    with pytest.raises(CommandError, match="device cuda:0 names one GPU, so nproc=2 cannot"):
        call("train_reward_model", "--project", "demo", "--nproc", "2")
    assert not TrainingRun.objects.exists()


def test_train_reward_model_backbone_flag(judged):
    with pytest.raises(CommandError, match="Backbone folder not found: /no/such/model"):
        call("train_reward_model", "--project", "demo", "--backbone", "/no/such/model")


# --- evaluate_reward_model ---


def test_evaluate_reward_model_prints_the_active_versions_metrics(trained):
    out, _ = call("evaluate_reward_model", "--project", "demo")

    evaluation = Evaluation.objects.get(kind=Evaluation.Kind.MANUAL)
    assert evaluation.model_version.version == 1
    assert out.startswith("Version 1 of demo on 4 test pairs (snapshot ")
    accuracy = next(line for line in out.splitlines() if line.split()[0] == "accuracy")
    assert accuracy.split()[1] == f"{evaluation.metrics['accuracy']:.4f}"
    assert any(line.split()[0] == "log_loss" for line in out.splitlines())


def test_evaluate_reward_model_by_version_and_its_errors(trained, project):
    out, _ = call("evaluate_reward_model", "--project", "demo", "--version", "1")
    assert out.startswith("Version 1 of demo")
    with pytest.raises(CommandError, match="project demo has no version 7"):
        call("evaluate_reward_model", "--project", "demo", "--version", "7")
    ProjectFactory(slug="empty")
    with pytest.raises(CommandError, match="project empty has no active model"):
        call("evaluate_reward_model", "--project", "empty")


# --- score_pairs ---


def test_score_pairs_adds_rewards_to_each_row(trained, tmp_path):
    # One shape per file, as import_pairs reads it (tests/rewardtrain/services/
    # test_pairs_file.py scores every shape).
    rows = [
        {"prompt": "w1 w2", "response_a": "good w3", "response_b": "bad w4", "id": "x1"},
        {
            "prompt": [{"role": "user", "content": "w5 w6"}],
            "response_a": "bad w7",
            "response_b": "good w8",
            "meta": {"k": 1},
        },
    ]
    source = write_jsonl(tmp_path / "pairs.jsonl", [rows[0], "", rows[1]])
    target = tmp_path / "scored.jsonl"

    out, _ = call("score_pairs", str(source), "--project", "demo", "--out", str(target))

    assert out.strip() == f"Scored 2 rows into {target}"
    scored = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(scored) == 2
    scorer = scorer_for(version=ModelVersion.objects.get(project=trained))
    expected_a = scorer.score(["w1 w2", rows[1]["prompt"]], ["good w3", "bad w7"])
    expected_b = scorer.score(["w1 w2", rows[1]["prompt"]], ["bad w4", "good w8"])
    for original, row, ra, rb in zip(rows, scored, expected_a, expected_b, strict=True):
        assert {k: row[k] for k in original} == original
        assert row["reward_a"] == pytest.approx(ra, abs=1e-5)
        assert row["reward_b"] == pytest.approx(rb, abs=1e-5)
        assert row["p_a_better"] == pytest.approx(1 / (1 + math.exp(rb - ra)), abs=1e-6)


def test_score_pairs_with_a_model_folder_needs_no_project(trained, tmp_path):
    version = ModelVersion.objects.get(project=trained)
    source = write_jsonl(
        tmp_path / "p.jsonl", [{"prompt": "w1", "chosen": "good", "rejected": "bad"}]
    )
    target = tmp_path / "out.jsonl"

    call("score_pairs", str(source), "--model", version.path, "--out", str(target))

    (row,) = [json.loads(line) for line in target.read_text().splitlines()]
    assert set(row) == {"prompt", "chosen", "rejected", "reward_a", "reward_b", "p_a_better"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "line 2: is not valid JSON"),
        ('{"prompt": "w1", "response_a": "x"}', "line 2: chosen is missing"),
        ('{"prompt": 5, "chosen": "x", "rejected": "y"}', "line 2: prompt must be a list of"),
        ('["w1", "x", "y"]', "line 2: is not a JSON object"),
    ],
)
def test_score_pairs_names_the_bad_line(trained, tmp_path, line, message):
    good = {"prompt": "w1", "chosen": "good", "rejected": "bad"}
    source = write_jsonl(tmp_path / "p.jsonl", [good, line, good])
    target = tmp_path / "out.jsonl"

    with pytest.raises(CommandError, match=message):
        call("score_pairs", str(source), "--project", "demo", "--out", str(target))
    # Nothing half-written is left.
    assert sorted(p.name for p in tmp_path.glob("*.jsonl*")) == ["p.jsonl"]
    assert not (tmp_path / ".out.jsonl.partial").exists()


def test_score_pairs_errors(judged, tmp_path):
    source = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "w1", "chosen": "a", "rejected": "b"}])
    out = str(tmp_path / "out.jsonl")

    with pytest.raises(CommandError, match="file not found: .*missing.jsonl"):
        call("score_pairs", str(tmp_path / "missing.jsonl"), "--project", "demo", "--out", out)
    with pytest.raises(CommandError, match="project demo has no active model"):
        call("score_pairs", str(source), "--project", "demo", "--out", out)
    with pytest.raises(CommandError, match="model folder not found"):
        call("score_pairs", str(source), "--model", str(tmp_path / "nope"), "--out", out)
    with pytest.raises(CommandError, match="give --project SLUG"):
        call("score_pairs", str(source), "--out", out)


def test_train_reward_model_with_lora_on_a_decoder_records_how_it_trained(
    project, labeler, tmp_path
):
    from tests.rewardtrain.tiny import make_llama

    use_tiny_backbone(
        project, str(make_llama(tmp_path / "llama", hidden=64)), device="cpu", bf16=False
    )
    add_judged_pairs(project, labeler, 48)
    out, _ = call(
        "train_reward_model",
        "--project",
        "demo",
        "--lora-r",
        "4",
        "--nproc",
        "1",
        "--gradient-checkpointing",
    )

    run = TrainingRun.objects.get(project=project)
    assert (run.config["lora_r"], run.config["nproc"], run.config["gradient_checkpointing"]) == (
        4,
        1,
        True,
    )
    assert (run.world_size, run.lora_r) == (1, 4)
    assert 0 < run.trainable_params <= 0.1 * run.total_params
    assert run.tokens_per_s > 0 and run.mfu is None and run.peak_memory_gb is None
    assert f"1 rank(s), LoRA r=4: {run.trainable_params:,} of {run.total_params:,}" in out
    version = ModelVersion.objects.get(project=project)
    meta = json.loads((Path(version.path) / "prefloop.json").read_text())
    assert meta["metrics"]["lora_r"] == 4
    assert meta["metrics"]["total_params"] == run.total_params
    assert meta["metrics"]["gradient_checkpointing"] is True
    assert (Path(version.path) / "adapter" / "adapter_config.json").exists()


def test_train_reward_model_refuses_a_negative_lora_rank(judged):
    with pytest.raises(CommandError, match="lora_r and nproc must be 0 or more"):
        call("train_reward_model", "--project", "demo", "--lora-r", "-1")
    assert not TrainingRun.objects.filter(project=judged).exists()


# --- retrain_due ---


def test_retrain_due_queues_the_loop_demos_first_run_once(
    broker,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    """What make run does after seeding: the loop demo (auto-retrain on, hundreds of new
    labels) gets one run, with the bundled MiniLM and the demo's small settings."""
    project = demo_seed(admin_password="a-pass", labeler_password="l-pass").loop
    with django_capture_on_commit_callbacks(execute=True):
        out, _ = call("retrain_due")
    run = TrainingRun.objects.get()
    assert (
        out
        == f"Training run {run.pk} queued for loop-demo (new comparisons): the worker trains it.\n"
    )
    assert run.project == project and run.status == TrainingRun.Status.QUEUED
    assert run.celery_task_id and run.trigger == TrainingRun.Trigger.THRESHOLD
    assert run.config["backbone"] == ""
    assert {k: run.config[k] for k in LOOP_TRAINING_CONFIG} == LOOP_TRAINING_CONFIG
    assert redis.Redis.from_url(broker).llen("training") == 1

    with django_capture_on_commit_callbacks(execute=True):
        out, _ = call("retrain_due")
    assert out == "No project is due for training.\n"
    assert TrainingRun.objects.count() == 1
    assert redis.Redis.from_url(broker).llen("training") == 1
