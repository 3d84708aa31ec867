"""Why a multi-rank job failed, from what torch's elastic agent reports
(ChildFailedError.failures): the facts of each failed rank as JSON-ready dicts, the root cause
among them, and the one line a failed run shows."""

from __future__ import annotations

import signal
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure


def failure_facts(failures: Mapping[int, ProcessFailure]) -> list[dict[str, Any]]:
    """ChildFailedError.failures (global rank -> torch's ProcessFailure) as JSON-ready dicts,
    in torch's order. `error` is the last line of the traceback the rank recorded (@record),
    None when it wrote none (killed by a signal); `message` is torch's text otherwise."""
    facts = []
    for rank, failure in failures.items():
        recorded = failure.error_file != "<N/A>"  # torch's mark for "no error file"
        facts.append(
            {
                "rank": rank,
                "local_rank": failure.local_rank,
                "pid": failure.pid,
                "exitcode": failure.exitcode,
                "signal": failure.signal_name() if failure.exitcode < 0 else None,
                "timestamp": failure.timestamp,
                "error": _last_line(failure.message) if recorded else None,
                "message": None if recorded else str(failure.message),
            }
        )
    return facts


def _last_line(message: str | dict) -> str:
    if isinstance(message, dict):  # {"message": ..., "extraInfo": {"py_callstack": ...}}
        message = message.get("extraInfo", {}).get("py_callstack") or message.get("message", "")
    lines = str(message).strip().splitlines()
    return lines[-1] if lines else "no message"


# What a rank reports when a peer it was talking to went away: a consequence of another rank's
# failure, never its cause while that failure is in the report. Torch's timestamps are whole
# seconds, so the peer's "Connection reset" is often observed in the same second as the error
# that caused it (seen on CI: rank 0's FileNotFoundError and rank 1's gloo read error tied).
PEER_LOST = (
    "Connection reset by peer",
    "Connection closed by peer",
    "Broken pipe",
    "NCCL communicator was aborted",
)


def _lost_a_peer(fact: dict[str, Any]) -> bool:
    text = fact["error"] or fact["message"] or ""
    return any(marker in text for marker in PEER_LOST)


def root_cause(facts: list[dict[str, Any]]) -> dict[str, Any]:
    """The failure that explains the others. A rank killed by a signal without a word
    (SIGKILL, the OOM killer) is the cause of its peers' "Connection reset by peer", even when
    one of those was observed first. Next, a rank's own recorded error, however the rank ended
    after recording it: the agent may SIGTERM it before it exits, and gloo may abort a rank
    whose peer went away (both seen on CI). SIGTERM is the agent stopping the survivors, and a
    lost connection is a peer's failure showing: neither is the cause while another failure is
    there. Among the candidates, torch's root cause: the first observed."""
    killed = [
        f
        for f in facts
        if f["exitcode"] < 0 and f["exitcode"] != -signal.SIGTERM and f["error"] is None
    ]
    own_errors = [f for f in facts if f["error"] is not None and not _lost_a_peer(f)]
    not_stopped = [f for f in facts if f["exitcode"] != -signal.SIGTERM]
    return min(killed or own_errors or not_stopped or facts, key=lambda f: f["timestamp"])


def failure_text(facts: list[dict[str, Any]]) -> str:
    """The message a failed run shows: the root cause's own error when it recorded one, else
    how it ended, in torch's words ("rank 1 (local_rank: 1) failed: exit code -9 (pid: 502)
    (SIGKILL); Signal 9 (SIGKILL) received by PID 502")."""
    cause = root_cause(facts)
    if cause["error"] is not None:
        return f"rank {cause['rank']} failed: {cause['error']}"
    name = f" ({cause['signal']})" if cause["signal"] not in (None, "<N/A>") else ""
    return (
        f"rank {cause['rank']} (local_rank: {cause['local_rank']}) failed: exit code "
        f"{cause['exitcode']} (pid: {cause['pid']}){name}; {cause['message']}"
    )
