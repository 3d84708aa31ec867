"""rewardtrain/core/launch.py without launching: how a failed job is explained, from the
failures torch's elastic agent reports (ChildFailedError.failures: ProcessFailure per rank),
and the agent's settings for a rendezvous."""

import json

import pytest
from torch.distributed.elastic.multiprocessing.errors import ProcessFailure, record

from rewardtrain.core.failures import failure_facts, failure_text
from rewardtrain.core.launch import (
    MONITOR_SECONDS,
    Rendezvous,
    _failure,
)


def _raised(tmp_path, monkeypatch, rank: int, exc: Exception) -> ProcessFailure:
    """A rank that raised `exc` in a main decorated with @record, as rewardtrain.core.rank's
    is: torch writes the error file the agent named, and reads it back into the failure."""
    error_file = tmp_path / f"error-{rank}.json"
    monkeypatch.setenv("TORCHELASTIC_ERROR_FILE", str(error_file))

    @record
    def main():
        raise exc

    with pytest.raises(type(exc)):
        main()
    return ProcessFailure(local_rank=rank, pid=500 + rank, exitcode=1, error_file=str(error_file))


def _signalled(tmp_path, rank: int, signum: int) -> ProcessFailure:
    """A rank ended by a signal: it wrote no error file."""
    missing = str(tmp_path / f"error-{rank}.json")
    return ProcessFailure(local_rank=rank, pid=500 + rank, exitcode=-signum, error_file=missing)


def _observed(*failures: ProcessFailure) -> dict[int, ProcessFailure]:
    """Global rank -> failure, the first given observed first (torch's root cause)."""
    for second, failure in enumerate(failures):
        failure.timestamp = 1_800_000_000 + second
    return {failure.local_rank: failure for failure in failures}


def test_a_rank_killed_by_a_signal_is_the_cause_not_its_peers_connection_error(
    tmp_path, monkeypatch
):
    peer = _raised(tmp_path, monkeypatch, 0, RuntimeError("Connection reset by peer"))
    message = failure_text(failure_facts(_observed(peer, _signalled(tmp_path, 1, 9))))
    assert message == (
        "rank 1 (local_rank: 1) failed: exit code -9 (pid: 501) (SIGKILL); "
        "Signal 9 (SIGKILL) received by PID 501"
    )


def test_without_a_killed_rank_the_root_cause_speaks_with_its_own_error(tmp_path, monkeypatch):
    cause = _raised(tmp_path, monkeypatch, 0, ValueError("bad batch"))
    peer = _raised(tmp_path, monkeypatch, 1, RuntimeError("Connection reset by peer"))
    assert (
        failure_text(failure_facts(_observed(cause, peer)))
        == "rank 0 failed: ValueError: bad batch"
    )


def test_a_peers_lost_connection_is_not_the_cause_even_when_observed_first(tmp_path, monkeypatch):
    """Torch stamps failures in whole seconds: the peer's gloo read error can tie with the
    error that caused it, or come first in torch's order (seen on CI)."""
    peer = _raised(
        tmp_path,
        monkeypatch,
        1,
        RuntimeError("[gloo/transport/tcp/pair.cc:537] Read error: Connection reset by peer."),
    )
    cause = _raised(tmp_path, monkeypatch, 0, FileNotFoundError("job.json"))
    failures = _observed(peer, cause)
    failures[1].timestamp = failures[0].timestamp  # the same second, the peer listed first
    assert list(failures) == [1, 0]
    assert failure_text(failure_facts(failures)) == "rank 0 failed: FileNotFoundError: job.json"

    # Only lost connections: still the first observed, rather than nothing.
    first = _raised(tmp_path, monkeypatch, 0, RuntimeError("Connection reset by peer"))
    second = _raised(tmp_path, monkeypatch, 1, RuntimeError("Broken pipe"))
    assert failure_text(failure_facts(_observed(first, second))) == (
        "rank 0 failed: RuntimeError: Connection reset by peer"
    )


def test_a_recorded_error_is_the_cause_however_the_rank_ended_after_it(tmp_path, monkeypatch):
    """Seen on CI: rank 0 recorded its FileNotFoundError and was then stopped by the agent
    (SIGTERM), or rank 1 recorded its lost connection and gloo then aborted it (SIGABRT)."""
    cause = _raised(tmp_path, monkeypatch, 0, FileNotFoundError("job.json"))
    cause.exitcode = -15
    peer = _raised(
        tmp_path,
        monkeypatch,
        1,
        RuntimeError("[gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:1"),
    )
    assert failure_text(failure_facts(_observed(peer, cause))) == (
        "rank 0 failed: FileNotFoundError: job.json"
    )
    cause.exitcode, peer.exitcode = 1, -6
    assert failure_text(failure_facts(_observed(peer, cause))) == (
        "rank 0 failed: FileNotFoundError: job.json"
    )


def test_the_survivors_sigterm_from_the_agent_is_never_the_cause(tmp_path, monkeypatch):
    stopped = _signalled(tmp_path, 0, 15)
    message = failure_text(failure_facts(_observed(stopped, _signalled(tmp_path, 1, 9))))
    assert message.startswith("rank 1 (local_rank: 1) failed: exit code -9 (pid: 501)"), message
    assert "SIGTERM" not in message

    # Observed in the same second as a rank's own error, or before it: still not the cause.
    stopped = _signalled(tmp_path, 0, 15)
    cause = _raised(tmp_path, monkeypatch, 1, ValueError("bad batch"))
    assert failure_text(failure_facts(_observed(stopped, cause))) == (
        "rank 1 failed: ValueError: bad batch"
    )


def test_the_run_reads_the_failures_the_launcher_wrote_else_the_end_of_its_output(
    tmp_path, monkeypatch
):
    failures = _observed(_raised(tmp_path, monkeypatch, 0, ValueError("bad\nbatch of 4")))
    (tmp_path / "failures.json").write_text(json.dumps(failure_facts(failures)))
    # The last line of the traceback, as the rank's own error file has it.
    assert _failure(tmp_path, 1) == "rank 0 failed: batch of 4"

    (tmp_path / "failures.json").unlink()
    (tmp_path / "launch.log").write_text("starting\nRendezvousTimeoutError: no peers\n")
    assert _failure(tmp_path, 1) == (
        "the ranks ended with exit code 1: starting | RendezvousTimeoutError: no peers"
    )


def test_the_agent_meets_its_peers_as_torchrun_would(tmp_path):
    alone = Rendezvous().launch_config(2, tmp_path)
    assert (alone.rdzv_backend, alone.rdzv_endpoint) == ("c10d", "localhost:0")
    assert (alone.min_nodes, alone.max_nodes, alone.nproc_per_node) == (1, 1, 2)
    assert alone.run_id != Rendezvous().launch_config(2, tmp_path).run_id
    assert (alone.max_restarts, alone.monitor_interval) == (0, MONITOR_SECONDS)
    assert alone.logs_specs.root_log_dir == str(tmp_path)

    second = Rendezvous(nnodes=2, node_rank=1, master_addr="10.0.0.1", master_port=29400)
    config = second.launch_config(4, tmp_path)
    assert (config.rdzv_backend, config.rdzv_endpoint) == ("static", "10.0.0.1:29400")
    assert config.rdzv_configs["rank"] == 1 and config.run_id == "none"
    assert (config.min_nodes, config.max_nodes, config.nproc_per_node) == (2, 2, 4)
