"""Records of the reward model's life: training runs, the versions they produce, evaluations."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotate.models import Project


class TrainingRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        THRESHOLD = "threshold", "New comparisons"
        ADMIN = "admin", "Admin"
        COMMAND = "command", "Command"

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

    project = models.ForeignKey(
        "annotate.Project", on_delete=models.CASCADE, related_name="training_runs"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.ADMIN)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    config = models.JSONField(default=dict, blank=True)
    # Exactly what was trained on: counts per split and a content hash.
    snapshot = models.JSONField(default=dict, blank=True)
    # {"step", "total", "loss", "pairs_per_second", "epoch"}: the latest report.
    progress = models.JSONField(default=dict, blank=True)
    loss_history = models.JSONField(default=list, blank=True)
    pairs_per_second = models.FloatField(null=True, blank=True)
    device = models.CharField(max_length=50, blank=True)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    celery_task_id = models.CharField(max_length=100, blank=True)
    # Comparisons in the project when the run was queued: the baseline for the next threshold.
    comparison_count_at_start = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Written by the worker while it trains; a stale heartbeat means the worker died.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # How it trained: ranks (processes) in all, LoRA rank (null = full fine-tuning), the
    # parameters trained and in all, tokens per second over all ranks; on CUDA also the model
    # FLOPs utilisation and each device's peak memory (GB).
    world_size = models.PositiveIntegerField(null=True, blank=True)
    lora_r = models.PositiveIntegerField(null=True, blank=True)
    trainable_params = models.BigIntegerField(null=True, blank=True)
    total_params = models.BigIntegerField(null=True, blank=True)
    tokens_per_s = models.FloatField(null=True, blank=True)
    mfu = models.FloatField(null=True, blank=True)
    peak_memory_gb = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # At most one queued or running run per project, enforced by the database.
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(status__in=["queued", "running"]),
                name="one_active_run_per_project",
            ),
        ]

    def __str__(self) -> str:
        return f"Run {self.pk} of {self.project} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES


class ModelVersion(models.Model):
    project = models.ForeignKey(
        "annotate.Project", on_delete=models.CASCADE, related_name="model_versions"
    )
    run = models.OneToOneField(
        TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="model_version"
    )
    version = models.PositiveIntegerField()
    path = models.CharField(max_length=1000)
    backbone = models.CharField(max_length=500)
    metrics = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=False)
    # {"promoted": bool, "reason": str, "compared_to": version or None}
    promotion = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        # Given to the accounts of RL trainers that call the reward server (serve_rewards).
        permissions = [("may_score", "May score with the reward server")]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="model_version_unique"),
            models.UniqueConstraint(
                fields=["project"], condition=Q(is_active=True), name="one_active_model"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} v{self.version}"


class Evaluation(models.Model):
    """Figures of one model version on one test split, at training time or later."""

    class Kind(models.TextChoices):
        TRAINING = "training", "At training"
        PERIODIC = "periodic", "Re-evaluation"
        MANUAL = "manual", "Manual"

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="evaluations"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.TRAINING)
    snapshot = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Evaluation of {self.model_version} ({self.kind})"


class ProjectTraining(Project):
    """A Project as the reward model's admin lists it, with the "Retrain now" action: a proxy
    (no table of its own), so that annotate's ProjectAdmin stays annotate's."""

    class Meta:
        proxy = True
        verbose_name = "project training"
        verbose_name_plural = "project training"


class RoundScore(models.Model):
    """A model version's mean reward of one round's samples. A round is one generation job
    (annotate.GenerationJob) from the policy's endpoints: the training page charts, round by
    round, how the active reward model rates what the policy now writes."""

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="round_scores"
    )
    job = models.ForeignKey(
        "annotate.GenerationJob", on_delete=models.CASCADE, related_name="round_scores"
    )
    samples = models.PositiveIntegerField()
    mean_reward = models.FloatField(null=True, blank=True)
    computed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["model_version", "job"], name="round_score_unique")
        ]

    def __str__(self) -> str:
        return f"{self.model_version} on round {self.job_id}: {self.mean_reward}"
