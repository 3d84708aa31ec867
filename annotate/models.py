"""The labeling domain: Project, Prompt, Response, Pair, Comparison, and who may label what.

Business rules live in services.py (writes) and selectors.py (reads); these classes only
declare the data and the constraints the database enforces.
"""

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

# New rows' random keys come from this module's own generator, so that a seeded run (the loop
# demo's simulated labelers) can make them repeatable: see random_keys_seeded.
_random_keys = random.Random()


def new_random_key() -> float:
    return _random_keys.random()


@contextmanager
def random_keys_seeded(seed: int) -> Iterator[None]:
    """Inside the block, new rows' random keys are drawn from `seed`; the generator's state is
    restored after."""
    state = _random_keys.getstate()
    _random_keys.seed(seed)
    try:
        yield
    finally:
        _random_keys.setstate(state)


class Choice(models.TextChoices):
    """A judgment, canonical by response: "a" means the pair's response_a is better."""

    A = "a", "A better"
    B = "b", "B better"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both bad"


class Side(models.TextChoices):
    """Which of the pair's responses was shown on the left of the screen."""

    A = "a", "A on the left"
    B = "b", "B on the left"


class Selection(models.TextChoices):
    RANDOM = "random", "Random"
    UNCERTAINTY = "uncertainty", "Uncertainty"
    MIXED = "mixed", "Uncertainty with a random share"


class Aggregation(models.TextChoices):
    """How a pair's votes become its label (annotate.quality.aggregation)."""

    MAJORITY = "majority", "Majority vote"
    DAWID_SKENE = "dawid_skene", "Dawid-Skene"
    GLAD = "glad", "GLAD"
    MACE = "mace", "MACE"


# The default 4-level strength scale; projects can rename the levels.
DEFAULT_STRENGTH_LABELS = ["slightly better", "better", "clearly better", "much better"]


class TaskKind(models.TextChoices):
    """What a project's labelers are asked: a pair at a time, or K responses of one prompt to
    rank, to rate on the project's aspects, or both in one task (as UltraFeedback and
    Open-Assistant collect them)."""

    PAIRWISE = "pairwise", "Pairwise"
    RANKING = "ranking", "Ranking"
    RATING = "rating", "Rating"
    RANKING_RATING = "ranking_rating", "Ranking and rating"


# HelpSteer2's five attributes on its 0-4 scale, described after its annotation guidelines.
DEFAULT_ASPECTS = [
    {
        "name": "helpfulness",
        "description": "How well the response meets the prompt's request, overall.",
        "min": 0,
        "max": 4,
    },
    {
        "name": "correctness",
        "description": "Every relevant fact included, and no errors or made-up claims.",
        "min": 0,
        "max": 4,
    },
    {
        "name": "coherence",
        "description": "Clear and logically consistent, without contradictions or rambling.",
        "min": 0,
        "max": 4,
    },
    {
        "name": "complexity",
        "description": "The expertise needed to write it: 0 anyone, 4 a domain expert.",
        "min": 0,
        "max": 4,
    },
    {
        "name": "verbosity",
        "description": "Length and detail relative to what the prompt asks: 0 terse, 4 wordy.",
        "min": 0,
        "max": 4,
    },
]


def default_aspects() -> list[dict]:
    return [dict(aspect) for aspect in DEFAULT_ASPECTS]


