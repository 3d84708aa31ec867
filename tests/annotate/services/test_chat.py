"""Live conversations against a real `transformers serve` (the session's chat_server): each turn
stored as a Prompt holding the conversation so far, two Responses with their provenance, a Pair
and the labeler's Comparison; replies streamed; a stopped or slow endpoint shown as an error
that names its generator, with nothing stored; Retry keeping the reply that came; Arena mode's
separate histories feeding the leaderboard; the HH export of a chat turn."""

from __future__ import annotations

import json

import pytest

from annotate.models import Comparison, Lease, Pair, Project, Prompt, Response
from annotate.selectors.quality import quality_figures
from annotate.services.chat import (
    ChatInvalid,
    chat_turn_plan,
    chat_turn_stream,
    chat_vote,
    conversation_read,
)
from annotate.services.exports import ExportOptions, dataset_export
from annotate.services.generation import generator_create
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def second_chat_server(tmp_path_factory):
    """Another `transformers serve` with another tiny model (another name): Arena's two
    models, which the leaderboard ranks by Response.model_name."""
    from scripts.chat_server import ChatServer
    from tests.rewardtrain.tiny import make_chat_lm

    folder = tmp_path_factory.mktemp("chat-other")
    model = make_chat_lm(folder / "other-chat", seed=1)
    server = ChatServer(model=str(model), log=folder / "serve.log").start()
    try:
        yield server
    finally:
        server.stop()


def _generator(project, server, name: str, **values):
    defaults = {"temperature": 1.0, "max_tokens": 6}
    return generator_create(
        project=project,
        name=name,
        base_url=server.base_url,
        model=server.model,
        **{**defaults, **values},
    )


def _turn(project, labeler, message: str, **request) -> list[dict]:
    plan = chat_turn_plan(project=project, labeler=labeler, message=message, **request)
    return list(chat_turn_stream(plan=plan))


def _streamed(events: list[dict], side: str) -> str:
    return "".join(e["text"] for e in events if e["type"] == "text" and e["side"] == side)


def _stored_turn(events: list[dict]) -> dict:
    ends = [e for e in events if e["type"] in ("turn", "failed")]
    assert len(ends) == 1 and ends[0]["type"] == "turn", events
    return ends[0]


