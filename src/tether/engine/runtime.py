"""The Temporal runtime: how workflow code and step attempts on a worker get their answers.

Installed into `tether._runtime` when `tether.engine` is imported. Inside Temporal workflow
code it answers with the workflow's deterministic time, timers and activities; inside a
step attempt with the attempt's info, heartbeats and idempotency key; elsewhere as plain
Python (the base `Runtime`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn
from uuid import UUID

from temporalio import activity, workflow

from tether import _runtime, settings
from tether.engine import durable, liveness, tasks
from tether.engine.codec import FileStore, codec_from_env
from tether.engine.converter import data_converter

if TYPE_CHECKING:
    from pydantic import BaseModel

    from tether.step import Step, StepOptions
    from tether.workflow import Workflow


class TemporalRuntime(_runtime.Runtime):
    """Answers for Temporal workflow code and activities; plain Python anywhere else."""

    # ---- workflow code ----

    def in_workflow(self) -> bool:
        return workflow.in_workflow()

    def in_run(self) -> bool:
        return workflow.in_workflow()

    def replaying(self) -> bool:
        return workflow.in_workflow() and workflow.unsafe.is_replaying_history_events()

    def now(self) -> datetime:
        return workflow.now() if workflow.in_workflow() else super().now()

    def time_ns(self) -> int:
        return workflow.time_ns() if workflow.in_workflow() else super().time_ns()

    def uuid4(self) -> UUID:
        return workflow.uuid4() if workflow.in_workflow() else super().uuid4()

    async def sleep(self, seconds: float) -> None:
        if workflow.in_workflow():
            await workflow.sleep(seconds)
        else:
            await super().sleep(seconds)

    async def wait(self, condition: Callable[[], bool], timeout: float | None) -> bool:
        if not workflow.in_workflow():
            return await super().wait(condition, timeout)
        try:
            await workflow.wait_condition(condition, timeout=timeout)
        except TimeoutError:
            return False
        return True

    def patched(self, patch_id: str) -> bool:
        return workflow.patched(patch_id) if workflow.in_workflow() else True

    def continue_as_new(self, args: list[Any]) -> NoReturn:
        if not workflow.in_workflow():
            super().continue_as_new(args)
        workflow.continue_as_new(args=args)

    def run_state(self) -> dict[str, Any]:
        return durable.run_state() if workflow.in_workflow() else {}

    def memo_value(self, key: str) -> Any:
        return workflow.memo_value(key, None) if workflow.in_workflow() else None

    def upsert_memo(self, values: dict[str, Any]) -> None:
        if workflow.in_workflow():
            workflow.upsert_memo(values)

    def run_models(self) -> dict[str, str]:
        if not workflow.in_workflow():
            return {}
        models: dict[str, str] = workflow.memo_value(_runtime.MODELS_MEMO, {}, type_hint=dict[str, str])
        return models

    async def execute_step(self, step: Step[Any, Any], args: Sequence[Any], kwargs: dict[str, Any], *,
                           attempts: int | None = None, options: StepOptions | None = None) -> Any:
        if not workflow.in_workflow():
            return await super().execute_step(step, args, kwargs)
        return await durable.execute_step(step, args, kwargs, attempts=attempts, options=options)

    async def run_child(self, wf: Workflow[Any, Any], args: list[Any]) -> Any:
        if not workflow.in_workflow():
            return await super().run_child(wf, args)
        return await durable.run_child(wf, args)

    def tasks(self, what: str) -> _runtime.TaskBoard:
        if not workflow.in_workflow():
            return super().tasks(what)
        return tasks.Board()

    # ---- step attempts ----

    def attempt(self) -> _runtime.Attempt | None:
        if not activity.in_activity():
            return None
        info = activity.info()
        return _runtime.Attempt(run_id=info.workflow_id or "", workflow=info.workflow_type or "",
                           step=info.activity_type, attempt=info.attempt, queue=info.task_queue)

    def heartbeat(self, *details: Any) -> None:
        if activity.in_activity() and not liveness.user_heartbeat(*details):
            activity.heartbeat(*details)

    def streams(self) -> bool:
        return liveness.streaming()

    def publish(self, kind: str, fields: dict[str, Any]) -> None:
        liveness.publish(kind, fields)

    def idempotency_key(self, scope: str) -> str:
        return liveness.idempotency_key(scope)

    def run_id(self) -> str | None:
        if workflow.in_workflow():
            return workflow.info().workflow_id
        if activity.in_activity():
            return activity.info().workflow_id
        return None

    def workflow_name(self) -> str | None:
        if workflow.in_workflow():
            return workflow.info().workflow_type
        if activity.in_activity():
            return activity.info().workflow_type
        return None

    def zone(self) -> str | None:
        if workflow.in_workflow():
            return None
        if not activity.in_activity():
            return super().zone()
        return _runtime.queue_zone(activity.info().task_queue) or "main"

    async def seal(self, value: BaseModel) -> bytes:
        (payload,) = await _converter().encode([value])
        return bytes(payload.SerializeToString())

    async def unseal(self, data: bytes, kind: type[BaseModel]) -> Any:
        from temporalio.api.common.v1 import Payload

        (value,) = await _converter().decode([Payload.FromString(data)], [kind])
        return value

    def seals_privately(self) -> bool:
        return getattr(_converter().payload_codec, "keyring", None) is not None

    def blob_store(self) -> Any:
        for codec in getattr(_converter().payload_codec, "codecs", ()):
            if hasattr(codec, "store"):
                return codec.store  # the zone's claim-check store
        configured = settings.current()
        return FileStore(configured.payload_store or configured.state_dir / "payloads")

    def in_sandbox(self) -> bool:
        return workflow.unsafe.in_sandbox()


def _converter() -> Any:
    """The data converter of the running attempt's client, else one built from this process's settings."""
    if activity.in_activity():
        return activity.client().data_converter
    return data_converter(codec_from_env())