class Project(models.Model):
    """A labeling campaign: its pairs, its label scale, who labels, how its reward model trains."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    instructions = models.TextField(blank=True, help_text="Markdown shown to labelers.")
    redundancy = models.PositiveSmallIntegerField(
        default=1, help_text="How many distinct labelers judge each pair."
    )
    allow_tie = models.BooleanField(default=True)
    allow_both_bad = models.BooleanField(default=True)
    ask_strength = models.BooleanField(default=False)
    strength_labels = models.JSONField(
        default=list, blank=True, help_text="Names of the strength levels, weakest first."
    )
    reason_tags = models.JSONField(default=list, blank=True, help_text="Optional reason tags.")
    lease_minutes = models.PositiveSmallIntegerField(
        default=10, help_text="How long a pair shown to a labeler is held for them."
    )
    labelers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="projects", blank=True
    )

    # Quality control: shares of served pairs that are gold checks and swapped repeats.
    gold_rate = models.FloatField(default=0.0)
    repeat_rate = models.FloatField(default=0.0)
    quality_bands = models.JSONField(
        default=dict, blank=True, help_text="Overrides of the labeler flag thresholds."
    )

    # Which votes to believe: one rule for training, export, review and the snapshot hash.
    aggregation = models.CharField(
        max_length=20,
        choices=Aggregation.choices,
        default=Aggregation.MAJORITY,
        help_text="How votes become each pair's label: majority, or a labeler-reliability model.",
    )

    # Reward model.
    reward_backbone = models.CharField(
        max_length=500, blank=True, help_text="Local path or hub id; empty means REWARD_BACKBONE."
    )
    training_config = models.JSONField(
        default=dict, blank=True, help_text="Overrides of the training config defaults."
    )
    auto_retrain = models.BooleanField(default=False)
    retrain_min_new_comparisons = models.PositiveIntegerField(
        default=50, help_text="Queue a run when at least this many comparisons arrived since."
    )
    retrain_interval_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Also retrain on this schedule (empty: threshold only)."
    )

    # Active learning.
    selection = models.CharField(max_length=20, choices=Selection.choices, default=Selection.MIXED)
    random_share = models.FloatField(
        default=0.2, help_text="Share of pairs served at random under mixed selection."
    )
    ensemble_size = models.PositiveSmallIntegerField(
        default=1, help_text="Models trained per run; more than 1 measures disagreement."
    )

    # AI judges (Judge): how their comparisons count.
    judges_count_toward_redundancy = models.BooleanField(
        default=False,
        help_text="A judge's comparison counts toward a pair's redundancy (default: people "
        "still label every pair they would have).",
    )
    judges_in_training = models.BooleanField(
        default=True,
        help_text="Judges' comparisons enter training, weighed by the project's aggregation.",
    )
    judge_first = models.BooleanField(
        default=False,
        help_text="Serve people only the pairs judges disagree on (with each other or the "
        "reward model) or are unsure of.",
    )
    judge_first_margin = models.FloatField(
        default=0.2,
        help_text="Judge-first: a judge whose P(its choice) is below 0.5 + this is unsure.",
    )

    # Rankings and ratings (ResponseSet, Ranking, Rating): what a task asks, how many
    # responses of one prompt it shows, and the aspects a response is rated on.
    task_kind = models.CharField(
        max_length=20,
        choices=TaskKind.choices,
        default=TaskKind.PAIRWISE,
        help_text="Pairs, or K responses of a prompt to rank, rate, or rank and rate.",
    )
    ranking_size = models.PositiveSmallIntegerField(
        default=4, help_text="K: responses per ranking or rating task (2 to 9)."
    )
    aspects = models.JSONField(
        default=default_aspects,
        blank=True,
        help_text="Rating aspects: [{name, description, min, max}], integer scales.",
    )

    # Counters kept by services so that pages never count by scanning.
    pair_count = models.PositiveIntegerField(default=0)
    # The judgments stored, whatever their kind (the name predates rankings and ratings; users'
    # scripts read it): each pair Comparison (people's first votes, imports, adjudications, AI
    # judges), each person's judgment of a ResponseSet (their ranking and/or ratings of it,
    # one per labeler and set) and each imported one (one source rater's ranking and/or ratings
    # of a set). Swapped repeats do not count. Auto-retraining, the quality recompute rule and
    # TrainingRun.comparison_count_at_start read it.
    comparison_count = models.PositiveIntegerField(default=0)

    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            # At most nine: the labeling page picks a response with one digit key.
            models.CheckConstraint(
                condition=Q(ranking_size__gte=2, ranking_size__lte=9), name="project_ranking_size"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def strength_scale(self) -> list[str]:
        return list(self.strength_labels) or list(DEFAULT_STRENGTH_LABELS)


class Membership(models.Model):
    """A labeler on a project. Staff can exclude a labeler: their work stays stored but leaves
    training and export by default."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    excluded = models.BooleanField(default=False)
    excluded_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} on {self.project}"


def messages_text(messages: list[dict[str, Any]]) -> str:
    """A conversation as one prompt string (Prompt.text, and the leases that carry a prompt's
    messages without its row): the single message, or the last user turn."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return message.get("content", "")
    return messages[-1].get("content", "") if messages else ""


class Prompt(models.Model):
    """What the responses answer: single-turn text or a conversation of {role, content}."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prompts")
    # Always the full conversation; a single-turn prompt is one user message.
    messages = models.JSONField()
    external_id = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # sha256 of the canonical JSON of messages: the identity used to deduplicate imports.
    content_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "content_hash"], name="prompt_unique"),
        ]

    def __str__(self) -> str:
        return self.text[:80]

    @property
    def is_conversation(self) -> bool:
        return len(self.messages) > 1

    @property
    def text(self) -> str:
        """The prompt as one string: the single message, or the last user turn."""
        return messages_text(self.messages)


