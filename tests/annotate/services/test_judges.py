"""AI judges against a real `transformers serve` (tests/annotate/judge_model.py, and the
session's random chat model): a judge's labeler account, each pair read in both orders into one
comparison, position bias cancelled, the reminder, unparsable readings counted and never
guessed, what reaches the endpoint, redundancy, cancel and resume, an endpoint's own errors."""

from __future__ import annotations

from collections import Counter

import pytest
from django.contrib.auth import get_user_model

from annotate.judging.rubric import judge_messages
from annotate.models import Comparison, JudgeVerdict, JudgingJob, Membership, Pair, Project
from annotate.services.judges import (
    JudgingConflict,
    JudgingInvalid,
    judge_add,
    judging_job_cancel,
    judging_job_create,
    judging_job_resume,
    project_default_rubric,
)
from annotate.services.judging_run import judging_job_execute
from tests.factories import ComparisonFactory, LeaseFactory, UserFactory, make_pair

pytestmark = pytest.mark.django_db

# The judge model answers to the last word of the rubric: ending in {response_1}, it prefers
# the response that ends in "good" whichever is shown first.
CONSISTENT = "Prompt: {prompt}\nSecond: {response_2}\nFirst: {response_1}"
# Ending in a plain word, its first reply is garbage; the format reminder mends it.
GARBAGE_FIRST = "{prompt} | {response_1} | {response_2} w3"


def _judge(project, server, name="tiny", **values):
    settings = {"base_url": server.base_url, "model": server.model, "max_tokens": 8}
    return judge_add(project=project, name=name, **{**settings, "concurrency": 2, **values})


def _run(project, judge, **options):
    job = judging_job_create(project=project, judge=judge.name, enqueue=False, **options)
    return judging_job_execute(job_id=job.pk)


def _readings(judge) -> dict[tuple[int, str], JudgeVerdict]:
    return {(v.pair_id, v.order): v for v in JudgeVerdict.objects.filter(judge=judge)}


def test_a_judge_is_a_labeler_account_that_cannot_sign_in(project, judge_server):
    judge = _judge(project, judge_server)
    user = judge.user
    assert user.username == "judge:demo:tiny"
    assert not user.has_usable_password() and user.first_name == "AI judge"
    assert Membership.objects.filter(project=project, user=user).exists()
    with pytest.raises(JudgingInvalid, match="already has a judge named 'tiny'"):
        _judge(project, judge_server)
    with pytest.raises(JudgingInvalid, match="base_url must be an http"):
        _judge(project, judge_server, name="b", base_url="ftp://h")
    with pytest.raises(JudgingInvalid, match=r"it lacks \{response_1\}, \{response_2\}"):
        _judge(project, judge_server, name="c", rubric="Which is better? {prompt}")
    with pytest.raises(JudgingInvalid, match="unknown judge settings: system_prompt"):
        _judge(project, judge_server, name="d", system_prompt="x")
    assert get_user_model().objects.filter(username__startswith="judge:").count() == 1


def test_each_pair_is_read_in_both_orders_into_one_comparison(project, judge_server):
    judge = _judge(project, judge_server, rubric=CONSISTENT)
    a_good = make_pair(project, "w1 w2", a="w5 good", b="w6 bad")
    b_good = make_pair(project, "w3 w4", a="w7 bad", b="w8 good")
    before = Project.objects.get(pk=project.pk).comparison_count

    job = _run(project, judge)

    assert job.status == "succeeded", job.error
    assert (job.done, job.total, job.comparisons_created, job.unparsable) == (2, 2, 2, 0)
    assert job.completion_tokens == 4 * 3 and job.prompt_tokens > 0
    readings = _readings(judge)
    # In B/A the judge's "2" (response 2 is A) is the pair's A.
    assert readings[(a_good.pk, "ab")].raw == "Verdict: 1"
    assert readings[(a_good.pk, "ba")].raw == "verdict: 2"
    assert {o: readings[(a_good.pk, o)].choice for o in ("ab", "ba")} == {"ab": "a", "ba": "a"}
    assert {o: readings[(b_good.pk, o)].choice for o in ("ab", "ba")} == {"ab": "b", "ba": "b"}
    assert all(v.attempts == 1 and v.p_a is None and v.job == job for v in readings.values())
    # `transformers serve` gives no logprobs: P comes from the two verdicts.
    made = {c.pair_id: c for c in Comparison.objects.filter(labeler=judge.user)}
    assert (made[a_good.pk].choice, made[a_good.pk].p_chosen) == ("a", 1.0)
    assert (made[b_good.pk].choice, made[b_good.pk].p_chosen) == ("b", 1.0)
    assert made[a_good.pk].source == "ai_judge" and not made[a_good.pk].is_gold_check
    assert made[a_good.pk].comment == "Read with A first (a)\n\nRead with B first (a)"
    assert Project.objects.get(pk=project.pk).comparison_count == before + 2
    # By default a judge takes no slot: people still label every pair.
    assert set(Pair.objects.values_list("human_count", "is_open")) == {(0, True)}


