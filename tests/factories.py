"""Test data: one factory per model (factory_boy)."""

from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from annotate.hashing import content_hash, user_message
from annotate.models import (
    Comparison,
    ExportJob,
    GeneratedSample,
    GenerationJob,
    Generator,
    ImportBatch,
    Judge,
    JudgeVerdict,
    JudgingJob,
    Lease,
    Membership,
    Pair,
    Project,
    Prompt,
    QualityResult,
    Ranking,
    Rating,
    Response,
    ResponseSet,
    ReviewItem,
    Selection,
    SetLease,
    Side,
)
from rewardtrain.models import Evaluation, ModelVersion, RoundScore, TrainingRun


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"labeler{n}")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests")


class StaffFactory(UserFactory):
    username = factory.Sequence(lambda n: f"staff{n}")
    is_staff = True
    is_superuser = True


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Project {n}")
    slug = factory.Sequence(lambda n: f"project-{n}")
    instructions = "Pick the more helpful, honest and harmless response."
    # The queue in priority order, so that tests can predict what is served; the default
    # (mixed) draws a random share per lease, and tests of selection set it themselves.
    selection = Selection.UNCERTAINTY


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)


class PromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prompt

    project = factory.SubFactory(ProjectFactory)
    messages = factory.Sequence(lambda n: user_message(f"Question number {n}?"))
    content_hash = factory.LazyAttribute(lambda o: content_hash(o.messages))


class ResponseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Response

    prompt = factory.SubFactory(PromptFactory)
    text = factory.Sequence(lambda n: f"Answer number {n}.")
    content_hash = factory.LazyAttribute(lambda o: content_hash(o.text))


class PairFactory(factory.django.DjangoModelFactory):
    """An open pair of two responses to one prompt; response_a has the smaller id, as the
    pair_ordered constraint asks."""

    class Meta:
        model = Pair

    project = factory.SubFactory(ProjectFactory)
    prompt = factory.SubFactory(PromptFactory, project=factory.SelfAttribute("..project"))
    response_a = factory.SubFactory(ResponseFactory, prompt=factory.SelfAttribute("..prompt"))
    response_b = factory.SubFactory(ResponseFactory, prompt=factory.SelfAttribute("..prompt"))


class LeaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lease

    pair = factory.SubFactory(PairFactory)
    labeler = factory.SubFactory(UserFactory)
    left = Side.A
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=10))


class ImportBatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ImportBatch

    project = factory.SubFactory(ProjectFactory)
    file_name = factory.Sequence(lambda n: f"import-{n}.jsonl")
    format = "pair"


class ComparisonFactory(factory.django.DjangoModelFactory):
    """A labeler's judgment of a pair (its project's); the Pair's counters are the services'
    business, so tests that need them judge through the services instead."""

    class Meta:
        model = Comparison

    pair = factory.SubFactory(PairFactory)
    project = factory.SelfAttribute("pair.project")
    labeler = factory.SubFactory(UserFactory)
    choice = "a"
    left = Side.A


class ExportJobFactory(factory.django.DjangoModelFactory):
    """A queued background export of its project's trl dataset."""

    class Meta:
        model = ExportJob

    project = factory.SubFactory(ProjectFactory)
    options = factory.LazyFunction(lambda: {"format": "trl"})
    file_name = factory.LazyAttribute(lambda job: f"{job.project.slug}-trl.jsonl.zip")


class QualityResultFactory(factory.django.DjangoModelFactory):
    """A project's stored quality figures, as yet never computed."""

    class Meta:
        model = QualityResult

    project = factory.SubFactory(ProjectFactory)


class ReviewItemFactory(factory.django.DjangoModelFactory):
    """The first pair of its project's stored review queue: a 1-1 split."""

    class Meta:
        model = ReviewItem

    pair = factory.SubFactory(PairFactory)
    project = factory.SelfAttribute("pair.project")
    rank = 0
    reasons = factory.LazyFunction(lambda: ["split"])
    counts = factory.LazyFunction(lambda: {"a": 1, "b": 1})
    agreement = 0.5


class TrainingRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TrainingRun

    project = factory.SubFactory(ProjectFactory)


class ModelVersionFactory(factory.django.DjangoModelFactory):
    """A version record; its folder is not written (tests that score train one instead)."""

    class Meta:
        model = ModelVersion

    project = factory.SubFactory(ProjectFactory)
    version = factory.Sequence(lambda n: n + 1)
    path = factory.LazyAttribute(lambda o: f"/nowhere/{o.project.slug}/{o.version}")
    backbone = "tiny-bert"


class EvaluationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Evaluation

    model_version = factory.SubFactory(ModelVersionFactory)
    metrics = factory.LazyFunction(lambda: {"accuracy": 0.75, "log_loss": 0.5})


def make_pair(
    project: Project, prompt_text: str | None = None, a: str = "", b: str = "", **pair_fields
) -> Pair:
    """A pair with its prompt and two responses; response_a always has the smaller id."""
    prompt = (
        PromptFactory(project=project, messages=user_message(prompt_text))
        if prompt_text
        else PromptFactory(project=project)
    )
    first = ResponseFactory(prompt=prompt, **({"text": a} if a else {}))
    second = ResponseFactory(prompt=prompt, **({"text": b} if b else {}))
    pair = PairFactory(
        project=project, prompt=prompt, response_a=first, response_b=second, **pair_fields
    )
    Project.objects.filter(pk=project.pk).update(pair_count=project.pairs.count())
    return pair


class GeneratorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Generator

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"policy-{n}")
    base_url = "http://127.0.0.1:8000/v1"
    model = "tiny-chat"


class GenerationJobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GenerationJob

    project = factory.SubFactory(ProjectFactory)


class GeneratedSampleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GeneratedSample

    generator = factory.SubFactory(GeneratorFactory)
    prompt = factory.SubFactory(PromptFactory, project=factory.SelfAttribute("..generator.project"))
    index = 0
    response = factory.SubFactory(ResponseFactory, prompt=factory.SelfAttribute("..prompt"))


class JudgeFactory(factory.django.DjangoModelFactory):
    """An AI judge with its own labeler account, a member of its project."""

    class Meta:
        model = Judge

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"judge-{n}")
    user = factory.SubFactory(UserFactory, username=factory.Sequence(lambda n: f"ai-judge-{n}"))
    base_url = "http://127.0.0.1:8000/v1"
    model = "tiny-chat"

    @factory.post_generation
    def member(self, create, extracted, **kwargs):
        if create:
            Membership.objects.get_or_create(project=self.project, user=self.user)


class JudgingJobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = JudgingJob

    judge = factory.SubFactory(JudgeFactory)
    project = factory.SelfAttribute("judge.project")


class JudgeVerdictFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = JudgeVerdict

    judge = factory.SubFactory(JudgeFactory)
    pair = factory.SubFactory(PairFactory, project=factory.SelfAttribute("..judge.project"))
    order = JudgeVerdict.Order.AB
    choice = "a"


class RoundScoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RoundScore

    model_version = factory.SubFactory(ModelVersionFactory)
    job = factory.SubFactory(
        GenerationJobFactory, project=factory.SelfAttribute("..model_version.project")
    )
    samples = 0


class ResponseSetFactory(factory.django.DjangoModelFactory):
    """An open set of two responses to one prompt (a ranking or rating task's unit)."""

    class Meta:
        model = ResponseSet

    project = factory.SubFactory(ProjectFactory)
    prompt = factory.SubFactory(PromptFactory, project=factory.SelfAttribute("..project"))
    response_ids = factory.LazyAttribute(
        lambda o: sorted(r.pk for r in ResponseFactory.create_batch(2, prompt=o.prompt))
    )
    response_key = factory.LazyAttribute(lambda o: ",".join(str(i) for i in o.response_ids))


class SetLeaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SetLease

    response_set = factory.SubFactory(ResponseSetFactory)
    labeler = factory.SubFactory(UserFactory)
    shown = factory.LazyAttribute(lambda o: list(reversed(o.response_set.response_ids)))
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=30))


class RankingFactory(factory.django.DjangoModelFactory):
    """A labeler's ranking of a set, its responses best first, one per group."""

    class Meta:
        model = Ranking

    response_set = factory.SubFactory(ResponseSetFactory)
    project = factory.SelfAttribute("response_set.project")
    labeler = factory.SubFactory(UserFactory)
    groups = factory.LazyAttribute(lambda o: [[i] for i in o.response_set.response_ids])
    shown = factory.LazyAttribute(lambda o: list(o.response_set.response_ids))


class RatingFactory(factory.django.DjangoModelFactory):
    """A labeler's rating of the set's first response on HelpSteer2's helpfulness."""

    class Meta:
        model = Rating

    response_set = factory.SubFactory(ResponseSetFactory)
    project = factory.SelfAttribute("response_set.project")
    response = factory.LazyAttribute(
        lambda o: Response.objects.get(pk=o.response_set.response_ids[0])
    )
    labeler = factory.SubFactory(UserFactory)
    aspect = "helpfulness"
    value = 3
