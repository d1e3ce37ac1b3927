"""``capstan executor``: Keptn's job-executor-service on the integration SDK, without Kubernetes.

See docs/executor.md. :class:`~capstan.executor.service.Executor` is the integration,
:mod:`capstan.executor.job` runs an action's tasks under the operator's :class:`Policy`,
:mod:`capstan.executor.process` runs one process, :mod:`capstan.executor.resources` reads the
config, files and secrets from the control plane.
"""

from .job import FEATURES, Policy
from .service import Executor, ExecutorOptions

__all__ = ["FEATURES", "Executor", "ExecutorOptions", "Policy"]