def test_a_judge_that_always_picks_the_first_response_cancels_out(project, judge_server):
    judge = _judge(project, judge_server)  # the default rubric: "Verdict: 1", always
    pair = make_pair(project, "w1", a="w2 good", b="w3 bad")
    job = _run(project, judge)
    assert job.status == "succeeded", job.error
    readings = _readings(judge)
    assert (readings[(pair.pk, "ab")].choice, readings[(pair.pk, "ba")].choice) == ("a", "b")
    comparison = Comparison.objects.get(labeler=judge.user)
    assert (comparison.choice, comparison.p_chosen) == ("tie", 0.5)


def test_a_reply_without_a_verdict_is_asked_again_once_with_a_reminder(
    project, judge_server, judge_requests
):
    judge = _judge(project, judge_server, rubric=GARBAGE_FIRST, max_tokens=4)
    pair = make_pair(project, "w1", a="w2", b="w9")
    job = _run(project, judge)
    assert job.status == "succeeded", job.error
    assert (job.unparsable, job.comparisons_created) == (0, 1)
    ab = _readings(judge)[(pair.pk, "ab")]
    assert (ab.attempts, ab.raw, ab.choice, ab.parse_error) == (2, "Verdict: 1", "a", "")
    assert ab.completion_tokens == 4 + 3
    bodies = judge_requests.bodies()
    assert len(bodies) == 4
    retry = next(b for b in bodies if len(b["messages"]) == 4)
    assert [m["role"] for m in retry["messages"]] == ["system", "user", "assistant", "user"]
    assert retry["messages"][2]["content"] == "w4 w5 w6 w7"
    reminder = retry["messages"][3]["content"]
    assert "its last line is not a verdict line: 'w4 w5 w6 w7'" in reminder
    assert "`Verdict: 1`, `Verdict: 2`, `Verdict: tie`, `Verdict: both bad`" in reminder


def test_unparsable_verdicts_are_counted_and_never_guessed(project, chat_server):
    # The random model's vocabulary has no "verdict": every reply is garbage, twice.
    judge = _judge(project, chat_server, max_tokens=4)
    pairs = [make_pair(project, f"w{i}", a=f"w{i + 1}", b=f"w{i + 2}") for i in range(3)]
    job = _run(project, judge)
    assert job.status == "succeeded", job.error
    assert (job.done, job.total, job.unparsable, job.comparisons_created) == (3, 3, 6, 0)
    assert not Comparison.objects.filter(labeler=judge.user).exists()
    readings = _readings(judge)
    assert len(readings) == 6
    for verdict in readings.values():
        assert verdict.choice == "" and verdict.attempts == 2
        assert verdict.parse_error.startswith("its last line is not a verdict line")
        assert verdict.raw.strip()
    # Read in both orders, they are done: a later job does not ask again.
    again = _run(project, judge)
    assert (again.status, again.total) == ("succeeded", 0)
    assert JudgeVerdict.objects.count() == 6 and {p.pk for p in pairs} == {
        v.pair_id for v in readings.values()
    }