def test_two_turns_store_two_pairs_holding_the_conversation_so_far(
    project, labeler, chat_server, tmp_path
):
    _generator(project, chat_server, "alpha")
    _generator(project, chat_server, "beta", temperature=0.7)

    first = _turn(project, labeler, "Hello there", mode="hh", generators="alpha,beta")
    turn = _stored_turn(first)
    pair = Pair.objects.get(pk=turn["pair_id"])
    assert pair.prompt.messages == [{"role": "user", "content": "Hello there"}]
    conversation = pair.prompt.metadata["conversation"]
    assert pair.prompt.metadata == {"conversation": conversation, "turn": 1, "mode": "hh"}
    # What streamed is what was stored, each side's reply by its own generator.
    lease = Lease.objects.get(pair=pair, labeler=labeler)
    left, right = (
        (pair.response_a, pair.response_b)
        if lease.left == "a"
        else (pair.response_b, pair.response_a)
    )
    assert _streamed(first, "left") == left.text and _streamed(first, "right") == right.text
    assert {left.generator.name, right.generator.name} == {"alpha", "beta"}
    for response in (left, right):
        assert response.model_name == chat_server.model
        assert response.completion_tokens == 6 and response.prompt_tokens > 0
        assert response.latency_ms > 0 and response.sampling["max_tokens"] == 6
        assert isinstance(response.sampling["seed"], int)
        assert response.metadata["conversation"] == conversation
    assert not Comparison.objects.exists()  # stored only when the labeler chooses

    voted = chat_vote(project=project, labeler=labeler, turn=turn["turn"], choice="right")
    assert voted["joined"] == "right" and voted["turns"] == 1
    assert {voted["reveal"]["left"]["generator"], voted["reveal"]["right"]["generator"]} == {
        "alpha",
        "beta",
    }
    comparison = Comparison.objects.get(pair=pair, labeler=labeler)
    assert comparison.choice == ("a" if right == pair.response_a else "b")
    assert comparison.left == lease.left  # the side the page showed on the left
    assert Project.objects.get(pk=project.pk).comparison_count == 1

    second = _turn(project, labeler, "Tell me more.", state=voted["state"])
    turn = _stored_turn(second)
    pair2 = Pair.objects.get(pk=turn["pair_id"])
    assert pair2.prompt.messages == [
        {"role": "user", "content": "Hello there"},
        {"role": "assistant", "content": right.text},  # the chosen reply joined
        {"role": "user", "content": "Tell me more."},
    ]
    assert pair2.prompt.metadata == {"conversation": conversation, "turn": 2, "mode": "hh"}
    voted = chat_vote(project=project, labeler=labeler, turn=turn["turn"], choice="left")
    assert Comparison.objects.filter(labeler=labeler).count() == 2
    state = conversation_read(token=voted["state"], project=project, labeler=labeler)
    assert state.turns == 2 and state.histories[0][-1]["role"] == "assistant"

    # The HH export of the second turn is Anthropic's: the whole transcript, chosen last.
    stored2 = Comparison.objects.get(pair=pair2, labeler=labeler)
    chosen = pair2.response_a if stored2.choice == "a" else pair2.response_b
    rejected = pair2.response_b if stored2.choice == "a" else pair2.response_a
    out = tmp_path / "hh.jsonl"
    dataset_export(project=project, options=ExportOptions(format="hh"), out=out)
    rows = {r["pair_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    head = f"\n\nHuman: Hello there\n\nAssistant: {right.text}\n\nHuman: Tell me more."
    assert rows[pair2.pk]["chosen"] == f"{head}\n\nAssistant: {chosen.text}"
    assert rows[pair2.pk]["rejected"] == f"{head}\n\nAssistant: {rejected.text}"


def test_one_generator_sampled_twice_gives_two_replies_with_their_own_seeds(
    project, labeler, chat_server
):
    _generator(project, chat_server, "alpha", max_tokens=8)
    turn = _stored_turn(_turn(project, labeler, "Hi", generators="alpha,alpha"))
    pair = Pair.objects.get(pk=turn["pair_id"])
    a, b = pair.response_a, pair.response_b
    assert a.generator == b.generator and a.text != b.text
    assert a.sampling["seed"] != b.sampling["seed"]


def test_a_stopped_server_shows_its_error_naming_the_generator_and_stores_nothing(
    project, labeler, chat_server
):
    _generator(project, chat_server, "alpha")
    _generator(project, chat_server, "beta")
    chat_server.stop()
    try:
        events = _turn(project, labeler, "Anyone there?", generators="alpha,beta")
    finally:
        chat_server.start()
    errors = {e["side"]: e["message"] for e in events if e["type"] == "error"}
    assert set(errors) == {"left", "right"}
    assert {m.split(":")[0] for m in errors.values()} == {"generator 'alpha'", "generator 'beta'"}
    assert all(f"could not reach {chat_server.base_url}" in m for m in errors.values())
    assert events[-1]["type"] == "failed" and "Nothing was stored" in events[-1]["message"]
    assert not (Prompt.objects.exists() or Response.objects.exists() or Pair.objects.exists())


def test_a_retry_keeps_the_reply_that_came_and_asks_only_for_the_other(
    project, labeler, chat_server
):
    _generator(project, chat_server, "alpha")
    gone = generator_create(
        project=project, name="gone", base_url="http://127.0.0.1:9/v1", model="m"
    )
    events = _turn(project, labeler, "Hello", generators="alpha,gone")
    state = events[0]["state"]  # the conversation the first turn started
    done = {e["side"]: e["reply"] for e in events if e["type"] == "done"}
    errors = {e["side"]: e["message"] for e in events if e["type"] == "error"}
    assert len(done) == 1 and len(errors) == 1 and events[-1]["type"] == "failed"
    ((kept_side, reply),) = done.items()
    ((failed_side, message),) = errors.items()
    assert message.startswith("generator 'gone': could not reach http://127.0.0.1:9/v1")
    assert not (Prompt.objects.exists() or Response.objects.exists())
    kept_text = _streamed(events, kept_side)

    # A kept reply answers its own turn and message only.
    with pytest.raises(ChatInvalid, match="another turn or message"):
        chat_turn_plan(
            project=project,
            labeler=labeler,
            message="Hello again",
            state=state,
            keep={kept_side: reply},
        )
    # The endpoint is back (here: moved); Retry sends the same turn with the kept reply.
    gone.base_url, gone.model = chat_server.base_url, chat_server.model
    gone.save()
    retried = _turn(project, labeler, "Hello", state=state, keep={kept_side: reply})
    assert _streamed(retried, kept_side) == "" and _streamed(retried, failed_side)
    pair = Pair.objects.get(pk=_stored_turn(retried)["pair_id"])
    kept = Response.objects.get(pk__in=[pair.response_a_id, pair.response_b_id], text=kept_text)
    assert kept.generator.name == "alpha"


def test_a_slow_reply_is_an_error_after_the_time_limit(
    project, labeler, chat_server, second_chat_server, settings
):
    # Two tokens from a server of their own come well within the limit even on a loaded CPU
    # (on the slow one's server they queued behind its 480 and missed it once in CI); 480
    # (near the tiny model's 512 positions) take over a second unloaded, so they never do.
    settings.GENERATION_TIMEOUT_SECONDS = 0.4
    _generator(project, second_chat_server, "alpha", max_tokens=2)
    _generator(project, chat_server, "slow", max_tokens=480)
    events = _turn(project, labeler, "Write at length.", generators="alpha,slow")
    errors = [e["message"] for e in events if e["type"] == "error"]
    assert errors == [
        f"generator 'slow': no complete reply from {chat_server.base_url}/chat/completions "
        "within 0.4 s"
    ]
    assert _streamed(events, "left") or _streamed(events, "right")  # it had started
    assert not Pair.objects.exists()


def test_state_is_signed_for_one_labeler_on_one_project(project, labeler, chat_server):
    _generator(project, chat_server, "alpha")
    _generator(project, chat_server, "beta")
    turn = _stored_turn(_turn(project, labeler, "Hi", generators="alpha,beta"))
    bob = UserFactory(username="bob")
    MembershipFactory(project=project, user=bob)
    with pytest.raises(ChatInvalid, match="another labeler"):
        chat_vote(project=project, labeler=bob, turn=turn["turn"], choice="left")
    with pytest.raises(ChatInvalid, match="not one this server signed"):
        chat_vote(project=project, labeler=labeler, turn=turn["turn"][:-2] + "xx", choice="left")
    with pytest.raises(ChatInvalid, match="choice must be one of"):
        chat_vote(project=project, labeler=labeler, turn=turn["turn"], choice="middle")
    # A vote sent twice is stored once; the second answer follows the stored vote.
    first = chat_vote(project=project, labeler=labeler, turn=turn["turn"], choice="left")
    again = chat_vote(project=project, labeler=labeler, turn=turn["turn"], choice="right")
    assert again["choice"] == first["choice"] == "left" and again["state"]
    assert Comparison.objects.count() == 1


def test_arena_mode_keeps_two_histories_and_feeds_the_leaderboard(
    project, labeler, chat_server, second_chat_server
):
    _generator(project, chat_server, "alpha")
    _generator(project, second_chat_server, "beta")
    events = _turn(project, labeler, "Hi", mode="arena", generators="random")
    turn = _stored_turn(events)
    # Anonymous until the vote: nothing in the stream names a model or its generator.
    shown = json.dumps(events)
    for hidden in ("alpha", "beta", chat_server.model, second_chat_server.model):
        assert hidden not in shown
    first_replies = (_streamed(events, "left"), _streamed(events, "right"))
    voted = chat_vote(project=project, labeler=labeler, turn=turn["turn"], choice="left")
    models = {voted["reveal"][s]["model"] for s in ("left", "right")}
    assert models == {chat_server.model, second_chat_server.model}
    assert voted["joined"] is None

    events = _turn(project, labeler, "And then?", state=voted["state"])
    turn = _stored_turn(events)
    pair = Pair.objects.get(pk=turn["pair_id"])
    # Each side continued its own history: the shared part is the prompt, each reply the rest
    # of its side's conversation (as Arena battles are imported).
    assert pair.prompt.messages == [{"role": "user", "content": "Hi"}]
    texts = {pair.response_a.text, pair.response_b.text}
    for side, earlier in zip(("left", "right"), first_replies, strict=True):
        assert f"{earlier}\n\nUser: And then?\n\nAssistant: {_streamed(events, side)}" in texts
    assert pair.response_a.metadata["turn"] == 2
    chat_vote(project=project, labeler=labeler, turn=turn["turn"], choice="tie")

    board = quality_figures(project=Project.objects.get(pk=project.pk), n_boot=10)[0]["leaderboard"]
    assert sorted(board["names"]) == sorted([chat_server.model, second_chat_server.model])
    assert board["battles"] == 2


def test_arena_needs_two_generators_and_the_labeler_on_the_project(project, labeler):
    generator_create(project=project, name="alpha", base_url="http://h/v1", model="m")
    with pytest.raises(ChatInvalid, match="two different generators"):
        chat_turn_plan(
            project=project, labeler=labeler, message="x", mode="arena", generators="alpha,alpha"
        )
    with pytest.raises(ChatInvalid, match="no generator named zeta"):
        chat_turn_plan(project=project, labeler=labeler, message="x", generators="alpha,zeta")
    with pytest.raises(ChatInvalid, match="write a message"):
        chat_turn_plan(project=project, labeler=labeler, message="  ", generators="alpha,alpha")
