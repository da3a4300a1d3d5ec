"""The tether error tree. Importable anywhere; raised by the SDK, the engine and the CLI.

Developer mistakes (`UsageError`, `ConfigError`) are raised early, at decoration or start
time, with the fix in the message. Run-time failures carry typed attributes.
"""

from __future__ import annotations


class TetherError(Exception):
    """Root of every error tether raises on purpose.

    `retryable` says whether a step that raises it should be tried again; developer
    mistakes and policy blocks are not.
    """

    retryable: bool = True


class UsageError(TetherError):
    """The code or command uses tether in a way it does not support; the message says how to fix it."""

    retryable = False


class ConfigError(TetherError):
    """Configuration is missing or wrong (an address, a key, a port, an extra not installed)."""

    retryable = False


class InvalidInput(UsageError):
    """A workflow input failed validation; nothing was started.

    Attributes:
        workflow: The workflow whose input was rejected.
        field: Dotted path of the first failing field ("" when the whole value is wrong).
    """

    def __init__(self, message: str, *, workflow: str, field: str = "") -> None:
        super().__init__(message)
        self.workflow = workflow
        self.field = field


class UnknownWorkflow(UsageError):
    """No workflow of that name is registered; `available` lists the ones that are."""

    def __init__(self, name: str, available: list[str]) -> None:
        names = ", ".join(sorted(available)) or "none"
        super().__init__(f"no workflow named {name!r}; available: {names}")
        self.name = name
        self.available = available


class ServerUnavailable(ConfigError):
    """The Temporal server could not be reached at `address`."""

    def __init__(self, address: str, reason: str = "") -> None:
        detail = f" ({reason})" if reason else ""
        super().__init__(
            f"cannot reach the Temporal server at {address}{detail}; start one with "
            "`tether dev APP` or pass --address / TETHER_ADDRESS"
        )
        self.address = address
        self.reason = reason


class StepFailed(TetherError):
    """A step failed for good: its retries are exhausted or its error is non-retryable.

    Attributes:
        step: The step's name.
        error_type: Class name of the original exception (e.g. "ValueError").
        reason: Why Temporal stopped retrying ("non-retryable", "retries exhausted", "timeout").
        error_message: The original error's own message, without the step prefix.
        error: The step's own error rebuilt as its class when it is one of tether's
            (`isinstance(failed.error, EgressBlocked)`), else None.
    """

    def __init__(self, message: str, *, step: str, error_type: str = "", reason: str = "",
                 error_message: str = "", error: TetherError | None = None) -> None:
        super().__init__(message)
        self.step = step
        self.error_type = error_type
        self.reason = reason
        self.error_message = error_message or message
        self.error = error


class RunFailed(TetherError):
    """A run ended in failure; `message` is the workflow's error, `error_type` its class name."""

    def __init__(self, run_id: str, message: str, *, error_type: str = "") -> None:
        super().__init__(f"run {run_id} failed: {message}")
        self.run_id = run_id
        self.error_type = error_type
        self.error_message = message


class RunCancelled(TetherError):
    """A run was cancelled before it finished."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id} was cancelled")
        self.run_id = run_id


class RunExists(UsageError):
    """A run with that id exists (open, or finished and id reuse was not allowed): nothing was started."""

    def __init__(self, message: str, *, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class RunNotFound(UsageError):
    """No run with that id exists in the namespace."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run with id {run_id!r}; `tether runs` lists recent runs")
        self.run_id = run_id


class DecryptionFailed(TetherError):
    """A payload could not be decoded here: its key is missing or differs, or its claim check is gone.

    Retryable: the task is retried (the run waits) until a process with the right key or
    payload store picks it up; nothing is dropped.

    Attributes:
        key_id: The key id named in the payload's metadata ("" for a missing claim check).
    """

    def __init__(self, message: str, *, key_id: str) -> None:
        super().__init__(message)
        self.key_id = key_id