class Response(models.Model):
    """A candidate answer to a prompt."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="responses")
    text = models.TextField()
    model_name = models.CharField(max_length=200, blank=True, help_text="Source model.")
    metadata = models.JSONField(default=dict, blank=True)
    content_hash = models.CharField(max_length=64)
    # Set when a generation job wrote it (annotate/services/generation.py), else empty: the
    # generator, the sampling settings sent, the endpoint's token counts and the latency.
    generator = models.ForeignKey(
        "Generator", null=True, blank=True, on_delete=models.SET_NULL, related_name="responses"
    )
    sampling = models.JSONField(default=dict, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prompt", "content_hash"], name="response_unique"),
        ]

    def __str__(self) -> str:
        return self.text[:80]


class Pair(models.Model):
    """Two responses to one prompt, to be compared. response_a has the smaller id."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="pairs")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="pairs")
    response_a = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+")
    response_b = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+")
    priority = models.FloatField(default=0.0, help_text="Higher is served first.")
    # A fixed random draw: serving in this order is a uniform random sample of open pairs
    # (the random share of mixed selection) while still reading one index.
    random_key = models.FloatField(default=new_random_key)
    gold = models.CharField(
        max_length=10, choices=Choice.choices, blank=True, help_text="Known answer (gold)."
    )
    # Served to labelers while open; closed when it holds `redundancy` human comparisons.
    is_open = models.BooleanField(default=True)
    human_count = models.PositiveSmallIntegerField(default=0)
    ambiguous = models.BooleanField(default=False, help_text="Left out of training by staff.")
    # Created by rescoring (annotate.services.selection.pairs_add_by_reward), not imported: the
    # pages say how many of a project's pairs came that way.
    added_by_model = models.BooleanField(
        default=False, help_text="Added by the reward model's neighbour pairing."
    )
    # The active reward model's view, refreshed after each promotion.
    model_p_a = models.FloatField(null=True, blank=True, help_text="Model P(A better).")
    model_uncertainty = models.FloatField(null=True, blank=True)
    # The AI judges' verdict, kept on the row so that judge-first's rule tests the row a lease's
    # walk reaches instead of probing the pair's comparisons (annotate.selectors.judge_first).
    # Over the counted judges' comparisons (source ai_judge, not repeats, of judges staff did
    # not exclude): the choice they all made ("" with none, "split" when they differ) and the
    # smallest P(its choice), a missing one read as 0. Written by
    # annotate.services.judges_verdict alone.
    judges_choice = models.CharField(max_length=10, blank=True, default="", editable=False)
    judges_min_p = models.FloatField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["prompt", "response_a", "response_b"], name="pair_unique"
            ),
            models.CheckConstraint(
                condition=Q(response_a__lt=models.F("response_b")), name="pair_ordered"
            ),
        ]
        indexes = [
            # Leasing reads this index in order and stops at the first eligible pair.
            models.Index(
                fields=["project", "-priority", "id"],
                condition=Q(is_open=True),
                name="pair_queue",
            ),
            models.Index(
                fields=["project", "random_key"],
                condition=Q(is_open=True),
                name="pair_queue_random",
            ),
        ]

    def __str__(self) -> str:
        return f"Pair {self.pk}"


class Lease(models.Model):
    """A pair held for one labeler while they judge it; an expired lease frees its slot."""

    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="leases")
    labeler = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="leases"
    )
    left = models.CharField(max_length=1, choices=Side.choices)
    is_repeat = models.BooleanField(default=False)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pair", "labeler"], name="lease_unique"),
        ]
        indexes = [models.Index(fields=["labeler", "expires_at"])]

    def __str__(self) -> str:
        return f"Lease of pair {self.pair_id} to {self.labeler_id}"


