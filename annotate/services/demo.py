"""The demo data of `make run` (the seed_demo command): two accounts and two projects, created
through the same services as real data, and safe to create again.

- "demo": 42 open pairs to try the labeling page on.
- "rank-demo": 12 prompts, each with sets of 4 answers to rank and rate on HelpSteer2's five
  aspects (the ranking and rating page).
- "loop-demo": the whole loop at once. Six named source models answer 30 prompts; five
  simulated labelers judged most of the pairs through the real lease and submit services (one
  of them carelessly, so the quality page flags someone), with gold pairs and swapped repeats
  served among them. Auto-retrain is on, so the reward model app finds the project due for
  its first training run (`manage.py retrain_due`, which `make run` calls after seeding).
"""

from __future__ import annotations

import json
import random
import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

import annotate
from annotate import demo_world
from annotate.models import Comparison, Project, TaskKind, random_keys_seeded
from annotate.services.catalog import project_get_or_create
from annotate.services.imports import import_file
from annotate.services.labeling import comparison_submit, pair_lease_next
from annotate.services.projects import membership_create
from annotate.services.rankings import project_task_set

DEMO_PAIRS = Path(annotate.__file__).parent / "fixtures" / "demo_pairs.jsonl"
LOOP_SLUG = "loop-demo"
# Leases the simulated labelers take in all: about 240 of the 308 pairs reach their two
# judgments, the rest stay open for active learning to order.
LOOP_LEASES = 600
# Small enough that the first run of the bundled MiniLM ends in about a minute on 2 idle CPU
# cores: one epoch over ~235 training pairs (15 steps of 16) at twice the usual learning rate,
# and 96 tokens, which hold every prompt with its answer here (measured: 68 s of CPU time,
# test accuracy 0.86 on 16 held-out pairs).
LOOP_TRAINING_CONFIG = {"epochs": 1, "learning_rate": 1e-4, "max_length": 96, "batch_size": 16}
INSTRUCTIONS = """Compare the two responses to the prompt and pick the **better** one.

- Prefer responses that are **correct**, then **helpful**, then **clear and concise**.
- A response that is confidently wrong is worse than one that is brief but right.
- Use **tie** when neither is better, and **both bad** when neither is acceptable.
- Then say how much better it is. Reasons and a comment are optional but help a lot.

Responses are model output: links and HTML in them are shown as text on purpose.
"""
REASON_TAGS = ["more accurate", "more helpful", "clearer", "safer", "more concise"]
RANK_SLUG = "rank-demo"
RANK_PROMPTS = 12
RANK_INSTRUCTIONS = """Read the four answers to the prompt, then:

- **Rate** each one on every aspect (hover an aspect's name for what it means; 0 is worst).
- **Rank** them, best first. Answers equally good may be tied; mark **all bad** when none is
  acceptable.

Responses are model output: links and HTML in them are shown as text on purpose.
"""


@dataclass
class ProjectSeeded:
    slug: str
    pairs: int
    pairs_added: int
    comparisons: int
    comparisons_added: int


@dataclass
class DemoSeeded:
    # (username, password to show, or None when it was changed since it was seeded)
    accounts: list[tuple[str, str | None]] = field(default_factory=list)
    projects: list[ProjectSeeded] = field(default_factory=list)
    loop: Project | None = None


def _account(username: str, password: str, *, staff: bool) -> tuple[AbstractBaseUser, bool]:
    User = get_user_model()
    user, created = User.objects.get_or_create(
        username=username, defaults={"is_staff": staff, "is_superuser": staff}
    )
    if created:
        user.set_password(password)
        user.save(update_fields=["password"])
    return user, created


def _import_rows(
    project: Project, name: str, rows: list[dict[str, Any]], by: AbstractBaseUser
) -> int:
    """Import generated rows as a file named `name` (once: a file already imported is skipped,
    which also keeps a re-run from logging an empty import batch)."""
    if project.imports.filter(file_name=name).exists():
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        return import_file(project=project, path=path, created_by=by).pairs_created


def demo_seed(*, admin_password: str, labeler_password: str) -> DemoSeeded:
    """Create (or find) the demo accounts and both demo projects; nothing is added twice."""
    seeded = DemoSeeded()
    accounts = {}
    for username, password, staff in (
        ("admin", admin_password, True),
        ("labeler", labeler_password, False),
    ):
        user, new = _account(username, password, staff=staff)
        accounts[username] = user
        shown = password if new or user.check_password(password) else None
        seeded.accounts.append((username, shown))
    admin, labeler = accounts["admin"], accounts["labeler"]

    seeded.projects.append(_simple_demo(admin=admin, labeler=labeler))
    seeded.projects.append(_rank_demo(admin=admin, labeler=labeler))
    loop, loop_seeded = loop_demo_seed(staff=admin, members=[admin, labeler])
    seeded.projects.append(loop_seeded)
    seeded.loop = loop
    return seeded


def _simple_demo(*, admin: AbstractBaseUser, labeler: AbstractBaseUser) -> ProjectSeeded:
    project, created = project_get_or_create(slug="demo", name="Demo: which answer is better?")
    if created:
        project.instructions = INSTRUCTIONS
        project.ask_strength = True
        project.reason_tags = REASON_TAGS
        project.save()
    for user in (admin, labeler):
        membership_create(project=project, user=user)
    added = 0
    if not project.imports.filter(file_name=DEMO_PAIRS.name).exists():
        added = import_file(project=project, path=DEMO_PAIRS, created_by=admin).pairs_created
    project.refresh_from_db()
    return ProjectSeeded(project.slug, project.pair_count, added, project.comparison_count, 0)


