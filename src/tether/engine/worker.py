"""Workers: the processes that run workflow code and steps, for one or more task queues.

`tether worker` and `tether dev` run this; applications and tests can embed it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from temporalio.worker import Worker as TemporalWorker
from temporalio.worker import WorkerDeploymentConfig, WorkerDeploymentVersion

from tether import _registry, limits, settings
from tether._runtime import limit_queue, queue_limit, zone_queue
from tether.durations import Duration, parse_duration
from tether.engine import liveness, tracing
from tether.engine.client import Client
from tether.engine.durable import VERSIONING_BEHAVIOR, step_activity
from tether.engine.inbox import ensure_search_attributes
from tether.engine.limits import CooldownInterceptor, apply_rate, join, queue_state, served_keys, watch_cooldowns
from tether.engine.liveness import LivenessInterceptor
from tether.engine.sandbox import explain, sandbox_runner
from tether.errors import UsageError
from tether.llm import default_model
from tether.llm._providers import preload, preload_soon
from tether.llm._step import STEP_NAME
from tether.step import Step, check_zone
from tether.workflow import VERSIONING, Versioning, Workflow

MAIN = "main"
"""Name of the main queue in `queues=`: workflow code and steps without a zone."""

STICKY_TIMEOUT = timedelta(seconds=3)


def deployment_config(client: Client, build_id: str | None, deployment: str | None,
                      versioning: Versioning) -> WorkerDeploymentConfig | None:
    """Temporal's worker-deployment settings for a worker of build `build_id` (None: unversioned).

    Raises:
        UsageError: `versioning` is not "pinned" or "auto-upgrade", or a name is blank.
    """
    configured = settings.current()
    build = (build_id if build_id is not None else configured.build_id or "").strip()
    if not build:
        return None
    if versioning not in VERSIONING:
        raise UsageError(f"versioning={versioning!r}; use one of: {', '.join(VERSIONING)}")
    name = (deployment or configured.deployment or client.connection.task_queue).strip()
    if not name:
        raise UsageError("the deployment name must not be empty; set TETHER_DEPLOYMENT or leave it unset")
    return WorkerDeploymentConfig(version=WorkerDeploymentVersion(name, build), use_worker_versioning=True,
                                  default_versioning_behavior=VERSIONING_BEHAVIOR[versioning])


class Worker:
    """Runs workflows and steps for some queues of a deployment.

    Args:
        client: A connected `tether.Client`; its task queue is the deployment's main queue.
        workflows: Workflows to serve (default: every registered one).
        steps: Steps to serve (default: every registered one).
        queues: Which queues to serve: `"main"` (workflow code and unzoned steps) and/or
            zone names. Default: `["main"]`. A zone-only worker runs no workflow code.
        temporal_workflows / temporal_activities: Plain temporalio definitions served beside
            tether's on the main queue.
        max_concurrent_steps: Step attempts run at once per queue (and per rate-limit key
            without its own `max_concurrent`).
        grace: On shutdown, how long step attempts in flight may take to finish and report
            their results (default 30 s). What still runs after that is handed back to the
            engine and retried at once on another worker.
        build_id: This deploy's build (default: `TETHER_BUILD_ID`). With one, the worker
            joins Temporal's worker deployment `deployment` as version `build_id`: runs
            started on a build stay on it ("pinned" workflows) or move to the current build
            ("auto-upgrade"), so a deploy never hands a run to code it was not started on
            without saying so. Make a build current with `tether deployments promote`.
        deployment: The deployment's name (default: `TETHER_DEPLOYMENT`, else the main queue).
        versioning: Default for workflows that do not choose (`@workflow(versioning=)`):
            "auto-upgrade" (default) or "pinned".

    Example:
        >>> async with Worker(client, queues=["main", "vault"]):
        ...     await client.run(process_claim, claim)
    """

    def __init__(self, client: Client, *, workflows: Sequence[Workflow[Any, Any]] | None = None,
                 steps: Sequence[Step[Any, Any]] | None = None,
                 queues: Sequence[str] | None = None,
                 temporal_workflows: Sequence[type] = (),
                 temporal_activities: Sequence[Callable[..., Any]] = (),
                 max_concurrent_steps: int = 100, grace: Duration = "30s",
                 build_id: str | None = None, deployment: str | None = None,
                 versioning: Versioning = "auto-upgrade") -> None:
        self.client = client
        self.deployment = deployment_config(client, build_id, deployment, versioning)
        if self.deployment is not None:
            client.serves_builds = True
        self.grace = parse_duration(grace, what="grace")
        self.queues = [q if q == MAIN else check_zone(q) for q in (queues or [MAIN])]
        wfs = list(workflows) if workflows is not None else list(_registry.workflows.values())
        sts = list(steps) if steps is not None else list(_registry.steps.values())
        sts += [s for s in _registry.steps.values() if s.options.any_zone and s not in sts]
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=max_concurrent_steps)
        self._served: set[str] = set()  # the activity names this worker serves
        self._rates: dict[str, float | None] = {}
        self._workers = [
            self._temporal_worker(q, wfs, sts, list(temporal_workflows), list(temporal_activities),
                                  max_concurrent_steps)
            for q in self.queues
        ]
        # a queue per rate-limit key beside each zone's queue, polled at the key's rate
        self._workers += [w for q in self.queues for w in self._limit_workers(q, wfs, sts, max_concurrent_steps)]
        self._watcher: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._runs: asyncio.Future[list[None]] | None = None
        self._stopping: list[asyncio.Future[None]] = []

    def _temporal_worker(self, queue: str, wfs: list[Workflow[Any, Any]],
                         sts: list[Step[Any, Any]], raw_wfs: list[type],
                         raw_acts: list[Callable[..., Any]], concurrency: int) -> TemporalWorker:
        zone = None if queue == MAIN else queue
        # built-in steps marked any_zone (MCP tool calls) run wherever the workflow routes them
        activities = [step_activity(s) for s in sts if s.options.runs_on == zone or s.options.any_zone]
        workflows: list[type] = []
        if zone is None:
            workflows = [wf.defn for wf in wfs] + raw_wfs
            activities += raw_acts
        if not workflows and not activities:
            where = "the main queue" if zone is None else f"zone {zone!r}"
            raise UsageError(f"nothing to serve on {where}: no workflow or step runs there "
                             "(check --queues and the steps' runs_on)")
        return self._make(zone_queue(self.client.connection.task_queue, zone), wfs, workflows, activities,
                          max_concurrent_activities=concurrency)

    def _limit_workers(self, queue: str, wfs: list[Workflow[Any, Any]], sts: list[Step[Any, Any]],
                       concurrency: int) -> list[TemporalWorker]:
        zone = None if queue == MAIN else queue
        out = []
        for key, served in served_keys(zone, sts).items():
            limit = limits.get(key)
            assert limit is not None  # every key a step or a model call names was declared
            # the rate is the queue's, on the server, for all the key's workers together (set by
            # `watch_cooldowns`); the concurrency cap is each worker's own
            queue = limit_queue(zone_queue(self.client.connection.task_queue, zone), key)
            self._rates[queue] = limit.per_second
            out.append(self._make(queue, wfs, [], [step_activity(s) for s in served],
                                  max_concurrent_activities=limit.max_concurrent or concurrency))
        return out

    def _make(self, task_queue: str, wfs: list[Workflow[Any, Any]], workflows: list[type],
              activities: list[Callable[..., Any]], **options: Any) -> TemporalWorker:
        # getattr: written as an attribute inside this class, the dunder name would be mangled
        self._served.update(getattr(a, "__temporal_activity_definition").name for a in activities)
        try:
            return TemporalWorker(
                self.client.temporal,
                task_queue=task_queue,
                workflows=workflows, activities=activities,
                activity_executor=self._executor,
                workflow_runner=sandbox_runner(m for wf in wfs for m in wf.passthrough),
                graceful_shutdown_timeout=self.grace,
                # heartbeats reach the engine as often as steps send them (every 2 s, and every
                # 0.1 s at most while a step streams): they bring cancellations back, so a
                # cancelled run's steps stop within seconds, and carry live tokens and progress
                max_heartbeat_throttle_interval=timedelta(seconds=liveness.LIVE_EVERY),
                # a workflow cached on a worker that died moves to another one within seconds
                sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
                deployment_config=self.deployment,
                **options,
                interceptors=[LivenessInterceptor(),
                              CooldownInterceptor(self.client.temporal, self.client.connection.namespace),
                              *tracing.worker_interceptors(self.client.temporal.config()["interceptors"],
                                                           self.client.connection.telemetry)],
            )
        except RuntimeError as exc:  # the sandbox refused a workflow's module: say which line and why
            clear = explain(exc)
            if clear is None:
                raise
            raise clear from exc

    @property
    def task_queues(self) -> list[str]:
        """The Temporal task queues this worker polls."""
        return [w.task_queue for w in self._workers]

    async def run(self) -> None:
        """Serve until cancelled (or `shutdown()`); then stop gracefully: no new work, step
        attempts in flight get `grace` to finish and report, the rest are handed back.
        Cancelling it again during that stops at once."""
        await self._prepare()
        self._runs = asyncio.gather(*(w.run() for w in self._workers))
        if self._rates:  # any worker of a key keeps its rate and lifts its cooldowns on time
            self._watcher = asyncio.create_task(watch_cooldowns(self.client.temporal,
                                                                self.client.connection.namespace, self._rates))
        try:
            await asyncio.shield(self._runs)
        except asyncio.CancelledError:
            await self._stop()
            raise
        finally:
            if self._watcher is not None:
                self._watcher.cancel()
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def _stop(self) -> None:
        runs = self._runs
        # Temporal's own graceful shutdown: stop polling, give attempts in flight `grace`
        self._stopping = [asyncio.ensure_future(w.shutdown()) for w in self._workers]
        if runs is None:
            await asyncio.gather(*self._stopping, return_exceptions=True)
            return
        try:
            await asyncio.wait({runs}, timeout=self.grace.total_seconds() + 1)
        except asyncio.CancelledError:  # stopped again: at once
            runs.cancel()
            raise
        if runs.done():
            if not runs.cancelled():
                runs.exception()  # retrieved here; run() re-raises cancellation, not this
            return
        # attempts that ignore cancellation (a sync step blocked in I/O) would hold the worker:
        # fail them through the engine so they are retried elsewhere at once, then let go
        await liveness.hand_back(self.client.temporal, self.task_queues)
        runs.cancel()
        await asyncio.wait({runs}, timeout=2)

    async def _prepare(self) -> None:
        if getattr(self, "_prepared", False):
            return
        # human tasks publish open task ids in a search attribute the namespace must know
        if MAIN in self.queues:
            await ensure_search_attributes(self.client)
        # a key's rate is in force before its queue is polled: calls waiting there would
        # otherwise go through at once, unthrottled, until the watcher's first look
        for queue, rate in self._rates.items():
            await apply_rate(self.client.temporal, self.client.connection.namespace, queue, rate)
            join(queue, rate, await queue_state(self.client.temporal, self.client.connection.namespace, queue))
        # and the model client code is loaded off the event loop: its first import takes seconds,
        # which would hold up every run on this worker. With rate-limited model keys, before the
        # worker polls (calls held back by the import would then go together); otherwise in the
        # background, so a worker that never calls a model does not wait for it
        providers = self._model_providers()
        if providers and any(k is not None and limits.is_model_key(k) for k in map(queue_limit, self._rates)):
            await asyncio.to_thread(preload, providers)
        elif providers:
            preload_soon(providers)
        self._prepared = True

    def _model_providers(self) -> list[str]:
        """Providers whose client code this worker loads before it polls: those of rate-limited
        models, of the default model, and the OpenAI-compatible one (OpenAI, Ollama, vLLM, ...),
        when it serves model calls at all."""
        if STEP_NAME not in self._served:
            return []
        keys = [k for k in map(queue_limit, self._rates) if k is not None and limits.is_model_key(k)]
        named = [k.split(":", 1)[0] for k in keys]
        default = default_model().split(":", 1)[0]
        return sorted({"openai", *named, default} - {"local", "scripted"})

    async def __aenter__(self) -> Worker:
        await self._prepare()
        self._task = asyncio.create_task(self.run())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    async def shutdown(self) -> None:
        """Stop gracefully (see `run`) and wait until the worker has stopped."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        else:
            await self._stop()
