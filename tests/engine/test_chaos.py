"""The chaos suite, small: 20 runs, one worker SIGKILL, one SIGTERM, one server restart.

`python -m benchmarks.chaos` is the full version (200 runs, 5 kills); this one guards the
guarantees in every test run: nothing lost, nothing completed runs twice, no duplicate
charge with an idempotency key, nothing a stopping worker finished is thrown away.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.chaos import chaos


async def test_chaos_loses_nothing_and_repeats_nothing(tmp_path: Path) -> None:
    report = await chaos(runs=20, kills=1, sigterm=True, restart=True, workdir=tmp_path, deadline=240)
    assert (report.kills, report.sigterms, report.restarts) == (1, 1, 1), report
    assert report.lost == 0 and report.completed == 20, report
    assert report.reran == 0, "a step the engine had recorded as completed ran again"
    assert report.thrown_away_sigterm == 0, "a result finished during a graceful shutdown was thrown away"
    assert report.dup_keyed == 0, "a charge with an idempotency key was applied twice"
    assert report.recovery, "the kill cut off at least one step attempt, which was retried"
    assert report.restart_progress is not None
