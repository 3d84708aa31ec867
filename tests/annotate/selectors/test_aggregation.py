"""A project's aggregation through the front doors: the training rows and their snapshot,
the export's p_chosen and manifest, the quality API's labeler reliability and the review
queue, on a planted crowd stored as Comparisons."""

import json

import numpy as np
import pytest
from rest_framework.test import APIClient

from annotate.hashing import user_message
from annotate.models import Comparison, Pair, Project, Prompt, Response
from annotate.selectors.dataset import preference_rows
from annotate.selectors.quality import review_page
from annotate.services.exports import ExportOptions, dataset_export
from annotate.services.quality import quality_compute
from rewardtrain.selectors.runs import training_data
from tests.annotate.quality.planted import planted_crowd
from tests.factories import MembershipFactory, UserFactory, make_pair

pytestmark = pytest.mark.django_db


@pytest.fixture
def planted(project):
    """240 pairs, each judged by 3 of 8 honest and 6 careless labelers (two per kind)."""
    crowd = planted_crowd(seed=3, n_pairs=240, honest=8, per_kind=2)
    users = [UserFactory(username=f"{kind}-{w}") for w, kind in enumerate(crowd.kinds)]
    for user in users:
        MembershipFactory(project=project, user=user)
    pairs = bulk_pairs(project, len(crowd.truth))
    Comparison.objects.bulk_create(
        Comparison(
            pair=pairs[i],
            project=project,
            labeler=users[w],
            choice="a" if a else "b",
            left="a" if left else "b",
        )
        for i, w, a, left in zip(crowd.pair, crowd.worker, crowd.says_a, crowd.left, strict=True)
    )
    return crowd, users, pairs


def bulk_pairs(project, n):
    """n pairs in four statements (make_pair takes five per pair)."""
    prompts = Prompt.objects.bulk_create(
        Prompt(project=project, messages=user_message(f"Q{i}?"), content_hash=f"q{i}")
        for i in range(n)
    )
    responses = Response.objects.bulk_create(
        Response(prompt=prompt, text=f"{side}{i}", content_hash=f"{side}{i}")
        for i, prompt in enumerate(prompts)
        for side in "ab"
    )
    return Pair.objects.bulk_create(
        Pair(
            project=project, prompt=p, response_a=responses[2 * i], response_b=responses[2 * i + 1]
        )
        for i, p in enumerate(prompts)
    )


def aggregate(project, method):
    Project.objects.filter(pk=project.pk).update(aggregation=method)
    project.refresh_from_db()


def p_a_by_pair(project):
    return {
        r["pair_id"]: r["p_chosen"] if r["chosen_id"] < r["rejected_id"] else 1 - r["p_chosen"]
        for r in preference_rows(project)
    }


def brier(p_a, pairs, crowd):
    return np.mean([(p_a[p.id] - float(t)) ** 2 for p, t in zip(pairs, crowd.truth, strict=True)])


def right(p_a, pairs, crowd):
    return np.mean([(p_a[p.id] > 0.5) == t for p, t in zip(pairs, crowd.truth, strict=True)])


def test_training_labels_follow_the_projects_aggregation(project, planted):
    crowd, _users, pairs = planted
    majority = p_a_by_pair(project)
    for method in ("dawid_skene", "glad", "mace"):
        aggregate(project, method)
        posterior = p_a_by_pair(project)
        # Planted: majority 0.72 right, the models 0.79-0.82.
        assert right(posterior, pairs, crowd) >= right(majority, pairs, crowd) + 0.05, method
        assert brier(posterior, pairs, crowd) < brier(majority, pairs, crowd), method