class ImportBatch(models.Model):
    """One import of one file: what it added and what it refused."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="imports")
    file_name = models.CharField(max_length=500)
    format = models.CharField(max_length=50, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    rows = models.PositiveIntegerField(default=0)
    pairs_created = models.PositiveIntegerField(default=0)
    comparisons_created = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.file_name} ({self.created_at:%Y-%m-%d %H:%M})"


class Comparison(models.Model):
    """One judgment of one pair: by a labeler, imported with the data, or by staff review."""

    class Source(models.TextChoices):
        HUMAN = "human", "Labeler"
        IMPORT = "import", "Imported"
        ADJUDICATION = "adjudication", "Staff review"
        AI_JUDGE = "ai_judge", "AI judge"

    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="comparisons")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="comparisons")
    labeler = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="comparisons",
    )
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.HUMAN)
    choice = models.CharField(max_length=10, choices=Choice.choices)
    strength = models.PositiveSmallIntegerField(null=True, blank=True)
    reasons = models.JSONField(default=list, blank=True)
    comment = models.TextField(blank=True)
    left = models.CharField(max_length=1, choices=Side.choices, blank=True)
    time_spent_ms = models.PositiveIntegerField(null=True, blank=True)
    # An AI judge's probability that `choice` is the better side: the mean over its two
    # readings (A/B and B/A), from the choice tokens' logprobs when the endpoint gave them.
    p_chosen = models.FloatField(null=True, blank=True)
    # A swapped repeat of a pair the labeler judged before: measures self-consistency and
    # never counts toward redundancy, datasets or exports.
    is_repeat = models.BooleanField(default=False)
    is_gold_check = models.BooleanField(default=False)
    import_batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="comparisons"
    )
    import_file = models.CharField(max_length=500, blank=True)
    # Identity of an imported judgment (external id or row hash): re-importing adds nothing.
    import_key = models.CharField(max_length=64, blank=True)
    # A fixed random draw: a repeat check probes the labeler's judgments at a random point of
    # this key's index (comparison_repeat_probe) instead of sorting them all.
    random_key = models.FloatField(default=new_random_key)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["pair", "labeler"],
                condition=Q(labeler__isnull=False, is_repeat=False),
                name="comparison_one_per_labeler",
            ),
            models.UniqueConstraint(
                fields=["pair", "labeler"],
                condition=Q(labeler__isnull=False, is_repeat=True),
                name="comparison_one_repeat_per_labeler",
            ),
            models.UniqueConstraint(
                fields=["pair", "import_key"],
                condition=Q(source="import"),
                name="comparison_import_unique",
            ),
            models.CheckConstraint(
                condition=Q(choice__in=["a", "b", "tie", "both_bad"]), name="comparison_choice"
            ),
            models.CheckConstraint(
                condition=Q(strength__isnull=True) | Q(strength__gte=1, strength__lte=10),
                name="comparison_strength",
            ),
            models.CheckConstraint(condition=Q(left__in=["", "a", "b"]), name="comparison_left"),
            models.CheckConstraint(
                condition=Q(source="human", labeler__isnull=False) | ~Q(source="human"),
                name="comparison_human_has_labeler",
            ),
            models.CheckConstraint(
                condition=Q(source="ai_judge", labeler__isnull=False) | ~Q(source="ai_judge"),
                name="comparison_judge_has_labeler",
            ),
            models.CheckConstraint(
                condition=Q(p_chosen__isnull=True) | Q(p_chosen__gte=0, p_chosen__lte=1),
                name="comparison_p_chosen",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "created_at"]),
            models.Index(fields=["labeler", "project"]),
            # A labeler's own first judgments in random-key order: the repeat-check probe.
            models.Index(
                fields=["labeler", "project", "random_key"],
                condition=Q(is_repeat=False, source="human"),
                name="comparison_repeat_probe",
            ),
            # A project's few staff rulings, without reading its judgments (pair counts,
            # the review queue).
            models.Index(
                fields=["project", "pair"],
                condition=Q(source="adjudication"),
                name="comparison_adjudications",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_choice_display()} on pair {self.pair_id}"


class ExportJob(models.Model):
    """A dataset export too large for one request: a worker builds its zip into a file under
    MEDIA_ROOT/exports/, and staff download the file when the job has succeeded."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="export_jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # The export's options as the API took them (text values, as in a query string).
    options = models.JSONField(default=dict)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    # Progress: rows written, of about `rows_total` (the comparisons, or the pairs, that count
    # under the options; filters may leave out some).
    rows_done = models.PositiveBigIntegerField(default=0)
    rows_total = models.PositiveBigIntegerField(default=0)
    file_name = models.CharField(max_length=300)  # the zip's name, chosen when asked for
    # Under MEDIA_ROOT; set only once the whole file is written and renamed into place.
    file = models.CharField(max_length=500, blank=True)
    file_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["project", "-created_at"])]

    def __str__(self) -> str:
        return f"Export {self.pk} of {self.project_id} ({self.status})"


