"""Gold pairs and swapped repeats served inside the labeling queue: their rates, what they
count toward, and that nothing in the page or API tells them apart."""

import random

import pytest
from rest_framework.test import APIClient
from scipy.stats import binom

from annotate.models import Choice, Comparison, Lease, Pair
from annotate.selectors.dataset import DatasetStats, preference_rows
from annotate.selectors.quality import project_quality
from annotate.services.labeling import comparison_create, pair_lease_next
from tests.factories import PromptFactory, ResponseFactory

pytestmark = pytest.mark.django_db


def pool(project, n, gold=0):
    """n ordinary open pairs and `gold` gold pairs whose known answer is A."""
    prompt = PromptFactory(project=project)
    responses = [ResponseFactory(prompt=prompt) for _ in range(n + gold + 1)]
    Pair.objects.bulk_create(
        Pair(
            project=project,
            prompt=prompt,
            response_a=responses[0],
            response_b=responses[i + 1],
            gold=Choice.A if i < gold else "",
        )
        for i in range(n + gold)
    )


def label(project, labeler, times, rng, choose=lambda lease: Choice.A):
    """Lease and judge `times` pairs; returns the leases in order."""
    leases = []
    for _ in range(times):
        lease = pair_lease_next(project=project, labeler=labeler, rng=rng)
        assert lease is not None
        leases.append((lease.pair_id, lease.left, lease.is_repeat, bool(lease.pair.gold)))
        comparison_create(pair=lease.pair, labeler=labeler, choice=choose(lease))
    return leases


def test_gold_pairs_are_served_at_the_gold_rate_and_each_only_once(project, labeler):
    project.gold_rate = 0.25
    project.save(update_fields=["gold_rate"])
    pool(project, 300, gold=150)
    leases = label(project, labeler, 200, random.Random(7))
    golds = [pair for pair, _left, _rep, gold in leases if gold]
    low, high = binom.interval(0.999, 200, 0.25)
    assert low <= len(golds) <= high
    assert len(set(golds)) == len(golds)
    checks = Comparison.objects.filter(labeler=labeler, is_gold_check=True)
    assert checks.count() == len(golds)
    # Gold checks take no redundancy slot: gold pairs stay servable to the next labeler.
    assert set(Pair.objects.filter(id__in=golds).values_list("human_count", flat=True)) == {0}


def test_swapped_repeats_come_later_with_the_sides_swapped_and_count_nowhere(project, labeler):
    project.repeat_rate = 0.2
    project.save(update_fields=["repeat_rate"])
    pool(project, 300)
    leases = label(project, labeler, 150, random.Random(3))
    repeats = [(i, pair, left) for i, (pair, left, rep, _g) in enumerate(leases) if rep]
    # No repeat is possible until the labeler has more than REPEAT_MIN_DISTANCE judgments.
    low, high = binom.interval(0.999, 150 - 6, 0.2)
    assert low <= len(repeats) <= high
    first_seen = {}
    for i, (pair, left, rep, _g) in enumerate(leases):
        if not rep:
            first_seen[pair] = (i, left)
    for i, pair, left in repeats:
        seen_at, seen_left = first_seen[pair]
        assert i - seen_at > 5
        assert left != seen_left
    assert len({pair for _i, pair, _left in repeats}) == len(repeats)
    stored = Comparison.objects.filter(labeler=labeler, is_repeat=True)
    assert stored.count() == len(repeats)
    assert all(c.left != first_seen[c.pair_id][1] for c in stored)
    # Repeats count nowhere: not in the project's counter, the pair's, or the dataset.
    assert project.__class__.objects.get(pk=project.pk).comparison_count == 150 - len(repeats)
    stats = DatasetStats()
    rows = list(preference_rows(project, stats=stats))
    assert len(rows) == 150 - len(repeats)
    assert stats.comparisons == 150 - len(repeats)


def test_self_consistency_comes_from_the_repeats(project, labeler):
    project.repeat_rate = 0.3
    project.save(update_fields=["repeat_rate"])
    pool(project, 100)

    def always_left(lease):
        return lease.left  # the response shown on the left, whichever it is

    label(project, labeler, 60, random.Random(11), choose=always_left)
    figures = project_quality(project=project, n_boot=50)
    me = next(row for row in figures["labelers"] if row["username"] == labeler.username)
    # Always picking the left side flips the answer on every swapped repeat.
    assert me["self_consistency"] == 0.0


