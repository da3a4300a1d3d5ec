"""tether: durable AI workflows on Temporal.

Workflows are typed async Python; steps are durable, retried and routed to zones; the
engine is Temporal (its dev server locally, any cluster in production).
"""

from tether import llm
from tether._sensitive import Sensitive, sensitive
from tether._version import __version__
from tether.agent import Agent, AgentCheckpoint, AgentResult
from tether.budget import Budget
from tether.durations import Duration, parse_duration
from tether.engine.app import App, load_app
from tether.engine.client import Client, Run, RunDetail, RunSummary
from tether.engine.connection import Connection
from tether.engine.devserver import DevServer
from tether.engine.live import RunEvent
from tether.engine.worker import Worker
from tether.errors import (
    BudgetExceeded,
    CloudModelBlocked,
    ConfigError,
    DecryptionFailed,
    EgressBlocked,
    HumanTaskExpired,
    InvalidAnswer,
    InvalidInput,
    MaxTurnsExceeded,
    MCPServerFailed,
    ModelError,
    ModelOutputInvalid,
    NoWorker,
    RunCancelled,
    RunExists,
    RunFailed,
    RunNotFound,
    RunStuck,
    SensitiveValueMissing,
    ServerUnavailable,
    StepFailed,
    TaskClosed,
    TaskNotFound,
    TetherError,
    UnknownWorkflow,
    UsageError,
)
from tether.escalation import Escalation, escalate
from tether.human import HumanTask, ask_human, confirm
from tether.limits import RateLimit
from tether.observe import decide, log, note
from tether.step import RetryPolicy, Step, step
from tether.tools import Tool, mcp, tool
from tether.workflow import (
    Workflow,
    attempt,
    continue_as_new,
    gather,
    heartbeat,
    idempotency_key,
    in_workflow,
    now,
    patched,
    progress,
    run_id,
    sleep,
    uuid4,
    wait_for,
    workflow,
)

__all__ = [
    "Agent",
    "AgentCheckpoint",
    "AgentResult",
    "App",
    "Budget",
    "BudgetExceeded",
    "Client",
    "CloudModelBlocked",
    "ConfigError",
    "Connection",
    "DecryptionFailed",
    "DevServer",
    "Duration",
    "EgressBlocked",
    "Escalation",
    "HumanTask",
    "HumanTaskExpired",
    "InvalidAnswer",
    "InvalidInput",
    "MCPServerFailed",
    "MaxTurnsExceeded",
    "ModelError",
    "ModelOutputInvalid",
    "NoWorker",
    "RateLimit",
    "RetryPolicy",
    "Run",
    "RunCancelled",
    "RunDetail",
    "RunEvent",
    "RunExists",
    "RunFailed",
    "RunNotFound",
    "RunStuck",
    "RunSummary",
    "Sensitive",
    "SensitiveValueMissing",
    "ServerUnavailable",
    "Step",
    "StepFailed",
    "TaskClosed",
    "TaskNotFound",
    "TetherError",
    "Tool",
    "UnknownWorkflow",
    "UsageError",
    "Worker",
    "Workflow",
    "__version__",
    "ask_human",
    "attempt",
    "confirm",
    "continue_as_new",
    "decide",
    "escalate",
    "gather",
    "heartbeat",
    "idempotency_key",
    "in_workflow",
    "llm",
    "load_app",
    "log",
    "mcp",
    "note",
    "now",
    "parse_duration",
    "patched",
    "progress",
    "run_id",
    "sensitive",
    "sleep",
    "step",
    "tool",
    "uuid4",
    "wait_for",
    "workflow",
]