class QualityResult(models.Model):
    """A project's quality figures as last computed in the background
    (annotate.services.quality): the API and the pages read these instead of computing them
    per request. `comparison_count` and `inputs` are what they were computed from; the
    staleness rule compares them with the project's now."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="quality_result")
    figures = models.JSONField(null=True, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(null=True, blank=True, help_text="How long the computation took.")
    comparison_count = models.PositiveIntegerField(default=0)
    inputs = models.JSONField(default=dict, blank=True)
    # When a computation was last queued: one queued at a time per project.
    requested_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"Quality of {self.project} at {self.computed_at}"


class ReviewItem(models.Model):
    """A pair of a project's review queue as of the last computation (annotate.quality.review
    says why it is listed), `rank` in order of urgency: the review page reads the few it shows
    through the (project, rank) index instead of every comparison."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="review_items")
    pair = models.OneToOneField(Pair, on_delete=models.CASCADE, related_name="review_item")
    rank = models.PositiveIntegerField()
    reasons = models.JSONField(default=list)
    counts = models.JSONField(default=dict)
    majority = models.CharField(max_length=10, blank=True)
    agreement = models.FloatField(null=True, blank=True)
    posterior_p_a = models.FloatField(null=True, blank=True)
    model_p_a = models.FloatField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["project", "rank"], name="review_item_rank")]

    def __str__(self) -> str:
        return f"Review of pair {self.pair_id}"


class Endpoint(models.Model):
    """An OpenAI-compatible chat endpoint and the sampling settings it is asked with (a
    Generator's, a Judge's). The API key is never stored: `api_key_env` names the environment
    variable of the processes that call it (web, worker) which holds it."""

    name = models.SlugField(max_length=100, help_text="Unique in the project; used on the CLI.")
    # Not a URLField: Django's validator refuses hosts without a dot (http://vllm:8000/v1, a
    # container's name); the service checks the scheme and the host instead.
    base_url = models.CharField(
        max_length=500, help_text="Up to /v1, e.g. http://127.0.0.1:8000/v1."
    )
    model = models.CharField(max_length=200, help_text="The model name the endpoint expects.")
    api_key_env = models.CharField(
        max_length=100, blank=True, help_text="Name of the environment variable with the key."
    )
    temperature = models.FloatField(null=True, blank=True)
    top_p = models.FloatField(null=True, blank=True)
    max_tokens = models.PositiveIntegerField(null=True, blank=True)
    # Sample i of a prompt is asked with seed + i: samples differ, and a rerun repeats them.
    seed = models.BigIntegerField(null=True, blank=True)
    concurrency = models.PositiveSmallIntegerField(
        default=4,
        help_text="Requests in flight at once to this endpoint, across every job and the chat page.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True


class Generator(Endpoint):
    """An endpoint that writes responses for a project's prompts."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="generators")
    system_prompt = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="generator_unique_name"),
            models.CheckConstraint(condition=Q(concurrency__gte=1), name="generator_concurrency"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.model})"


class GenerationJob(models.Model):
    """Responses to write: `samples` per (prompt, generator) for the job's prompts. A worker
    (or `manage.py generate_responses`) runs it; a (prompt, generator, sample index) already in
    GeneratedSample is not asked again, so a cancelled or failed job resumes where it stopped."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="generation_jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    generators = models.ManyToManyField(Generator, related_name="jobs")
    prompts = models.ManyToManyField(Prompt, related_name="generation_jobs")
    samples = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    # Progress: samples in (this run or earlier ones) of `total`; the endpoints' token counts
    # and failed attempts (each retried, or the one that failed the job) of this job.
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    pairs_created = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["project", "-created_at"])]

    def __str__(self) -> str:
        return f"Generation {self.pk} of {self.project_id} ({self.status})"