def test_gold_votes_and_rewards_never_reach_the_endpoint(project, judge_server, judge_requests):
    judge = _judge(project, judge_server, rubric=CONSISTENT)
    pair = make_pair(project, "w1 w2 w3", a="w4 w5 good", b="w6 bad", gold="b", model_p_a=0.123456)
    ComparisonFactory(pair=pair, labeler=UserFactory(username="carol"), choice="b",
                      comment="peoples vote zebra")  # fmt: skip
    job = _run(project, judge)
    assert job.status == "succeeded", job.error

    bodies = judge_requests.bodies()
    assert len(bodies) == 2
    allowed = ("1", "2", "tie", "both bad")
    expected = [
        judge_messages(rubric=CONSISTENT, allowed=allowed, prompt="w1 w2 w3",
                       response_1=first, response_2=second)
        for first, second in (("w4 w5 good", "w6 bad"), ("w6 bad", "w4 w5 good"))
    ]  # fmt: skip
    assert sorted((b["messages"] for b in bodies), key=str) == sorted(expected, key=str)
    for body in bodies:
        assert set(body) <= {"model", "messages", "stream", "max_tokens", "logprobs",
                             "top_logprobs", "temperature", "top_p", "seed"}  # fmt: skip
        text = str(body)
        assert "w1 w2 w3" in text and "w4 w5 good" in text and "w6 bad" in text
        for secret in ("gold", "carol", "zebra", "0.123456", "reward"):
            assert secret not in text.lower()
    # Its comparison on a gold pair is a gold check, as a person's is.
    assert Comparison.objects.get(labeler=judge.user).is_gold_check


def test_a_judge_takes_a_slot_only_when_the_project_says_so(project, judge_server):
    project.judges_count_toward_redundancy = True
    project.redundancy = 2
    project.save()
    judge = _judge(project, judge_server, rubric=CONSISTENT)
    free = make_pair(project, "w1", a="w2 good", b="w3 bad")
    last_slot = make_pair(project, "w4", a="w5 good", b="w6 bad", human_count=1)
    leased = make_pair(project, "w7", a="w8 good", b="w9 bad", human_count=1)
    LeaseFactory(pair=leased, labeler=UserFactory())  # a person holds its last slot
    gold = make_pair(project, "w10", a="w11 good", b="w12 bad", gold="a")
    job = _run(project, judge)
    assert (job.status, job.comparisons_created) == ("succeeded", 4)
    counts = {p.pk: (p.human_count, p.is_open) for p in Pair.objects.all()}
    assert counts[free.pk] == (1, True)
    assert counts[last_slot.pk] == (2, False)
    assert counts[leased.pk] == (1, True)
    assert counts[gold.pk] == (0, True)


def test_a_job_reads_at_most_its_limit_of_open_pairs_skipping_ambiguous_ones(project, judge_server):
    judge = _judge(project, judge_server, rubric=CONSISTENT)
    make_pair(project, "w1", a="w2 good", b="w3 bad", is_open=False)
    make_pair(project, "w4", a="w5 good", b="w6 bad", ambiguous=True)
    wanted = [make_pair(project, f"w{i}", a="w20 good", b=f"w{i} bad") for i in range(7, 11)]
    job = _run(project, judge, limit=3, open_only=True)
    assert (job.status, job.total, job.done) == ("succeeded", 3, 3)
    assert set(JudgeVerdict.objects.values_list("pair_id", flat=True)) < {p.pk for p in wanted}
    with pytest.raises(JudgingInvalid, match="limit must be at least 1, not 0"):
        judging_job_create(project=project, judge="tiny", limit=0, enqueue=False)
    with pytest.raises(JudgingInvalid, match=r"no judge named zzz in demo \(it has: tiny\)"):
        judging_job_create(project=project, judge="zzz", enqueue=False)