class PlaintextRefused(DecryptionFailed):
    """A process with payload keys received an unencrypted payload and refused it (nothing ran).

    Raised for a plaintext `temporal workflow start` against a keyed worker, or a client
    without the key; the message says to use an encrypting client.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, key_id="")


class EgressBlocked(TetherError):
    """A sensitive value (or a handle to one) was about to leave its zone; nothing was sent.

    Attributes:
        label: The value's label (e.g. "ssn").
        zone: The zone the value belongs to.
        destination: Where it was going (a model string, a tool, another zone).
    """

    retryable = False

    def __init__(self, *, label: str, zone: str, destination: str, detail: str = "") -> None:
        extra = f" ({detail})" if detail else ""
        super().__init__(f"egress blocked: sensitive value {label!r} from zone {zone!r} may not go to "
                         f"{destination}{extra}; keep it in a step with runs_on={zone!r} or send a "
                         "non-sensitive summary")
        self.label = label
        self.zone = zone
        self.destination = destination


class HumanTaskExpired(TetherError):
    """Nobody answered a human task before its timeout.

    Attributes:
        task_id: The task's id (`<run id>.<n>`).
        question: What was asked.
    """

    def __init__(self, message: str, *, task_id: str, question: str = "") -> None:
        super().__init__(message)
        self.task_id = task_id
        self.question = question


class TaskNotFound(UsageError):
    """No human task with that id exists (or its run is gone)."""

    def __init__(self, task_id: str, detail: str = "") -> None:
        more = f" ({detail})" if detail else ""
        super().__init__(f"no human task {task_id!r}{more}; `tether tasks` lists open tasks")
        self.task_id = task_id


class TaskClosed(UsageError):
    """The task was already answered, expired, or its run ended; the answer was not used."""

    def __init__(self, message: str, *, task_id: str, status: str = "") -> None:
        super().__init__(message)
        self.task_id = task_id
        self.status = status


class InvalidAnswer(UsageError):
    """An answer does not match the task's schema; the task stays open.

    Attributes:
        task_id: The task answered.
        field: Dotted path of the first failing field ("" when the whole answer is wrong).
    """

    def __init__(self, message: str, *, task_id: str, field: str = "") -> None:
        super().__init__(message)
        self.task_id = task_id
        self.field = field


class CloudModelBlocked(ConfigError):
    """A model outside this machine was about to be called while the cloud guard is on (tests)."""

    def __init__(self, model: str, url: str) -> None:
        super().__init__(f"cloud model call blocked: {model!r} would reach {url}; tests must use "
                         "tether.testing.ScriptedModel, a loopback server or 'local:smollm2'")
        self.model = model
        self.url = url


class ModelError(TetherError):
    """A model call failed: the provider refused it, or kept failing until retries ran out.

    Rate limits (429), server errors (5xx) and timeouts are retryable (`retry_after` says how
    long the provider asked to wait); 400/401/403 are not and carry the provider's message.

    Attributes:
        model: The model string.
        status: The HTTP status, when there was one.
        retry_after: Seconds the provider asked to wait before retrying, if it said.
    """

    def __init__(self, message: str, *, model: str = "", status: int | None = None,
                 retryable: bool = True, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.model = model
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


class ModelOutputInvalid(ModelError):
    """No model produced output that validates, after repairs and fallbacks.

    Attributes:
        model: The last model asked.
        raw: Its last raw reply.
        errors: The validation errors of that reply, one line each.
        tried: Every model asked, in order.
    """

    def __init__(self, message: str, *, model: str, raw: str, errors: list[str],
                 tried: list[str]) -> None:
        super().__init__(message, model=model, retryable=False)
        self.raw = raw
        self.errors = errors
        self.tried = tried


class SensitiveValueMissing(TetherError):
    """A handle was resolved on a worker whose vault does not hold its value.

    Retryable: another worker of the zone (sharing the right vault) may pick the step up.
    """


class TraceNotFound(UsageError):
    """The local span store holds no span of that run (or there is no store at all)."""

    def __init__(self, message: str, *, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class MaxTurnsExceeded(TetherError):
    """An agent used all its turns without giving a final answer.

    Attributes:
        agent: The agent's name.
        max_turns: Its turn limit.
        transcript: The conversation so far (`tether.llm.Message`s; in workflow code).
        transcript_ref: Reference of the conversation in the payload store.
    """

    retryable = False

    def __init__(self, message: str, *, agent: str, max_turns: int, transcript: list[object] | None = None,
                 transcript_ref: str | None = None) -> None:
        super().__init__(message)
        self.agent = agent
        self.max_turns = max_turns
        self.transcript = transcript or []
        self.transcript_ref = transcript_ref


class BudgetExceeded(TetherError):
    """A run (or an agent) spent its budget; the call that would go over was not made.

    Attributes:
        limit: Which limit: "max_cost_usd", "max_tokens", "max_model_calls" or "max_tool_calls".
        limit_value: The limit's value.
        used: What was spent: cost_usd, tokens, model_calls, tool_calls.
    """

    retryable = False

    def __init__(self, message: str, *, limit: str, limit_value: float, used: dict[str, float]) -> None:
        super().__init__(message)
        self.limit = limit
        self.limit_value = limit_value
        self.used = used


class MCPServerFailed(ConfigError):
    """An MCP server could not be started or reached; the message names its command or URL.

    Attributes:
        server: The server's command line or URL.
    """

    def __init__(self, message: str, *, server: str = "") -> None:
        super().__init__(message)
        self.server = server


class NoWorker(TetherError):
    """No worker took an answer in time; it may still be applied when one starts."""


class RunStuck(TetherError):
    """A run cannot move (its workflow code fails, or no worker takes it); `reason` says why
    and what to do. Raised, e.g., when answering one of its tasks: the task stays open.

    Attributes:
        run_id: The run.
        reason: Why it cannot move, and the fix.
    """

    def __init__(self, message: str, *, run_id: str, reason: str) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.reason = reason


# ---- errors across process boundaries ------------------------------------------------------
# A step's error reaches workflow code as data (Temporal's ApplicationError); tether's own errors
# travel with their typed fields and are rebuilt as their class, so callers use isinstance,
# never class names or message text.

ERROR_DETAIL = "tether.error"
"""Key of the failure detail that carries a tether error's kind, message and fields."""


def error_data(exc: TetherError) -> dict[str, object]:
    """`exc` as data: its class name, message and JSON-able attributes (see `error_from_data`)."""
    fields = {k: v for k, v in vars(exc).items() if _plain(v)}
    return {"kind": type(exc).__name__, "message": str(exc), "fields": fields}


def error_from_data(data: object) -> TetherError | None:
    """The tether error `error_data` described, rebuilt as its class (None for anything else)."""
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        return None
    cls = _kinds().get(data["kind"])
    if cls is None:
        return None
    error = cls.__new__(cls)
    Exception.__init__(error, str(data.get("message", "")))
    fields = data.get("fields")
    if isinstance(fields, dict):
        error.__dict__.update(fields)
    return error


def _kinds() -> dict[str, type[TetherError]]:
    found: dict[str, type[TetherError]] = {}
    pending: list[type[TetherError]] = [TetherError]
    while pending:
        cls = pending.pop()
        if cls.__module__ == __name__:  # only the classes of this module are rebuilt
            found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def _plain(value: object) -> bool:
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False