class GeneratedSample(models.Model):
    """Sample `index` of one generator for one prompt, and the Response it gave (two samples
    with the same text share that Response): what makes a job idempotent."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="samples")
    generator = models.ForeignKey(Generator, on_delete=models.CASCADE, related_name="samples")
    index = models.PositiveSmallIntegerField()
    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="samples")
    job = models.ForeignKey(
        GenerationJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["prompt", "generator", "index"], name="generated_sample_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"Sample {self.index} of {self.generator_id} for prompt {self.prompt_id}"


class Judge(Endpoint):
    """An endpoint that judges a project's pairs as a labeler would: its own labeler account
    (`user`, listed as an AI judge wherever labelers are) holds its comparisons, so agreement,
    gold accuracy, bias and the reliability models measure it as they measure people."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="judges")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="judge"
    )
    # Blank: built from the project's instructions and choices (annotate/judging).
    rubric = models.TextField(
        blank=True,
        help_text="The judge's prompt, with {prompt}, {response_1} and {response_2}; blank: "
        "built from the project's instructions and choices.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="judge_unique_name"),
            models.CheckConstraint(condition=Q(concurrency__gte=1), name="judge_concurrency"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.model})"


class JudgingJob(models.Model):
    """Pairs for one judge to read, each in both orders. A worker (or `manage.py judge_pairs`)
    runs it; a (pair, order) the judge already read is not asked again, so a cancelled or failed
    job resumes where it stopped."""

    Status = GenerationJob.Status

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="judging_jobs")
    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    limit = models.PositiveIntegerField(null=True, blank=True, help_text="At most this many pairs.")
    open_only = models.BooleanField(default=False, help_text="Only pairs still open to people.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    # Progress: pairs read in both orders (this run or earlier ones) of `total`; verdicts that
    # stayed unparsable after the reminder; failed attempts of the endpoint.
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    comparisons_created = models.PositiveIntegerField(default=0)
    unparsable = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["project", "-created_at"])]

    def __str__(self) -> str:
        return f"Judging {self.pk} by {self.judge_id} ({self.status})"


class JudgeVerdict(models.Model):
    """One reading of a pair by a judge in one order, as the endpoint answered: kept beside
    the Comparison the two readings make (shown on the review page next to the humans')."""

    class Order(models.TextChoices):
        AB = "ab", "A first"
        BA = "ba", "B first"

    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="verdicts")
    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="judge_verdicts")
    job = models.ForeignKey(
        JudgingJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="verdicts"
    )
    order = models.CharField(max_length=2, choices=Order.choices)
    # In the pair's terms (a, b, tie, both_bad) whichever side was shown first; blank when the
    # reply stayed unparsable after the reminder.
    choice = models.CharField(max_length=10, blank=True)
    # P(the pair's A is better) from the choice tokens' logprobs, when the endpoint gave them.
    p_a = models.FloatField(null=True, blank=True)
    rationale = models.TextField(blank=True)
    raw = models.TextField(blank=True, help_text="The endpoint's last reply, as given.")
    attempts = models.PositiveSmallIntegerField(default=1)
    parse_error = models.CharField(max_length=500, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["judge", "pair", "order"], name="judge_verdict_unique"),
            models.CheckConstraint(
                condition=Q(choice__in=["", "a", "b", "tie", "both_bad"]),
                name="judge_verdict_choice",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.judge_id} on pair {self.pair_id} ({self.order}): {self.choice or '?'}"


