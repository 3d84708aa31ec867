"""Test data: one factory per model (factory_boy)."""

import factory
from django.contrib.auth import get_user_model

from annotate.hashing import content_hash, user_message
from annotate.models import Membership, Pair, Project, Prompt, Response, Selection


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
    pair = Pair.objects.create(
        project=project, prompt=prompt, response_a=first, response_b=second, **pair_fields
    )
    Project.objects.filter(pk=project.pk).update(pair_count=project.pairs.count())
    return pair
