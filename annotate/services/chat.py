"""Live conversations: a labeler writes a message, two replies stream in at once, the labeler
chooses, and the conversation goes on. HH mode is how Anthropic collected HH-RLHF (the chosen
reply joins the conversation); Arena mode is Chatbot Arena's (two separate histories, each side
with its own generator, named only after the vote, which feeds the source-model leaderboard).

Each turn is stored as an ordinary Prompt, two Responses, a Pair and the labeler's Comparison
(through the labeling service), so exports, quality figures and training see it as any other
pair; Prompt.metadata (and each Response's) carries {"conversation", "turn", "mode"}. Nothing is
written until both replies are complete: a failed or slow one leaves no trace but its error.

Between requests the conversation lives in the page, signed (django.core.signing, keyed by
SECRET_KEY) for one labeler on one project: a labeler cannot put words in a model's mouth, and
the server keeps no session. A signed state may be sent again (the page's Retry does); an old
one only starts a branch of the conversation, whose turns are as genuine as the first's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import secrets
import threading
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from http import HTTPStatus
from typing import Any

import httpx2 as httpx
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.db import transaction
from django.utils import timezone

from annotate.errors import ApplicationError
from annotate.generation.client import (
    Cancelled,
    Completion,
    Endpoint,
    EndpointError,
    RetryPolicy,
    chat_stream,
)
from annotate.importers.base import RowInvalid, split_conversations
from annotate.integers import INT16_MAX, INT32_MAX
from annotate.models import (
    Choice,
    Comparison,
    Generator,
    Lease,
    Project,
    Response,
    Side,
    TaskKind,
)
from annotate.services.catalog import pair_get_or_create, prompt_get_or_create, response_hash
from annotate.services.endpoint_slots import endpoint_slot
from annotate.services.generation import generator_endpoint
from annotate.services.labeling import ComparisonExists, comparison_submit, labeler_exclusion

logger = logging.getLogger(__name__)

MODES = ("hh", "arena")
SIDES = ("left", "right")
VOTES = ("left", "right", Choice.TIE, Choice.BOTH_BAD)
MESSAGE_MAX = 20_000  # characters in one message: a long paste, not a document
# A labeler is waiting: two quick retries of a refused request (429, 5xx, a restart), then the
# page's Retry button, instead of the half-minute a generation job allows.
CHAT_RETRIES = 2
# Silence longer than this sends a "wait" event: a proxy keeps the stream open (nginx drops
# one after 60 s without a byte), and a browser that left is noticed (the write fails).
HEARTBEAT_S = 15.0
SALT = "prefloop.chat"
RANDOM = "random"  # Arena's "two drawn at random"


class ChatInvalid(ApplicationError):
    """A chat request that cannot be served as asked; the message says why."""

    status = HTTPStatus.BAD_REQUEST
    code = "chat_invalid"


class ChatWrongTaskKind(ApplicationError):
    """The project ranks or rates sets of responses: its labelers are not asked for pairs."""

    status = HTTPStatus.CONFLICT
    code = "chat_not_pairwise"


def chat_refusal(*, project: Project) -> str | None:
    """Why the project has no chat, or None. A chat turn is stored as a pair of replies and a
    vote on it: pairwise data, which a project that ranks or rates sets of K responses does
    not ask its labelers for."""
    if project.task_kind == TaskKind.PAIRWISE:
        return None
    return (
        "The chat collects pairwise judgments (each turn is stored as a pair of replies and "
        f"your vote on it), and this project's task kind is {project.task_kind} "
        f"({TaskKind(project.task_kind).label.lower()} of {project.ranking_size} responses "
        "at a time). Chat on a pairwise project instead."
    )


def _check_pairwise(project: Project) -> None:
    refusal = chat_refusal(project=project)
    if refusal:
        raise ChatWrongTaskKind(refusal)


@dataclass(frozen=True)
class Conversation:
    """A conversation between two turns, as its signed state carries it: the two generators
    asked (one generator twice is allowed in HH mode) and the messages each side has seen (the
    same list twice in HH mode, each side's own in Arena mode)."""

    project_id: int
    labeler_id: int
    id: str
    mode: str
    generator_ids: tuple[int, int]
    turns: int  # turns voted on so far
    histories: tuple[list[dict[str, str]], list[dict[str, str]]]


@dataclass(frozen=True)
class TurnPlan:
    """One turn, checked and ready to ask: each side's generator and messages, and the replies
    an earlier try of the same turn completed (Retry asks only for the others)."""

    project: Project
    labeler: AbstractBaseUser
    conversation: Conversation
    number: int
    generators: tuple[Generator, Generator]  # left, right
    messages: tuple[list[dict[str, str]], list[dict[str, str]]]
    kept: dict[str, Completion]


@dataclass(frozen=True)
class StoredTurn:
    pair_id: int
    response_ids: tuple[int, int]  # left, right


# ----- choosing generators ----------------------------------------------------------------


def chat_pairings(*, generators: list[Generator], mode: str) -> list[tuple[str, str]]:
    """The (value, label) choices of who replies: every two generators, then, in HH mode, each
    generator sampled twice. Arena needs two models to rank, and offers two drawn at random
    first (the labeler then cannot tell who is in the battle). The first is the default."""
    names = [g.name for g in generators]
    pairs = [(f"{a},{b}", f"{a} and {b}") for i, a in enumerate(names) for b in names[i + 1 :]]
    if mode == "hh":
        return pairs + [(f"{n},{n}", f"{n}, sampled twice") for n in names]
    return [(RANDOM, "Two drawn at random"), *pairs] if pairs else []


def conversation_start(
    *, project: Project, labeler: AbstractBaseUser, mode: str, generators: str
) -> Conversation:
    """A new conversation with two of the project's generators ("a,b"; "a,a" samples one
    twice; "random" in Arena mode draws two). In Arena mode the sides are drawn now and kept (each side continues its own
    history); in HH mode they are drawn again at each turn."""
    if mode not in MODES:
        raise ChatInvalid(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "arena" and generators == RANDOM:
        everyone = list(Generator.objects.filter(project=project).values_list("name", flat=True))
        if len(everyone) < 2:
            raise ChatInvalid("Arena mode compares two different generators")
        generators = ",".join(secrets.SystemRandom().sample(everyone, 2))
    names = [n.strip() for n in (generators or "").split(",")]
    if len(names) != 2 or not all(names):
        raise ChatInvalid('name two generators as "a,b" (or "a,a" to sample one twice)')
    found = {g.name: g for g in Generator.objects.filter(project=project, name__in=names)}
    missing = [n for n in names if n not in found]
    if missing:
        raise ChatInvalid(f"{project.slug} has no generator named {', '.join(missing)}")
    if mode == "arena" and names[0] == names[1]:
        raise ChatInvalid("Arena mode compares two different generators")
    ids = [found[n].pk for n in names]
    if mode == "arena":
        secrets.SystemRandom().shuffle(ids)
    return Conversation(
        project_id=project.pk,
        labeler_id=labeler.pk,
        id=uuid.uuid4().hex,
        mode=mode,
        generator_ids=(ids[0], ids[1]),
        turns=0,
        histories=([], []),
    )


# ----- signed state -------------------------------------------------------------------------


def conversation_token(conversation: Conversation) -> str:
    return _sign("conversation", asdict(conversation))


def conversation_read(*, token: str, project: Project, labeler: AbstractBaseUser) -> Conversation:
    data = _unsign("conversation", token, project=project, labeler=labeler)
    return Conversation(
        project_id=data["project_id"],
        labeler_id=data["labeler_id"],
        id=data["id"],
        mode=data["mode"],
        generator_ids=tuple(data["generator_ids"]),
        turns=data["turns"],
        histories=tuple(data["histories"]),
    )


def _sign(kind: str, data: dict[str, Any]) -> str:
    return signing.dumps(data, salt=f"{SALT}.{kind}", compress=True)


def _unsign(
    kind: str, token: Any, *, project: Project, labeler: AbstractBaseUser
) -> dict[str, Any]:
    """The signed data, when it was signed for this labeler on this project."""
    try:
        data = signing.loads(str(token), salt=f"{SALT}.{kind}")
    except signing.BadSignature:
        raise ChatInvalid(f"the {kind} state is not one this server signed") from None
    if data.get("project_id") != project.pk or data.get("labeler_id") != labeler.pk:
        raise ChatInvalid(f"the {kind} state belongs to another labeler or project")
    return data


# ----- a turn -------------------------------------------------------------------------------


def chat_turn_plan(
    *,
    project: Project,
    labeler: AbstractBaseUser,
    message: Any,
    state: str | None = None,
    mode: str = "hh",
    generators: str = "",
    keep: dict[str, Any] | None = None,
) -> TurnPlan:
    """Check a turn before anything is asked: the labeler may chat here, the message is text,
    the state (none for a new conversation with `mode` and `generators`) is genuine, and the
    kept replies (`keep`: side -> the signed reply of an earlier try) belong to this very turn.
    A project that ranks or rates has no chat (ChatWrongTaskKind)."""
    _check_pairwise(project)
    exclusion = labeler_exclusion(project=project, labeler=labeler)
    if exclusion:
        raise ChatInvalid(exclusion)
    if not isinstance(message, str) or not message.strip():
        raise ChatInvalid("write a message first")
    if len(message) > MESSAGE_MAX:
        raise ChatInvalid(f"a message holds at most {MESSAGE_MAX:,} characters")
    if state:
        conversation = conversation_read(token=state, project=project, labeler=labeler)
    else:
        conversation = conversation_start(
            project=project, labeler=labeler, mode=mode, generators=generators
        )
    by_id = Generator.objects.in_bulk(set(conversation.generator_ids))
    if len(by_id) != len(set(conversation.generator_ids)):
        raise ChatInvalid("a generator of this conversation was removed: start a new one")
    number = conversation.turns + 1
    order = conversation.generator_ids
    if conversation.mode == "hh" and _coin(conversation.id, number):
        order = (order[1], order[0])
    user = {"role": "user", "content": message}
    messages = tuple([*history, user] for history in conversation.histories)
    plan = TurnPlan(
        project=project,
        labeler=labeler,
        conversation=conversation,
        number=number,
        generators=(by_id[order[0]], by_id[order[1]]),
        messages=messages,
        kept={},
    )
    if not isinstance(keep or {}, dict):
        raise ChatInvalid("keep maps a side to its signed reply")
    kept = {side: _reply_read(plan, side, token) for side, token in (keep or {}).items()}
    return replace(plan, kept=kept)


def _coin(conversation_id: str, turn: int) -> bool:
    """Whether the HH turn's generators swap sides: drawn from the conversation and the turn,
    so a Retry of the turn finds each kept reply on its own side again."""
    digest = hashlib.sha256(f"{conversation_id}:{turn}".encode()).digest()
    return bool(digest[0] & 1)


def _messages_key(messages: list[dict[str, str]]) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()


def _reply_token(plan: TurnPlan, side: str, completion: Completion) -> str | None:
    """A completed reply, signed, for a Retry of the turn to keep; none in Arena mode, where
    it would show the model's name (signed is not encrypted) before the vote."""
    if plan.conversation.mode == "arena":
        return None
    index = SIDES.index(side)
    return _sign(
        "reply",
        {
            "project_id": plan.project.pk,
            "labeler_id": plan.labeler.pk,
            "conversation": plan.conversation.id,
            "turn": plan.number,
            "side": side,
            "generator_id": plan.generators[index].pk,
            "messages": _messages_key(plan.messages[index]),
            "completion": asdict(completion),
        },
    )


def _reply_read(plan: TurnPlan, side: Any, token: Any) -> Completion:
    if side not in SIDES:
        raise ChatInvalid(f"keep names a side, left or right, not {side!r}")
    if plan.conversation.mode == "arena":
        raise ChatInvalid("Arena mode keeps no reply: a Retry asks both again")
    data = _unsign("reply", token, project=plan.project, labeler=plan.labeler)
    index = SIDES.index(side)
    same = (
        data["conversation"] == plan.conversation.id
        and data["turn"] == plan.number
        and data["side"] == side
        and data["generator_id"] == plan.generators[index].pk
        and data["messages"] == _messages_key(plan.messages[index])
    )
    if not same:
        raise ChatInvalid(f"the kept {side} reply answers another turn or message")
    return Completion(**data["completion"])


def chat_turn_stream(*, plan: TurnPlan) -> Iterator[dict[str, Any]]:
    """The turn as events, both replies asked at once (a thread each, waiting on HTTP only):
    {"type": "start", "state"}; {"type": "text", "side", "text"} as each piece arrives; {"type": "done",
    "side", "reply"} (the signed reply, for a Retry to keep) or {"type": "error", "side",
    "message"}; then {"type": "turn", "turn", "pair_id"} once both are stored, or
    {"type": "failed", "message"} with nothing stored. {"type": "wait"} fills long silences.

    Closing the iterator early (the browser left) stops reading both endpoints."""
    events: queue.Queue[tuple[str, str, Any]] = queue.Queue()
    stop = threading.Event()
    done: dict[str, Completion] = dict(plan.kept)
    errors: dict[str, str] = {}
    # The state as the turn began: a first turn's Retry sends it back, so that the retry
    # belongs to the same conversation (and keeps the reply that came).
    state = conversation_token(plan.conversation)
    yield {"type": "start", "turn": plan.number, "mode": plan.conversation.mode, "state": state}
    for side, completion in plan.kept.items():
        yield {"type": "done", "side": side, "reply": _reply_token(plan, side, completion)}
    pending = [side for side in SIDES if side not in done]
    try:
        for side in pending:
            threading.Thread(
                target=_ask,
                args=(plan, side, events, stop),
                name=f"chat-{side}",
                daemon=True,
            ).start()
        while pending:
            try:
                kind, side, value = events.get(timeout=HEARTBEAT_S)
            except queue.Empty:
                yield {"type": "wait"}
                continue
            if kind == "text":
                yield {"type": "text", "side": side, "text": value}
                continue
            pending.remove(side)
            if kind == "done":
                done[side] = value
                yield {"type": "done", "side": side, "reply": _reply_token(plan, side, value)}
            else:
                errors[side] = value
                yield {"type": "error", "side": side, "message": value}
        if errors:
            sides = " and ".join(f"the {side} reply" for side in SIDES if side in errors)
            yield {
                "type": "failed",
                "message": f"Nothing was stored: {sides} failed. Retry asks again.",
            }
            return
        try:
            stored = chat_turn_store(plan=plan, completions=done)
        except ChatInvalid as exc:
            yield {"type": "failed", "message": str(exc), "keep": False}
            return
        yield {"type": "turn", "turn": _turn_token(plan, stored, done), "pair_id": stored.pair_id}
    finally:
        stop.set()


def _ask(plan: TurnPlan, side: str, events: queue.Queue, stop: threading.Event) -> None:
    """One side's reply, streamed into `events`; never raises (the loop waits for its end)."""
    index = SIDES.index(side)
    generator = plan.generators[index]
    endpoint = generator_endpoint(generator)
    # A fresh seed for every reply: one generator sampled twice must give two replies, and a
    # Retry another one. The seed sent is stored with the reply (Response.sampling).
    seed = secrets.randbelow(2**31)
    policy = RetryPolicy(
        timeout_s=settings.GENERATION_TIMEOUT_SECONDS,
        max_retries=CHAT_RETRIES,
        backoff_s=0.5,
        backoff_max_s=2.0,
    )
    try:
        # One of the generator's slots for the whole stream, shared with its jobs.
        with (
            endpoint_slot(generator, timeout_s=policy.timeout_s, stop=stop),
            httpx.Client() as client,
        ):
            completion = chat_stream(
                endpoint,
                plan.messages[index],
                on_text=lambda text: events.put(("text", side, text)),
                seed=seed,
                client=client,
                policy=policy,
                stop=stop,
            )
    except Cancelled:
        events.put(("error", side, "stopped"))
    except EndpointError as exc:
        events.put(("error", side, _error_text(plan, side, endpoint, exc.reason)))
    except Exception as exc:  # noqa: BLE001 - shown to the labeler, not lost in a thread
        logger.exception("chat reply from generator %s failed", generator.name)
        events.put(("error", side, _error_text(plan, side, endpoint, repr(exc))))
    else:
        events.put(("done", side, completion))


def _error_text(plan: TurnPlan, side: str, endpoint: Endpoint, reason: str) -> str:
    """The error naming its generator; in Arena mode, its side instead (the models are named
    only after the vote)."""
    if plan.conversation.mode == "arena":
        return f"the {side} model's endpoint: {reason}"
    return f"generator {endpoint.name!r}: {reason}"


@transaction.atomic
def chat_turn_store(*, plan: TurnPlan, completions: dict[str, Completion]) -> StoredTurn:
    """The turn's Prompt, its two Responses and their Pair, leased to the labeler (their slot
    in the pair's redundancy is theirs, and the judgment goes through the labeling service as
    any served pair's). In Arena mode the sides' histories part after the first message: the
    prompt is what they share and each reply is the rest of its side's conversation, as Arena
    battles are imported (importers/base.py, split_conversations)."""
    conversation = plan.conversation
    left, right = completions["left"], completions["right"]
    meta = {"conversation": conversation.id, "turn": plan.number, "mode": conversation.mode}
    if conversation.mode == "hh":
        prompt_messages, texts = plan.messages[0], (left.text, right.text)
    else:
        try:
            prompt_messages, *texts = split_conversations(
                [*plan.messages[0], {"role": "assistant", "content": left.text}],
                [*plan.messages[1], {"role": "assistant", "content": right.text}],
                ("the left conversation", "the right conversation"),
            )
        except RowInvalid:  # the two conversations are the same, word for word
            texts = [left.text, right.text]
    if texts[0] == texts[1]:
        raise ChatInvalid(
            "Both replies are the same text, so there is nothing to compare, and nothing was "
            "stored. Retry asks both again (a generator at temperature 0 always gives the "
            "same reply: choose two generators)."
        )
    prompt, _ = prompt_get_or_create(project=plan.project, messages=prompt_messages, metadata=meta)
    responses = [
        _response_store(prompt=prompt, text=text, generator=generator, completion=c, meta=meta)
        for text, generator, c in zip(texts, plan.generators, (left, right), strict=True)
    ]
    pair, created, swapped = pair_get_or_create(
        project=plan.project, prompt=prompt, first=responses[0], second=responses[1]
    )
    if not created:
        _check_still_open(pair=pair, labeler=plan.labeler)
    Lease.objects.update_or_create(
        pair=pair,
        labeler=plan.labeler,
        defaults={
            "left": Side.B if swapped else Side.A,
            "is_repeat": False,
            "expires_at": timezone.now() + timedelta(minutes=plan.project.lease_minutes),
        },
    )
    return StoredTurn(pair_id=pair.pk, response_ids=(responses[0].pk, responses[1].pk))


def _check_still_open(*, pair: Any, labeler: AbstractBaseUser) -> None:
    """Two replies met before (the same conversation so far, the same two texts): fine unless
    this labeler judged them already or others filled the pair."""
    if Comparison.objects.filter(pair=pair, labeler=labeler, is_repeat=False).exists():
        raise ChatInvalid(
            f"You already judged these two replies to this conversation (pair {pair.pk}); "
            "nothing new was stored. Retry asks again."
        )
    if not pair.is_open:
        raise ChatInvalid(
            f"These two replies were already judged by others (pair {pair.pk}); nothing new "
            "was stored. Retry asks again."
        )


def _response_store(
    *,
    prompt: Any,
    text: str,
    generator: Generator,
    completion: Completion,
    meta: dict[str, Any],
) -> Response:
    """A reply as a Response with its provenance, as a generation job stores one
    (generation_run.sample_store); an equal text already there keeps its own."""
    metadata = dict(meta)
    if completion.finish_reason:
        metadata["finish_reason"] = completion.finish_reason
    response, _ = Response.objects.get_or_create(
        prompt=prompt,
        content_hash=response_hash(text),
        defaults={
            "text": text,
            "model_name": completion.model[:200],
            "generator": generator,
            "sampling": completion.sampling,
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "latency_ms": round(completion.latency_ms, 3),
            "metadata": metadata,
        },
    )
    return response


def _turn_token(plan: TurnPlan, stored: StoredTurn, done: dict[str, Completion]) -> str:
    """What the vote needs, signed: the pair, each side's response, reply and generator (by id:
    signed is not encrypted, and Arena names the models only after the vote), and the
    conversation as the turn began."""
    return _sign(
        "turn",
        {
            "project_id": plan.project.pk,
            "labeler_id": plan.labeler.pk,
            "conversation": conversation_token(plan.conversation),
            "number": plan.number,
            "messages": list(plan.messages),
            "pair_id": stored.pair_id,
            "sides": [
                {
                    "response_id": stored.response_ids[i],
                    "reply": done[side].text,
                    "generator_id": plan.generators[i].pk,
                }
                for i, side in enumerate(SIDES)
            ],
        },
    )


# ----- the vote -----------------------------------------------------------------------------


def chat_vote(
    *,
    project: Project,
    labeler: AbstractBaseUser,
    turn: str,
    choice: str,
    strength: int | None = None,
    reasons: list[str] | None = None,
    comment: str = "",
    time_spent_ms: int | None = None,
) -> dict[str, Any]:
    """The labeler's judgment of a turn (`choice`: left, right, tie or both_bad), stored by the
    labeling service as any served pair's; then the conversation goes on. In HH mode the
    chosen reply joins it (after a tie or "both bad", the left one: sides are drawn at
    random); in Arena mode each side keeps its own reply. Returns the next state, which reply
    joined, and the generators' names (Arena shows them only now). Sent twice, the vote
    already stored decides. A project that turned to ranking or rating since the turn takes
    no vote (ChatWrongTaskKind)."""
    _check_pairwise(project)
    _check_vote(
        choice=choice,
        strength=strength,
        reasons=reasons,
        comment=comment,
        time_spent_ms=time_spent_ms,
    )
    data = _unsign("turn", turn, project=project, labeler=labeler)
    comparison_id, choice = _store_vote(
        labeler=labeler,
        data=data,
        choice=choice,
        strength=strength,
        reasons=reasons or [],
        comment=comment,
        time_spent_ms=time_spent_ms,
    )
    conversation = conversation_read(token=data["conversation"], project=project, labeler=labeler)
    joined, histories = _next_histories(mode=conversation.mode, data=data, choice=choice)
    following = replace(conversation, turns=data["number"], histories=histories)
    reveal = _reveal(data["sides"])
    return {
        "state": conversation_token(following),
        "comparison_id": comparison_id,
        "choice": choice,
        "joined": joined,
        "turns": following.turns,
        "reveal": reveal,
    }


def _check_vote(
    *,
    choice: str,
    strength: int | None,
    reasons: list[str] | None,
    comment: str,
    time_spent_ms: int | None,
) -> None:
    """The vote's own fields, checked before the signed turn is even read, since they come
    straight from the page."""
    if choice not in VOTES:
        raise ChatInvalid(f"choice must be one of {', '.join(VOTES)}, not {choice!r}")
    _check_int(strength, "strength", INT16_MAX)
    _check_int(time_spent_ms, "time_spent_ms", INT32_MAX)
    if not isinstance(comment, str) or not isinstance(reasons or [], list):
        raise ChatInvalid("comment is text and reasons a list")
    if not all(isinstance(r, str) for r in reasons or []):
        raise ChatInvalid("reasons are text")


def _store_vote(
    *,
    labeler: AbstractBaseUser,
    data: dict[str, Any],
    choice: str,
    strength: int | None,
    reasons: list[str],
    comment: str,
    time_spent_ms: int | None,
) -> tuple[int, str]:
    """The stored comparison's id and the choice it holds: a vote sent twice keeps the first
    one, so the conversation goes on as that one said."""
    ids = [s["response_id"] for s in data["sides"]]
    try:
        stored = comparison_submit(
            labeler=labeler,
            pair_id=data["pair_id"],
            preferred=ids[SIDES.index(choice)] if choice in SIDES else choice,
            strength=strength,
            reasons=reasons,
            comment=comment,
            time_spent_ms=time_spent_ms,
        )
    except ComparisonExists as exc:
        return exc.comparison_id, _stored_vote(comparison_id=exc.comparison_id, response_ids=ids)
    return stored.id, choice


def _next_histories(
    *, mode: str, data: dict[str, Any], choice: str
) -> tuple[str | None, tuple[list[dict[str, str]], list[dict[str, str]]]]:
    """Which reply joined (HH mode only) and each side's messages for the next turn."""
    replies = [{"role": "assistant", "content": s["reply"]} for s in data["sides"]]
    if mode == "hh":
        # Sides are drawn at random, so after a tie or "both bad" the left one is as good.
        joined = choice if choice in SIDES else "left"
        history = [*data["messages"][0], replies[SIDES.index(joined)]]
        return joined, (history, history)
    return None, tuple([*m, r] for m, r in zip(data["messages"], replies, strict=True))


def _reveal(sides: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Each side's generator and model name, shown only once the vote is in (Arena)."""
    names = dict(
        Generator.objects.filter(pk__in=[s["generator_id"] for s in sides]).values_list(
            "pk", "name"
        )
    )
    ids = [s["response_id"] for s in sides]
    models = dict(Response.objects.filter(pk__in=ids).values_list("pk", "model_name"))
    return {
        side: {
            "generator": names.get(s["generator_id"], "(removed)"),
            "model": models.get(s["response_id"], ""),
        }
        for side, s in zip(SIDES, sides, strict=True)
    }


def _check_int(value: Any, name: str, max_value: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= max_value:
        raise ChatInvalid(f"{name} must be a whole number from 0 to {max_value}")


def _stored_vote(*, comparison_id: int, response_ids: list[int]) -> str:
    """The side (or tie, both_bad) a stored Comparison chose, as the page showed the pair."""
    comparison = Comparison.objects.select_related("pair").get(pk=comparison_id)
    if comparison.choice in (Choice.TIE, Choice.BOTH_BAD):
        return comparison.choice
    pair = comparison.pair
    preferred = pair.response_a_id if comparison.choice == Choice.A else pair.response_b_id
    return SIDES[response_ids.index(preferred)]
