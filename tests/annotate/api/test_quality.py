"""The quality figures through the front door: the API (staff only), the dashboard and review
pages, the review services (adjudicate, ambiguous) and excluding a labeler."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from annotate.models import Comparison, Membership, Pair, Response
from annotate.selectors.dataset import preference_rows
from annotate.selectors.quality import project_quality, review_page
from annotate.services.quality import quality_compute
from annotate.services.review import (
    membership_exclude,
    membership_include,
    pair_adjudicate,
    pair_mark_ambiguous,
)
from tests.annotate.quality.test_labelers import simulate
from tests.factories import MembershipFactory, UserFactory, make_pair

XSS = '<script>alert("pwned")</script>'


def vote(pair, user, choice, *, left="a", ms=8000, repeat=False, at=None):
    c = Comparison.objects.create(
        pair=pair,
        project=pair.project,
        labeler=user,
        choice=choice,
        left=left,
        time_spent_ms=ms,
        is_repeat=repeat,
    )
    if at is not None:
        Comparison.objects.filter(pk=c.pk).update(created_at=at)
    return c


def name_models(pair, model_a, model_b):
    Response.objects.filter(pk=pair.response_a_id).update(model_name=model_a)
    Response.objects.filter(pk=pair.response_b_id).update(model_name=model_b)


@pytest.fixture
def small(project):
    """Four pairs judged by bob and carol:
    p1 a/a (agree), p2 a/b (split), p3 b/b with the model at P(A) = 0.95 (contradicts),
    p4 a single tie."""
    project.redundancy = 2
    project.save()
    bob, carol = UserFactory(username="bob"), UserFactory(username="carol")
    for user in (bob, carol):
        MembershipFactory(project=project, user=user)
    p1 = make_pair(project, a="A short answer.", b="A much longer answer than the other.")
    p2 = make_pair(project, a=XSS, b="Plain answer.")
    p3 = make_pair(project, model_p_a=0.95)
    p4 = make_pair(project)
    for pair, (model_a, model_b) in zip(
        (p1, p2, p3, p4), [("m1", "m2"), ("m1", "m2"), ("m2", "m1"), ("m1", "m2")], strict=True
    ):
        name_models(pair, model_a, model_b)
    vote(p1, bob, "a"), vote(p1, carol, "a")
    vote(p2, bob, "a"), vote(p2, carol, "b")
    vote(p3, bob, "b"), vote(p3, carol, "b")
    vote(p4, bob, "tie")
    return {"p1": p1, "p2": p2, "p3": p3, "p4": p4, "bob": bob, "carol": carol}


def rows_by_pair(project):
    return {row["pair_id"]: row for row in preference_rows(project)}


def test_quality_api_shape_and_hand_values(project, staff, small):
    quality_compute(project_id=project.pk)
    client = APIClient()
    client.force_login(staff)
    response = client.get(f"/api/projects/{project.slug}/quality/")
    assert response.status_code == 200
    q = response.json()
    a = q["agreement"]
    # Pairable pairs [a, a], [a, b], [b, b]: percent agreement (1 + 0 + 1) / 3.
    assert a["percent"] == pytest.approx(0.6667, abs=1e-4)
    # Coincidences o_aa = 2, o_ab = o_ba = 1, o_bb = 2; n_a = n_b = 3, n = 6; observed 2,
    # expected 6^2 - 9 - 9 = 18: alpha = 1 - 5 * 2 / 18 = 4/9.
    assert a["krippendorff_alpha"] == pytest.approx(4 / 9, abs=1e-4)
    # Fleiss, 3 pairs x 2: P-bar = 2/3, p_a = p_b = 1/2, P_e = 1/2: kappa = 1/3.
    assert a["fleiss_kappa"] == pytest.approx(1 / 3, abs=1e-4)
    for key in ("percent_ci", "krippendorff_alpha_ci", "fleiss_kappa_ci"):
        assert len(a[key]) == 2
    labelers = {row["username"]: row for row in q["labelers"]}
    assert set(labelers) == {"bob", "carol"}
    for key in (
        "username",
        "comparisons",
        "agreement_with_majority",
        "gold_accuracy",
        "left_rate",
        "longer_rate",
        "median_seconds",
        "self_consistency",
        "labels_per_hour",
        "model_agreement",
        "flags",
    ):
        assert key in labelers["bob"]
    assert labelers["bob"]["comparisons"] == 4
    assert labelers["bob"]["median_seconds"] == 8.0
    # bob's others' majority: p1 a (agrees), p2 b (disagrees), p3 b (agrees), p4 none.
    assert labelers["bob"]["agreement_with_majority"] == pytest.approx(2 / 3, abs=1e-4)
    assert labelers["bob"]["gold_accuracy"] is None
    # The model said A on p3 (P = 0.95); bob said b there.
    assert labelers["bob"]["model_agreement"] == 0.0
    assert q["progress"] == {
        "pairs_total": 4,
        "pairs_complete": 0,
        "share": 0.0,
        "redundancy": 2,
    }
    assert q["queue_depth"] == 4 and q["judgments_needed"] == 8
    assert q["review_queue"]["size"] == 2
    assert [item["pair_id"] for item in q["review_queue"]["items"]] == [
        small["p3"].pk,
        small["p2"].pk,
    ]
    # Leaderboard: m1 wins p1 twice, p2 once, p3 twice (as response_b), ties p4: 5.5 of 7.
    board = q["leaderboard"]
    assert [m["model"] for m in board["models"]] == ["m1", "m2"]
    assert board["win_rate"][0][1] == pytest.approx(5.5 / 7, abs=1e-4)
    assert board["battles"] == 7
    assert {"throughput", "eta_hours", "pace_per_hour", "bands"} <= set(q)
    assert q["status"] == "ready" and q["computed_at"] and q["comparisons_since"] == 0


def test_quality_api_is_for_staff_only(project, labeler, small):
    client = APIClient()
    url = f"/api/projects/{project.slug}/quality/"
    assert client.get(url).status_code in (401, 403)
    client.force_login(labeler)
    assert client.get(url).status_code == 403
    staff = UserFactory(username="boss", is_staff=True)
    client.force_login(staff)
    assert client.get("/api/projects/nope/quality/").status_code == 404


def test_fleiss_kappa_is_null_when_undefined(project, staff, small):
    # With every judgment the same, chance agreement is 1 and kappa and alpha divide by zero.
    Comparison.objects.filter(project=project).update(choice="a")
    q = project_quality(project=project, n_boot=50)
    assert q["agreement"]["fleiss_kappa"] is None
    assert q["agreement"]["krippendorff_alpha"] is None
    assert q["agreement"]["percent"] == 1.0


def test_excluding_a_labeler_changes_the_dataset_and_deletes_nothing(project, small):
    before = rows_by_pair(project)
    stored = Comparison.objects.count()
    p2 = small["p2"].pk
    assert before[p2]["tie"] is True  # bob a, carol b

    membership_exclude(project=project, user=small["carol"], reason="left-clicker")
    after = rows_by_pair(project)
    assert after[p2]["tie"] is False
    assert after[p2]["chosen_id"] == small["p2"].response_a_id
    assert after[p2]["n"] == 1
    assert Comparison.objects.count() == stored
    membership = Membership.objects.get(project=project, user=small["carol"])
    assert membership.excluded and membership.excluded_reason == "left-clicker"
    q = project_quality(project=project, n_boot=50)
    carol = next(row for row in q["labelers"] if row["username"] == "carol")
    assert carol["excluded"] is True and carol["comparisons"] == 3
    assert q["agreement"]["pairs"] == 0  # only bob's votes count now

    membership_include(project=project, user=small["carol"])
    assert rows_by_pair(project) == before
    assert Comparison.objects.count() == stored


def test_adjudication_becomes_the_label(project, staff, small):
    p2 = small["p2"]
    comparison = pair_adjudicate(pair=p2, staff=staff, choice="b", strength=2)
    assert comparison.source == Comparison.Source.ADJUDICATION
    assert comparison.labeler == staff and comparison.strength == 2
    row = rows_by_pair(project)[p2.pk]
    assert row["adjudicated"] is True
    assert row["chosen_id"] == p2.response_b_id
    p2.refresh_from_db()
    assert p2.is_open is False
    project.refresh_from_db()
    assert project.comparison_count == 1  # counted by the service (the votes were raw rows)
    # Resolved pairs leave the review queue; the labelers' votes stay stored.
    assert p2.pk not in [
        i["pair_id"] for i in project_quality(project=project)["review_queue"]["items"]
    ]
    assert Comparison.objects.filter(pair=p2, source="human").count() == 2
    # Adjudicating again changes the ruling in place.
    again = pair_adjudicate(pair=p2, staff=staff, choice="a")
    assert again.pk == comparison.pk and again.strength is None
    assert rows_by_pair(project)[p2.pk]["chosen_id"] == p2.response_a_id
    assert Comparison.objects.filter(pair=p2, source="adjudication").count() == 1


def test_adjudication_refusals(project, staff, small):
    with pytest.raises(PermissionDenied):
        pair_adjudicate(pair=small["p2"], staff=small["bob"], choice="a")
    with pytest.raises(ValidationError):
        pair_adjudicate(pair=small["p2"], staff=staff, choice="left")
    with pytest.raises(ValidationError):
        pair_adjudicate(pair=small["p2"], staff=staff, choice="a", strength=9)
    vote(small["p4"], staff, "a")
    with pytest.raises(ValidationError, match="another staff member"):
        pair_adjudicate(pair=small["p4"], staff=staff, choice="b")
    assert not Comparison.objects.filter(source="adjudication").exists()


def test_marking_ambiguous_leaves_the_pair_out_of_training(project, staff, small):
    quality_compute(project_id=project.pk)
    assert review_page(project=project)["size"] == 2
    p3 = small["p3"]
    assert p3.pk in rows_by_pair(project)
    pair_mark_ambiguous(pair=p3, staff=staff)
    p3.refresh_from_db()
    assert p3.ambiguous and not p3.is_open
    assert p3.pk not in rows_by_pair(project)
    assert Comparison.objects.filter(pair=p3).count() == 2
    assert review_page(project=project)["size"] == 1
    with pytest.raises(PermissionDenied):
        pair_mark_ambiguous(pair=p3, staff=small["bob"])
    # Resolving it later is the opposite decision.
    pair_adjudicate(pair=p3, staff=staff, choice="b")
    p3.refresh_from_db()
    assert not p3.ambiguous
    assert rows_by_pair(project)[p3.pk]["adjudicated"]


def test_progress_pace_and_eta(project):
    project.redundancy = 2
    project.save()
    pairs = [make_pair(project) for _ in range(10)]
    for pair in pairs[:3]:
        Pair.objects.filter(pk=pair.pk).update(human_count=2, is_open=False)
    for pair in pairs[3:5]:
        Pair.objects.filter(pk=pair.pk).update(human_count=1)
    now = timezone.now()
    users = [UserFactory() for _ in range(12)]
    # 12 labels over the last 6 hours (the first exactly 6 hours ago): 2 per hour.
    for i, user in enumerate(users):
        vote(pairs[i % 10], user, "a", at=now - timedelta(hours=6) + timedelta(minutes=30 * i))
    vote(pairs[0], UserFactory(), "b", at=now - timedelta(days=3))  # too old for the pace
    project.refresh_from_db()  # make_pair keeps the pair_count counter in the database
    q = project_quality(project=project, n_boot=50, now=now)
    assert q["progress"]["pairs_complete"] == 3 and q["progress"]["pairs_total"] == 10
    assert q["queue_depth"] == 7
    # Still needed: 2 pairs x 1 + 5 pairs x 2 = 12 judgments; at 2 per hour, 6 hours.
    assert q["judgments_needed"] == 12
    assert q["pace_per_hour"] == pytest.approx(2.0)
    assert q["eta_hours"] == pytest.approx(6.0)
    assert q["throughput"]["bucket"] == "day"
    assert sum(point["count"] for point in q["throughput"]["series"]) == 13


def test_dashboard_and_review_pages_escape_model_output(client, project, staff, small):
    Response.objects.filter(pk=small["p2"].response_b_id).update(model_name="<b>m2</b>")
    quality_compute(project_id=project.pk)
    client.force_login(staff)
    for name in ("project-quality", "project-review"):
        page = client.get(reverse(name, args=[project.slug]))
        assert page.status_code == 200
        html = page.content.decode()
        assert "<script>alert" not in html
        assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in html
        assert "<b>m2</b>" not in html
    dashboard = client.get(reverse("project-quality", args=[project.slug])).content.decode()
    assert "<svg" in dashboard and "carol" in dashboard
    assert "Review queue (2)" in dashboard


def test_pages_are_for_staff_only(client, project, labeler, small):
    client.force_login(labeler)
    assert client.get(reverse("project-quality", args=[project.slug])).status_code == 403
    assert client.get(reverse("project-review", args=[project.slug])).status_code == 403
    url = reverse("project-review-resolve", args=[project.slug, small["p2"].pk])
    assert client.post(url, {"action": "resolve", "choice": "a"}).status_code == 403
    assert not Comparison.objects.filter(source="adjudication").exists()


def test_labeler_page_shows_their_figures_flags_and_latest_judgments(
    client, project, staff, labeler, small
):
    quick = UserFactory(username="quick")
    MembershipFactory(project=project, user=quick)
    # Five quick judgments: enough (the bands' min_count) to be flagged.
    for pair in (small["p1"], small["p2"], small["p3"], small["p4"], make_pair(project)):
        vote(pair, quick, "a", left="a", ms=900)
    quality_compute(project_id=project.pk)
    client.force_login(staff)
    url = reverse("project-quality-labeler", args=[project.slug, quick.pk])

    html = client.get(url).content.decode()

    assert "quick ·" in html
    # The dashboard's flags, with their reasons.
    assert "too_fast" in html and "Median 0.9 s per comparison" in html
    # Each judgment beside the other labelers' counted votes on its pair (bob a, carol b).
    assert html.count('<tr><td class="nowrap">') == 5
    assert "a 1 · b 1" in html
    assert "<script>alert" not in html  # the prompt and model names are escaped
    # Linked from the dashboard.
    dashboard = client.get(reverse("project-quality", args=[project.slug])).content.decode()
    assert f'href="{url}"' in dashboard
    # Someone who judged nothing here has no page; labelers see no one's.
    assert (
        client.get(reverse("project-quality-labeler", args=[project.slug, staff.pk])).status_code
        == 404
    )
    client.force_login(labeler)
    assert client.get(url).status_code == 403


def test_staff_forms_exclude_include_resolve_and_mark_ambiguous(client, project, staff, small):
    client.force_login(staff)
    carol = small["carol"]
    url = reverse("project-quality-labeler", args=[project.slug, carol.pk])
    assert client.post(url, {"action": "exclude", "reason": "spam"}).status_code == 302
    assert Membership.objects.get(project=project, user=carol).excluded
    client.post(url, {"action": "include"})
    assert not Membership.objects.get(project=project, user=carol).excluded

    resolve = reverse("project-review-resolve", args=[project.slug, small["p2"].pk])
    assert client.post(resolve, {"action": "resolve", "choice": "b"}).status_code == 302
    assert Comparison.objects.get(pair=small["p2"], source="adjudication").choice == "b"
    ambiguous = reverse("project-review-resolve", args=[project.slug, small["p3"].pk])
    client.post(ambiguous, {"action": "ambiguous"})
    assert Pair.objects.get(pk=small["p3"].pk).ambiguous
    # A bad choice is refused with a message, not stored.
    client.post(
        reverse("project-review-resolve", args=[project.slug, small["p4"].pk]), {"choice": "x"}
    )
    assert not Comparison.objects.filter(pair=small["p4"], source="adjudication").exists()


def test_simulated_labelers_through_the_api(project, staff):
    """The planted labelers of the plain test, stored as comparisons and read by the API."""
    kinds, _truth, facts, named = simulate(pairs_n=80, gold_n=25, repeats_n=15)
    users = {name: UserFactory(username=name) for name in kinds}
    pairs = {}
    for p, fact in facts.items():
        short, long = f"Short {p}.", f"A longer answer to question {p}, with detail."
        a, b = (long, short) if fact.longer == "a" else (short, long)
        pairs[p] = make_pair(project, a=a, b=b, gold=fact.gold)
    Comparison.objects.bulk_create(
        Comparison(
            pair=pairs[j.pair_id],
            project=project,
            labeler=users[name],
            choice=j.choice,
            left=j.left,
            time_spent_ms=int(j.seconds * 1000),
            is_repeat=j.is_repeat,
        )
        for name, j in named
    )
    quality_compute(project_id=project.pk)
    client = APIClient()
    client.force_login(staff)
    q = client.get(f"/api/projects/{project.slug}/quality/").json()
    codes = {row["username"]: {f["code"] for f in row["flags"]} for row in q["labelers"]}
    assert codes["good"] == set()
    assert "left_bias" in codes["lefty"]
    assert "gold" in codes["coin"]
    assert "length_bias" in codes["verbose"]
    by_name = {row["username"]: row for row in q["labelers"]}
    assert by_name["lefty"]["self_consistency"] == 0.0
    assert by_name["good"]["gold_accuracy"] >= 0.8
