"""How the chaos benchmark counts the step bodies a SIGKILL cut off (`benchmarks.chaos._recovery`)."""

from __future__ import annotations

from benchmarks.chaos import _recovery

KILLED_PID, OTHER_PID = 111, 222


def _row(t: float, event: str, run: str, attempt: int, pid: int) -> tuple[float, str, str, str, str, int, int]:
    return (t, event, run, "1", "enrich", attempt, pid)


def test_a_body_in_flight_at_the_kill_counts_from_the_kill_to_its_retry() -> None:
    rows = [_row(1.0, "start", "r1", 1, KILLED_PID), _row(3.5, "start", "r1", 2, OTHER_PID)]
    assert _recovery(rows, [(2.0, KILLED_PID)]) == [1.5]


def test_a_body_that_wrote_done_but_was_killed_before_reporting_it_counts() -> None:
    # the engine never heard of the result, so it ran the body again: the kill cut it off
    rows = [_row(1.0, "start", "r1", 1, KILLED_PID), _row(1.9, "done", "r1", 1, KILLED_PID),
            _row(4.0, "start", "r1", 2, OTHER_PID)]
    assert _recovery(rows, [(2.0, KILLED_PID)]) == [2.0]


def test_bodies_that_finished_failed_on_their_own_or_ran_elsewhere_do_not_count() -> None:
    rows = [
        _row(1.0, "start", "done-and-reported", 1, KILLED_PID), _row(1.2, "done", "done-and-reported", 1, KILLED_PID),
        _row(1.0, "start", "failed", 1, KILLED_PID), _row(1.1, "fail", "failed", 1, KILLED_PID),
        _row(1.5, "start", "failed", 2, OTHER_PID),
        _row(1.0, "start", "other-worker", 1, OTHER_PID), _row(2.5, "start", "other-worker", 2, OTHER_PID),
        _row(2.5, "start", "after-the-kill", 1, KILLED_PID),
    ]
    assert _recovery(rows, [(2.0, KILLED_PID)]) == []
