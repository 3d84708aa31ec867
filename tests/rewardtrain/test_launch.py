"""rewardtrain/core/launch.py without launching: how a failed job is explained."""

from rewardtrain.core.launch import _failure

SUMMARY = """[rank0]: RuntimeError: Connection reset by peer
E1203 10:08:01 torch/distributed/elastic/multiprocessing/api.py:874] failed (exitcode: 1)
============================================================
rewardtrain.core.rank FAILED
------------------------------------------------------------
Failures:
{others}
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-12-03_10:08:01
  host      : here
  rank      : {root_rank} (local_rank: {root_rank})
  exitcode  : {root_code} (pid: 501)
  error_file: <N/A>
  traceback : {root_traceback}
============================================================
"""
KILLED = """[1]:
  time      : 2026-12-03_10:08:01
  host      : here
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 502)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 502"""


def test_a_rank_killed_by_a_signal_is_the_cause_not_its_peers_connection_error(tmp_path):
    (tmp_path / "torchrun.log").write_text(
        SUMMARY.format(others=KILLED, root_rank=0, root_code=1, root_traceback="To see...")
    )
    (tmp_path / "error-0").write_text("RuntimeError: Connection reset by peer\n")
    message = _failure(tmp_path, 1)
    assert message.startswith("rank 1 (local_rank: 1) failed: exit code -9"), message
    assert "SIGKILL" in message


def test_without_a_killed_rank_the_root_cause_speaks_with_its_own_error(tmp_path):
    (tmp_path / "torchrun.log").write_text(
        SUMMARY.format(
            others="  <NO_OTHER_FAILURES>", root_rank=0, root_code=1, root_traceback="To see..."
        )
    )
    (tmp_path / "error-0").write_text("Traceback...\nValueError: bad batch\n")
    assert _failure(tmp_path, 1) == "rank 0 failed: ValueError: bad batch"


def test_the_survivors_sigterm_from_torchrun_is_never_the_cause(tmp_path):
    stopped = KILLED.replace("rank      : 1 (local_rank: 1)", "rank      : 0 (local_rank: 0)")
    stopped = stopped.replace("-9 (pid: 502)", "-15 (pid: 502)  (SIGTERM)").replace(
        "Signal 9 (SIGKILL)", "Signal 15 (SIGTERM)"
    )
    (tmp_path / "torchrun.log").write_text(
        SUMMARY.format(
            others=stopped,
            root_rank=1,
            root_code="-9 (pid: 503)  (SIGKILL)",
            root_traceback="Signal 9 (SIGKILL) received by PID 503",
        )
    )
    message = _failure(tmp_path, 1)
    assert message.startswith("rank 1 (local_rank: 1) failed: exit code -9"), message
    assert "SIGTERM" not in message
