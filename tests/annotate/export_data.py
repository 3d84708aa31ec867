"""A judged project for the export tests: majority, unanimous, tie, both-bad, imported,
multi-turn and excluded-labeler pairs, with known outcomes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from annotate.hashing import content_hash
from annotate.models import Comparison, Membership, Pair, Project, Prompt
from tests.factories import MembershipFactory, ResponseFactory, UserFactory, make_pair


def judge(pair: Pair, user, choice: str, *, at: datetime | None = None, **fields) -> Comparison:
    comparison = Comparison.objects.create(
        pair=pair, project=pair.project, labeler=user, choice=choice, **fields
    )
    if at is not None:
        # created_at is auto_now_add: set the time the judgment was made afterwards.
        Comparison.objects.filter(pk=comparison.pk).update(created_at=at)
    return comparison


def conversation_pair(project: Project, messages: list[dict], a: str, b: str) -> Pair:
    prompt = Prompt.objects.create(
        project=project, messages=messages, content_hash=content_hash(messages)
    )
    first = ResponseFactory(prompt=prompt, text=a)
    second = ResponseFactory(prompt=prompt, text=b)
    return Pair.objects.create(project=project, prompt=prompt, response_a=first, response_b=second)


@dataclass
class Judged:
    project: Project
    majority: Pair  # a wins 2-1
    unanimous: Pair  # b wins 2-0
    tie: Pair
    both_bad: Pair
    imported: Pair
    conversation: Pair
    excluded_only: Pair  # judged only by a labeler staff excluded
    users: dict


def judged_project(project: Project, labeler, *, system: bool = True) -> Judged:
    """Seven pairs on `project`; alice is `labeler`, bob and carol join, mallory is excluded.
    The conversation opens with a system message unless `system` is False."""
    bob, carol, mallory = (UserFactory(username=n) for n in ("bob", "carol", "mallory"))
    for user in (bob, carol):
        MembershipFactory(project=project, user=user)
    Membership.objects.create(project=project, user=mallory, excluded=True)
    project.ask_strength = True
    project.reason_tags = ["accurate", "concise"]
    project.save()
    day = timedelta(days=1)
    t0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.get_current_timezone())

    majority = make_pair(project, "What is the capital of France?", a="Paris.", b="Lyon.")
    judge(
        majority,
        labeler,
        "a",
        strength=3,
        left="b",
        time_spent_ms=4200,
        reasons=["accurate"],
        comment="Lyon is wrong",
        at=t0,
    )
    judge(majority, bob, "a", strength=1, left="a", at=t0 + day)
    judge(majority, carol, "b", strength=2, left="a", at=t0 + 2 * day)
    # A swapped repeat never counts.
    judge(majority, labeler, "b", is_repeat=True, left="a", at=t0 + 3 * day)

    unanimous = make_pair(project, "Say hi.", a="Go away.", b="Hi there!")
    judge(unanimous, labeler, "b", strength=4, left="a", at=t0 + day)
    judge(unanimous, bob, "b", strength=2, left="b", at=t0 + 2 * day)

    tie = make_pair(project, "Pick a number.", a="Seven.", b="Three.")
    judge(tie, labeler, "tie", left="a", at=t0 + 2 * day)

    both_bad = make_pair(project, "Explain gravity.", a="No.", b="Maybe.")
    judge(both_bad, labeler, "both_bad", left="a", at=t0 + 3 * day)
    judge(both_bad, bob, "both_bad", left="b", at=t0 + 3 * day)

    imported = make_pair(project, "Translate 'chat'.", a="Cat.", b="Dog.")
    Comparison.objects.create(
        pair=imported,
        project=project,
        source=Comparison.Source.IMPORT,
        choice="a",
        import_key="row-1",
        import_file="old.jsonl",
    )

    messages = [{"role": "system", "content": "Be brief."}] if system else []
    messages += [
        {"role": "user", "content": "Hi."},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "How are you?"},
    ]
    conversation = conversation_pair(project, messages, a="Fine, thanks.", b="Why ask?")
    judge(conversation, carol, "a", strength=2, left="b", at=t0 + 4 * day)

    excluded_only = make_pair(project, "Name a color.", a="Blue.", b="Seventeen.")
    judge(excluded_only, mallory, "b", left="a", at=t0 + 4 * day)

    Project.objects.filter(pk=project.pk).update(
        pair_count=project.pairs.count(),
        comparison_count=Comparison.objects.filter(project=project).count(),
    )
    project.refresh_from_db()
    return Judged(
        project,
        majority,
        unanimous,
        tie,
        both_bad,
        imported,
        conversation,
        excluded_only,
        {"alice": labeler, "bob": bob, "carol": carol, "mallory": mallory},
    )