class ResponseSet(models.Model):
    """K responses of one prompt, the unit of a ranking or rating task (Project.task_kind):
    served like a Pair (leases, redundancy, skips, gold, swapped repeats) by
    annotate/services/rankings.py. `response_ids` are in canonical order (ascending ids);
    each labeler sees them in a random order of their own, kept on their lease and judgment."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="response_sets")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="response_sets")
    response_ids = models.JSONField()
    # The ids joined by commas: the set's identity within its prompt, so that making sets
    # again from the same responses adds nothing.
    response_key = models.CharField(max_length=200)
    priority = models.FloatField(default=0.0, help_text="Higher is served first.")
    random_key = models.FloatField(default=new_random_key)
    # Served while open; closed once it holds `redundancy` human judgments.
    is_open = models.BooleanField(default=True)
    human_count = models.PositiveSmallIntegerField(default=0)
    # Gold: a known best response (rankings), or known bounds per response and aspect
    # {response_id: {aspect: [lo, hi]}} (ratings). `is_gold` says either is set.
    is_gold = models.BooleanField(default=False)
    gold_best = models.ForeignKey(
        Response, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    gold_ratings = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prompt", "response_key"], name="response_set_unique"),
        ]
        indexes = [
            models.Index(
                fields=["project", "-priority", "id"],
                condition=Q(is_open=True),
                name="response_set_queue",
            ),
            models.Index(
                fields=["project", "random_key"],
                condition=Q(is_open=True),
                name="response_set_queue_random",
            ),
        ]

    def __str__(self) -> str:
        return f"Set {self.pk} of prompt {self.prompt_id}"


class SetLease(models.Model):
    """A ResponseSet held for one labeler, and the order they are shown its responses in."""

    response_set = models.ForeignKey(ResponseSet, on_delete=models.CASCADE, related_name="leases")
    labeler = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="set_leases"
    )
    shown = models.JSONField(help_text="The response ids in the order shown.")
    is_repeat = models.BooleanField(default=False)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["response_set", "labeler"], name="set_lease_unique"),
        ]
        indexes = [models.Index(fields=["labeler", "expires_at"])]

    def __str__(self) -> str:
        return f"Lease of set {self.response_set_id} to {self.labeler_id}"


class JudgmentSource(models.TextChoices):
    HUMAN = "human", "Labeler"
    IMPORT = "import", "Imported"


class Ranking(models.Model):
    """One labeler's order of a ResponseSet's responses, raw: `groups` lists groups of
    response ids, best first; the ids of one group are tied. `all_bad` marks every response
    as bad (the order, if given, still stands). `shown` is the order the page showed."""

    response_set = models.ForeignKey(ResponseSet, on_delete=models.CASCADE, related_name="rankings")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rankings")
    labeler = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="rankings",
    )
    source = models.CharField(
        max_length=20, choices=JudgmentSource.choices, default=JudgmentSource.HUMAN
    )
    groups = models.JSONField()
    all_bad = models.BooleanField(default=False)
    shown = models.JSONField(default=list, blank=True)
    # As Comparison's: a repeat (the same responses in another order) only measures
    # self-consistency; a gold check takes no slot of the set's redundancy.
    is_repeat = models.BooleanField(default=False)
    is_gold_check = models.BooleanField(default=False)
    time_spent_ms = models.PositiveIntegerField(null=True, blank=True)
    import_batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="rankings"
    )
    import_key = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["response_set", "labeler"],
                condition=Q(labeler__isnull=False, is_repeat=False),
                name="ranking_one_per_labeler",
            ),
            models.UniqueConstraint(
                fields=["response_set", "labeler"],
                condition=Q(labeler__isnull=False, is_repeat=True),
                name="ranking_one_repeat_per_labeler",
            ),
            models.UniqueConstraint(
                fields=["response_set", "import_key"],
                condition=Q(source="import"),
                name="ranking_import_unique",
            ),
            models.CheckConstraint(
                condition=Q(source="human", labeler__isnull=False) | ~Q(source="human"),
                name="ranking_human_has_labeler",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "created_at"]),
            models.Index(fields=["labeler", "project"]),
        ]

    def __str__(self) -> str:
        return f"Ranking of set {self.response_set_id} by {self.labeler_id}"


class Rating(models.Model):
    """One labeler's value for one response on one aspect, raw. `position` is where the page
    showed the response (0 first) in the labeler's order."""

    response_set = models.ForeignKey(ResponseSet, on_delete=models.CASCADE, related_name="ratings")
    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="ratings")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="ratings")
    labeler = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ratings",
    )
    source = models.CharField(
        max_length=20, choices=JudgmentSource.choices, default=JudgmentSource.HUMAN
    )
    aspect = models.CharField(max_length=100)
    value = models.SmallIntegerField()
    position = models.PositiveSmallIntegerField(null=True, blank=True)
    is_repeat = models.BooleanField(default=False)
    is_gold_check = models.BooleanField(default=False)
    import_batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="ratings"
    )
    import_key = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["response_set", "response", "aspect", "labeler", "is_repeat"],
                condition=Q(labeler__isnull=False),
                name="rating_one_per_labeler",
            ),
            models.UniqueConstraint(
                fields=["response", "aspect", "import_key"],
                condition=Q(source="import"),
                name="rating_import_unique",
            ),
            models.CheckConstraint(
                condition=Q(source="human", labeler__isnull=False) | ~Q(source="human"),
                name="rating_human_has_labeler",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "created_at"]),
            models.Index(fields=["labeler", "project"]),
        ]

    def __str__(self) -> str:
        return f"{self.aspect}={self.value} for response {self.response_id} by {self.labeler_id}"