def test_snapshot_and_export_record_the_aggregation(project, planted, tmp_path):
    before = training_data(project=project).snapshot()
    assert before["aggregation"] == "majority"
    aggregate(project, "dawid_skene")
    data = training_data(project=project)
    snap = data.snapshot()
    assert snap["aggregation"] == "dawid_skene"
    assert snap["content_hash"] != before["content_hash"]

    manifest = dataset_export(
        project=project, options=ExportOptions(format="trl"), out=tmp_path / "d.jsonl"
    )
    assert manifest["aggregation"] == "dawid_skene"
    assert manifest["snapshot"]["aggregation"] == "dawid_skene"
    assert manifest["snapshot"]["content_hash"] == snap["content_hash"]
    exported = {
        json.loads(line)["pair_id"]: json.loads(line)["p_chosen"]
        for line in (tmp_path / "d.jsonl").read_text().splitlines()
    }
    trained = {r["pair_id"]: r["p_chosen"] for s in data.splits.values() for r in s}
    assert exported == pytest.approx(trained)
    assert "Aggregation: `dawid_skene`" in (tmp_path / "d.jsonl.README.md").read_text()


def test_ties_count_half_beside_the_posterior(project, planted):
    crowd, users, _pairs = planted
    aggregate(project, "dawid_skene")
    pair = make_pair(project)
    honest, coin = users[0], users[crowd.kinds.index("coin_flip")]
    Comparison.objects.create(pair=pair, project=project, labeler=honest, choice="a")
    Comparison.objects.create(pair=pair, project=project, labeler=coin, choice="tie")
    both_bad = make_pair(project)
    for user in users[:2]:
        Comparison.objects.create(pair=both_bad, project=project, labeler=user, choice="both_bad")
    rows = {r["pair_id"]: r for r in preference_rows(project)}
    # One A vote (posterior q) and one tie: p(A) = (q + 1/2) / 2, strictly between 1/2 and 1.
    assert 0.5 < rows[pair.id]["p_chosen"] < 1.0
    assert rows[pair.id]["chosen_id"] == pair.response_a_id
    assert both_bad.id not in rows  # both bad is left out, as under majority


def test_quality_api_shows_reliability_beside_agreement(project, planted, staff):
    crowd, users, _pairs = planted
    aggregate(project, "dawid_skene")
    quality_compute(project_id=project.pk)
    client = APIClient()
    client.force_authenticate(staff)
    body = client.get(f"/api/projects/{project.slug}/quality/").json()
    assert body["aggregation"]["method"] == "dawid_skene"
    assert body["aggregation"]["model"] == "one-coin Dawid-Skene"
    by_name = {r["username"]: r for r in body["labelers"]}
    careless = [
        by_name[u.username]["reliability"] for u, c in zip(users, crowd.careless, strict=False) if c
    ]
    honest = [
        by_name[u.username]["reliability"]
        for u, c in zip(users, crowd.careless, strict=False)
        if not c
    ]
    assert max(careless) < min(honest)
    assert all("agreement_with_majority" in r for r in body["labelers"])

    client.force_login(staff)
    page = client.get(f"/projects/{project.slug}/quality/")
    assert "Reliability (one-coin Dawid-Skene)" in page.content.decode()


def test_review_queue_weighs_the_labelers(project, planted):
    crowd, users, _pairs = planted
    honest = users[int(np.argmax(np.where(crowd.careless, -1, crowd.accuracy)))]
    coin = users[crowd.kinds.index("coin_flip")]
    pair = make_pair(project)
    Comparison.objects.create(pair=pair, project=project, labeler=honest, choice="a")
    Comparison.objects.create(pair=pair, project=project, labeler=coin, choice="b")
    # Majority: a 1-1 split is listed.
    quality_compute(project_id=project.pk)
    assert pair.id in [item["pair_id"] for item in review_page(project=project, limit=500)["items"]]
    # Dawid-Skene believes the reliable labeler: no longer a split.
    aggregate(project, "dawid_skene")
    quality_compute(project_id=project.pk)
    listed = {item["pair_id"]: item for item in review_page(project=project, limit=500)["items"]}
    assert pair.id not in listed