def test_gold_and_repeats_look_like_any_other_pair_in_the_api(project, labeler):
    project.gold_rate = 0.5
    project.repeat_rate = 0.5
    project.save(update_fields=["gold_rate", "repeat_rate"])
    pool(project, 40, gold=20)
    client = APIClient()
    client.force_login(labeler)
    kinds, shapes = set(), set()
    for _ in range(30):
        body = client.get(f"/api/projects/{project.slug}/next/").json()
        lease = Lease.objects.get(pair_id=body["pair_id"], labeler=labeler)
        kinds.add("repeat" if lease.is_repeat else "gold" if lease.pair.gold else "plain")
        shapes.add(tuple(sorted(body)))
        text = str(body).lower()
        assert "gold" not in text and "repeat" not in text
        answer = client.post(
            "/api/comparisons/",
            {"pair_id": body["pair_id"], "preferred": body["responses"][0]["id"]},
            format="json",
        )
        assert answer.status_code == 201
    assert {"gold", "repeat"} <= kinds
    assert len(shapes) == 1
    page = client.get(f"/projects/{project.slug}/label/").content.decode().lower()
    assert "gold" not in page and "repeat" not in page


def test_gold_answers_import_with_the_pairs_and_bad_ones_are_named(project, tmp_path):
    from annotate.services.imports import ImportRejected, import_file

    good = tmp_path / "gold.jsonl"
    good.write_text(
        '{"prompt": "2+2?", "response_a": "5", "response_b": "4", "gold": "b"}\n'
        '{"prompt": "Sky?", "response_a": "Blue.", "response_b": "Green.", "gold": "a"}\n'
        '{"prompt": "Hi", "response_a": "Hello", "response_b": "Hey"}\n'
    )
    import_file(project=project, path=good)
    gold = {
        (p.prompt.text, getattr(p, f"response_{p.gold}").text if p.gold else "")
        for p in Pair.objects.filter(project=project)
    }
    assert gold == {("2+2?", "4"), ("Sky?", "Blue."), ("Hi", "")}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "Q", "response_a": "x", "response_b": "y", "gold": "left"}\n')
    with pytest.raises(ImportRejected) as rejected:
        import_file(project=project, path=bad)
    assert "line 1" in str(rejected.value.errors[0]).lower() or rejected.value.errors[0][0] == 1
    assert "gold must be one of" in str(rejected.value.errors)


class FixedDraw(random.Random):
    """An rng whose every draw is one given number."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def test_a_repeat_is_the_first_fit_at_or_after_a_random_key_wrapping_around(project, labeler):
    from django.utils import timezone

    from annotate.services.checks import repeat_lease

    pool(project, 10)
    label(project, labeler, 10, random.Random(1))
    mine = list(Comparison.objects.filter(labeler=labeler).order_by("created_at", "id"))
    # Keys 0.9, 0.8, ... 0.0 by age; the latest five are too recent to repeat, so the
    # eligible keys are 0.9, 0.8, 0.7, 0.6, 0.5 on the five oldest.
    for n, comparison in enumerate(mine):
        Comparison.objects.filter(pk=comparison.pk).update(random_key=(9 - n) / 10)

    def probe(draw: float):
        lease = repeat_lease(
            project=project, labeler=labeler, rng=FixedDraw(draw), now=timezone.now()
        )
        Lease.objects.filter(pk=lease.pk).delete()  # each probe on the same candidates
        return lease.pair_id

    assert probe(0.65) == mine[2].pair_id  # key 0.7: the first at or after the draw
    assert probe(0.95) == mine[4].pair_id  # past the last key: wraps to the lowest, 0.5
    assert probe(0.0) == mine[4].pair_id
    # A pair already repeated is skipped: the probe moves on to the next key.
    Comparison.objects.create(
        pair_id=mine[2].pair_id, project=project, labeler=labeler, choice=Choice.A, is_repeat=True
    )
    assert probe(0.65) == mine[1].pair_id
