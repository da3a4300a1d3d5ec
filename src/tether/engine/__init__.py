"""Everything that imports temporalio: workflow classes, activities, client, worker, dev server.

Importing the package installs the Temporal runtime (`tether.engine.runtime`) that answers
the API's questions in workflow code and step attempts, and the generator of each
workflow's Temporal definition.
"""

from tether import _registry, _runtime
from tether.engine import spending  # noqa: F401  (the built-in step that reads what a child run spent)
from tether.engine.durable import workflow_class
from tether.engine.logs import StepFailureLines
from tether.engine.runtime import TemporalRuntime
from tether.engine.tracing import ReplaySafeProviders
from tether.observe import _logging, _setup

_runtime.install(TemporalRuntime())
_registry.use_definer(workflow_class)
_logging.add_filter(StepFailureLines)
_setup.use_provider_maker(ReplaySafeProviders())
for _wf in _registry.workflows.values():  # any decorated before the engine was imported
    if _wf.defn is None:
        _wf.defn = workflow_class(_wf)
