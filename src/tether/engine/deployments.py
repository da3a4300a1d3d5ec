"""Worker deployments: which build of an app new runs go to, and which builds still hold runs.

Runs wherever a client runs (CLI, CI, applications). Workers join a deployment when started
with a build id (`TETHER_BUILD_ID`, `tether.Worker(build_id=)`); see `tether.engine.worker`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from temporalio.api.enums.v1 import RoutingConfigUpdateState, VersionDrainageStatus, WorkerDeploymentVersionStatus
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.service import RPCError, RPCStatusCode

from tether.errors import TetherError, UsageError

if TYPE_CHECKING:
    from tether.engine.client import Client

log = logging.getLogger("tether.deployments")

ROUTING_WAIT = 10.0
"""Seconds `promote` waits at most for the engine to route new runs to the promoted build."""
_ROUTING_IN_PROGRESS = RoutingConfigUpdateState.ROUTING_CONFIG_UPDATE_STATE_IN_PROGRESS

_STATUS = {WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_INACTIVE: "inactive",
           WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_CURRENT: "current",
           WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_RAMPING: "ramping",
           WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINING: "draining",
           WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINED: "drained"}
_DRAINAGE = {VersionDrainageStatus.VERSION_DRAINAGE_STATUS_DRAINING: "pinned runs still open",
             VersionDrainageStatus.VERSION_DRAINAGE_STATUS_DRAINED: "no pinned runs left"}


class DeploymentNotFound(TetherError):
    """No worker of this deployment has polled yet."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no worker deployment {name!r}: start a worker with TETHER_BUILD_ID=BUILD (and "
                         "TETHER_DEPLOYMENT, default: the task queue) first")
        self.name = name


@dataclass(frozen=True)
class BuildInfo:
    """One build of a deployment: its id, status (current, draining, drained…) and drainage."""

    build_id: str
    status: str
    drainage: str | None = None


@dataclass(frozen=True)
class DeploymentInfo:
    """A deployment: the build new runs go to, and every build that polled."""

    name: str
    current: str | None
    builds: list[BuildInfo] = field(default_factory=list)


class Deployments:
    """Versioned worker deployments: `promote` a build, `describe` what runs where.

    Reach it as `client.deployments`.
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    def _name(self, deployment: str | None) -> str:
        return deployment or self._client.connection.task_queue

    async def promote(self, build_id: str, *, deployment: str | None = None) -> None:
        """Send new runs (and auto-upgrade runs) to `build_id`; pinned runs stay where they are.

        Returns once the engine routes new runs there: it hands the new routing to its task
        queues in the background, and a run started in between would still go to the old build.

        Raises:
            UsageError: No worker of that build has polled yet (start it first).
            DeploymentNotFound: No worker of the deployment has polled yet.
        """
        name = self._name(deployment)
        request = SetWorkerDeploymentCurrentVersionRequest(
            namespace=self._client.connection.namespace, deployment_name=name, build_id=build_id,
            identity="tether")
        try:
            await self._client.temporal.workflow_service.set_worker_deployment_current_version(request)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                await self.describe(deployment)  # DeploymentNotFound when the deployment itself is unknown
                raise UsageError(f"cannot make build {build_id!r} current in deployment {name!r}: no worker of "
                                 f"that build has polled yet; start one with TETHER_BUILD_ID={build_id}") from None
            if exc.status in (RPCStatusCode.FAILED_PRECONDITION, RPCStatusCode.INVALID_ARGUMENT):
                raise UsageError(f"cannot make build {build_id!r} current in deployment {name!r}: "
                                 f"{exc.message}; start a worker of that build first") from None
            raise
        await self._routed(name)

    async def _routed(self, name: str, *, timeout: float = ROUTING_WAIT) -> None:
        """Wait until the engine's task queues have the deployment's new routing (or `timeout`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        request = DescribeWorkerDeploymentRequest(namespace=self._client.connection.namespace, deployment_name=name)
        while loop.time() < deadline:
            resp = await self._client.temporal.workflow_service.describe_worker_deployment(request)
            if resp.worker_deployment_info.routing_config_update_state != _ROUTING_IN_PROGRESS:
                return
            await asyncio.sleep(0.1)
        log.warning("deployment %s: the engine is still routing new runs to the promoted build after %gs; "
                    "runs started now may go to the previous one", name, timeout)

    async def describe(self, deployment: str | None = None) -> DeploymentInfo:
        """The deployment's current build and each build's status.

        Raises:
            DeploymentNotFound: No worker of the deployment has polled yet.
        """
        name = self._name(deployment)
        try:
            resp = await self._client.temporal.workflow_service.describe_worker_deployment(
                DescribeWorkerDeploymentRequest(namespace=self._client.connection.namespace, deployment_name=name))
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise DeploymentNotFound(name) from None
            raise
        info = resp.worker_deployment_info
        current = info.routing_config.current_deployment_version.build_id or None
        builds = [BuildInfo(build_id=v.deployment_version.build_id, status=_STATUS.get(v.status, "unknown"),
                            drainage=_DRAINAGE.get(v.drainage_status))
                  for v in info.version_summaries]
        return DeploymentInfo(name=name, current=current, builds=builds)


async def run_build(client: Client, run_id: str) -> str | None:
    """The build a run is on (pinned) or last ran on; None for an unversioned run."""
    desc = await client.temporal.get_workflow_handle(run_id).describe()
    info = desc.raw_description.workflow_execution_info.versioning_info
    return info.deployment_version.build_id or None


__all__ = ["BuildInfo", "DeploymentInfo", "DeploymentNotFound", "Deployments", "run_build"]