def test_a_cancelled_job_resumes_where_it_stopped_and_reads_nothing_twice(
    project, judge_server, judge_requests
):
    # Each reading takes two requests (garbage, then the reminder), one at a time: the job
    # is still reading at the first progress tick, where it is cancelled.
    judge = _judge(project, judge_server, rubric=GARBAGE_FIRST, max_tokens=48, concurrency=1)
    for i in range(20):
        make_pair(project, f"w{i}", a=f"w{i + 1} good", b=f"w{i + 2} bad")
    job = judging_job_create(project=project, judge="tiny", enqueue=False)

    def cancel_once_reading(progress: JudgingJob) -> None:
        if progress.done >= 1 and not progress.cancel_requested:
            progress.cancel_requested = judging_job_cancel(job=job).cancel_requested

    job = judging_job_execute(job_id=job.pk, on_progress=cancel_once_reading)
    assert job.status == "cancelled"
    assert 0 < job.done < job.total == 20
    with pytest.raises(JudgingConflict):
        judging_job_cancel(job=job)
    read_before = JudgeVerdict.objects.count()
    assert job.comparisons_created == Comparison.objects.count() == job.done

    job = judging_job_execute(job_id=judging_job_resume(job=job, enqueue=False).pk)
    assert job.status == "succeeded", job.error
    assert (job.done, job.total, job.comparisons_created) == (20, 20, 20)
    keys = Counter(JudgeVerdict.objects.values_list("pair_id", "order"))
    assert len(keys) == 40 > read_before and set(keys.values()) == {1}
    assert Comparison.objects.filter(labeler=judge.user).count() == 20
    # Every reading asked for once over both runs (two requests each), bar any in flight
    # when the cancel came, whose replies were kept.
    assert len(judge_requests.bodies()) == 2 * 40
    with pytest.raises(JudgingConflict, match="only a cancelled or failed job resumes"):
        judging_job_resume(job=job)


def test_an_endpoint_that_refuses_fails_the_job_naming_the_judge(project, judge_server):
    judge = _judge(project, judge_server, name="wrong")
    type(judge).objects.filter(pk=judge.pk).update(model="no-such-model")
    make_pair(project, "w1", a="w2", b="w3")
    job = _run(project, judge)
    assert job.status == "failed"
    assert job.error.startswith("judge 'wrong': ") and "no-such-model" in job.error
    assert "answered 400" in job.error
    assert not Comparison.objects.exists()


def test_an_unreachable_endpoint_fails_the_job_naming_the_judge(project, settings):
    settings.GENERATION_MAX_RETRIES = 1
    judge = judge_add(project=project, name="gone", base_url="http://127.0.0.1:9/v1", model="m",
                      concurrency=1)  # fmt: skip
    make_pair(project, "w1", a="w2", b="w3")
    job = _run(project, judge)
    assert job.status == "failed"
    assert job.error.startswith("judge 'gone': could not reach http://127.0.0.1:9/v1")
    assert job.errors >= 2


def test_the_default_rubric_is_built_from_the_projects_instructions(project):
    project.instructions = "Prefer the w-word answer."
    project.allow_tie = False
    rubric = project_default_rubric(project)
    assert "Prefer the w-word answer." in rubric
    assert "{prompt}" in rubric and "{response_1}" in rubric and "{response_2}" in rubric
    assert "`Verdict: tie`" not in rubric and "`Verdict: both bad`" in rubric


def test_an_empty_reply_is_a_reply_without_a_verdict(project, judge_server, judge_requests):
    # Ending in "1", the judge model's first reply is its end-of-text token alone: the client
    # calls that an error for a generator, a judge is reminded of the format.
    rubric = "{prompt} {response_1} {response_2} 1"
    judge = _judge(project, judge_server, name="mute", rubric=rubric)
    pair = make_pair(project, "w1", a="w2", b="w3")
    job = _run(project, judge)
    assert (job.status, job.unparsable, job.comparisons_created) == ("succeeded", 0, 1), job.error
    ab = _readings(judge)[(pair.pk, "ab")]
    assert (ab.attempts, ab.raw, ab.choice) == (2, "Verdict: 1", "a")
    retry = next(b for b in judge_requests.bodies() if len(b["messages"]) == 4)
    assert retry["messages"][2]["content"] == ""
    assert retry["messages"][3]["content"].startswith("Your reply could not be read: the reply")