def _rank_demo(*, admin: AbstractBaseUser, labeler: AbstractBaseUser) -> ProjectSeeded:
    """The ranking and rating demo: the loop demo's first prompts with their candidate answers,
    imported into a project that ranks and rates sets of four (the import makes the sets)."""
    project, created = project_get_or_create(slug=RANK_SLUG, name="Demo: rank and rate answers")
    if created:
        project.instructions = RANK_INSTRUCTIONS
        project.save(update_fields=["instructions"])
        project_task_set(project=project, task_kind=TaskKind.RANKING_RATING, ranking_size=4)
    for user in (admin, labeler):
        membership_create(project=project, user=user)
    rows, _ = demo_world.candidates_rows()
    added = _import_rows(project, "rank-demo-candidates.jsonl", rows[:RANK_PROMPTS], admin)
    project.refresh_from_db()
    return ProjectSeeded(project.slug, project.pair_count, added, project.comparison_count, 0)


@transaction.atomic
def loop_demo_seed(
    *, staff: AbstractBaseUser, members: list[AbstractBaseUser], seed: int = 7
) -> tuple[Project, ProjectSeeded]:
    """The loop demo project, its pairs and the simulated labelers' judgments: all or nothing,
    and a project that already has judgments is left as it is."""
    project, created = project_get_or_create(
        slug=LOOP_SLUG, name="Demo: the whole loop (simulated labelers)"
    )
    if created:
        project.instructions = INSTRUCTIONS
        project.ask_strength = True
        project.reason_tags = REASON_TAGS
        project.redundancy = 2
        project.gold_rate = 0.06
        project.repeat_rate = 0.05
        project.training_config = dict(LOOP_TRAINING_CONFIG)
        project.auto_retrain = True
        project.retrain_min_new_comparisons = 50
        project.save()
    for user in members:
        membership_create(project=project, user=user)

    rows, quality = demo_world.candidates_rows(seed)
    gold, gold_quality = demo_world.gold_rows()
    # Seeded random keys too: the mixed queue's random share and the repeat checks draw by
    # them, so the same seed gives the same demo on every machine.
    with random_keys_seeded(seed):
        added = _import_rows(project, "loop-demo-candidates.jsonl", rows, staff)
        added += _import_rows(project, "loop-demo-gold.jsonl", gold, staff)
        before = project.comparisons.count()
        if before == 0:
            _simulate_labelers(project, {**quality, **gold_quality}, random.Random(seed))
    project.refresh_from_db()
    made = project.comparison_count - before
    return project, ProjectSeeded(
        project.slug, project.pair_count, added, project.comparison_count, max(made, 0)
    )


def _simulate_labelers(project: Project, quality: dict[str, int], rng: random.Random) -> None:
    """The simulated labelers take LOOP_LEASES leases between them, each as a labeler would:
    lease the next pair, read it in the order shown, submit."""
    User = get_user_model()
    users = {}
    for sim in demo_world.LABELERS:
        # Simulated people: accounts nobody can log in to.
        user = User.objects.filter(username=sim.username).first()
        users[sim.username] = user or User.objects.create_user(username=sim.username)
        membership_create(project=project, user=users[sim.username])
    weights = [sim.share for sim in demo_world.LABELERS]
    levels = len(project.strength_scale)
    for _ in range(LOOP_LEASES):
        sim = rng.choices(demo_world.LABELERS, weights=weights)[0]
        user = users[sim.username]
        lease = pair_lease_next(project=project, labeler=user, rng=rng)
        if lease is None:
            continue
        pair = lease.pair
        shown = (
            (pair.response_a, pair.response_b)
            if lease.left == "a"
            else (pair.response_b, pair.response_a)
        )
        verdict = demo_world.judge(
            sim,
            quality[shown[0].text],
            quality[shown[1].text],
            rng,
            levels,
            # The pair's content, not its id: ids differ from database to database.
            pair_key=":".join(sorted((pair.response_a.content_hash, pair.response_b.content_hash))),
        )
        preferred = (
            shown[verdict.preferred].pk if isinstance(verdict.preferred, int) else verdict.preferred
        )
        comparison_submit(
            labeler=user,
            pair_id=pair.pk,
            preferred=preferred,
            strength=verdict.strength,
            time_spent_ms=verdict.time_spent_ms,
        )
    _spread_over_days(project, rng)


def _spread_over_days(project: Project, rng: random.Random, days: int = 3) -> None:
    """Date each simulated judgment as if its labeler had worked in a few sittings over the
    last `days` days (the simulation itself takes seconds): the pace, the labels per hour and
    the throughput chart then read as they would for real work. Only the timestamps move."""
    now = timezone.now()
    for sim in demo_world.LABELERS:
        own = list(
            Comparison.objects.filter(project=project, labeler__username=sim.username).order_by(
                "pk"
            )
        )
        sitting = max(1, len(own) // days + 1)
        for i, comparison in enumerate(own):
            if i % sitting == 0:
                # Sittings 2.5, 1.5 and 0.5 days ago (give or take 3 hours).
                ago = days - i // sitting - 0.5
                at = now - timedelta(days=ago, hours=rng.uniform(-3, 3))
            at += timedelta(milliseconds=comparison.time_spent_ms or 0) + timedelta(
                seconds=rng.uniform(2, 6)
            )
            comparison.created_at = at
        Comparison.objects.bulk_update(own, ["created_at"], batch_size=200)
