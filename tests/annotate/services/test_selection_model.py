"""Active learning with a real (tiny) reward model: priority follows the model's uncertainty,
a promotion reorders the queue, new imports get scored, an ensemble scores by its spread."""

import json
from pathlib import Path

import pytest
import redis

from annotate.models import Lease, Pair
from annotate.services.imports import import_file
from annotate.services.labeling import pair_lease_next
from rewardtrain import tasks
from rewardtrain.core.scoring import RewardScorer
from rewardtrain.core.uncertainty import delta_entropy, ensemble_spread
from rewardtrain.models import ModelVersion
from rewardtrain.services import rescore_pairs, run_create, run_execute, scorer_for, triggers
from rewardtrain.services.pairs import ensemble_paths
from tests.factories import make_pair
from tests.rewardtrain.judged import add_judged_pairs, use_tiny_backbone
from tests.rewardtrain.queue_helpers import broker  # noqa: F401
from tests.rewardtrain.tiny import one_thread

pytestmark = pytest.mark.django_db

# Enough steps for the tiny BERT to learn that "good" beats "bad".
LEARN = {"epochs": 4, "learning_rate": 1e-3}


@pytest.fixture
def judged(project, labeler, backbone):
    """48 judged pairs ("good" beats "bad"), closed so that only the pairs a test adds queue."""
    use_tiny_backbone(project, backbone, **LEARN)
    pairs = add_judged_pairs(project, labeler, 48)
    Pair.objects.filter(pk__in=[p.pk for p in pairs]).update(is_open=False, human_count=1)
    return project


def train(project, **overrides):
    run, created = run_create(project=project, trigger="command", config_overrides=overrides)
    assert created
    with one_thread():
        run = run_execute(run_id=run.pk)
    assert run.status == "succeeded", run.error
    return ModelVersion.objects.get(run=run)


def first_served(project, labeler):
    lease = pair_lease_next(project=project, labeler=labeler)
    pair_id = lease.pair_id
    Lease.objects.filter(
        pk=lease.lease_id
    ).delete()  # handed back unjudged: the next call sees the same queue
    return pair_id


def test_a_promotion_rescores_and_the_unsure_pair_moves_first(judged, labeler):
    confident = make_pair(judged, "w1 w2 w3", a="good w4 good", b="bad w5 bad")
    unsure = make_pair(judged, "w6 w7 w8", a="good w9 good", b="good w10 good")
    # No model yet: equal priorities, the older pair first.
    assert first_served(judged, labeler) == confident.pk

    version = train(judged)
    assert version.is_active
    with one_thread():
        scored = triggers.project_rescore(project_id=judged.pk)  # the task after a promotion

    assert scored == 2
    confident.refresh_from_db()
    unsure.refresh_from_db()
    assert unsure.model_uncertainty > confident.model_uncertainty
    for pair in (confident, unsure):
        assert pair.priority == pair.model_uncertainty
        # One model: the binary entropy of sigma(r_a - r_b).
        p = pair.model_p_a
        assert pair.model_uncertainty == pytest.approx(delta_entropy(_logit(p)), abs=1e-9)
    assert confident.model_p_a > 0.5
    assert first_served(judged, labeler) == unsure.pk


def _logit(p):
    import math

    return math.log(p / (1 - p))


def test_imported_pairs_are_scored_when_a_model_is_active(
    judged,
    labeler,
    tmp_path,
    broker,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    version = train(judged)
    old = make_pair(judged, "w1 w2", a="good w3", b="bad w4")
    Pair.objects.filter(pk=old.pk).update(model_p_a=0.123, model_uncertainty=0.5, priority=0.5)
    path = tmp_path / "new.jsonl"
    rows = [
        {"prompt": f"w{i} w{i + 1}", "response_a": f"good w{i}", "response_b": f"bad w{i}"}
        for i in range(3)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    with django_capture_on_commit_callbacks(execute=True):
        import_file(project=judged, path=path)

    # The import queued one scoring task, for the new pairs only.
    assert redis.Redis.from_url(broker).llen("default") == 1
    new = Pair.objects.filter(project=judged, is_open=True, model_p_a__isnull=True)
    assert new.count() == 3
    with one_thread():
        scored = tasks.rescore_pairs(judged.pk, True)  # what the worker runs
    assert scored == 3
    assert not new.exists()
    old.refresh_from_db()
    assert old.model_p_a == 0.123  # scored pairs are left to the next promotion
    assert version.is_active


def test_an_ensemble_trains_its_members_and_scores_by_their_spread(judged, labeler):
    pair = make_pair(judged, "w1 w2", a="good w3 good", b="w4 w5")
    judged.ensemble_size = 2
    judged.save(update_fields=["ensemble_size"])

    version = train(judged)

    member = Path(version.path) / "members" / "1"
    assert ensemble_paths(version.path) == [Path(version.path), member]
    assert json.loads((member / "prefloop.json").read_text())["config"]["seed"] == 1
    with one_thread():
        rescore_pairs(project=judged)
    pair.refresh_from_db()
    deltas = []
    for scorer in (scorer_for(version=version), RewardScorer.load(member)):
        r_a, r_b = scorer.score(
            [pair.prompt.messages] * 2, [pair.response_a.text, pair.response_b.text]
        )
        deltas.append(r_a - r_b)
    assert deltas[0] != pytest.approx(deltas[1])
    assert pair.model_uncertainty == pytest.approx(ensemble_spread(deltas), abs=1e-5)
    assert pair.priority == pair.model_uncertainty
