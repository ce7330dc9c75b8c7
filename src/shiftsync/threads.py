"""A thread pool whose tasks run in the context of the code that submitted them.

Plain threads start with an empty `contextvars` context, so what a caller set for its own work
(the retry tally of a table, aws/retry_log.py) would not reach the helper threads that work
for it. Each task gets a copy of the submitter's context (one copy per task: a context can
be entered by one thread at a time).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class ContextThreadPool(ThreadPoolExecutor):
    """ThreadPoolExecutor whose tasks see the submitter's context variables."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        context = contextvars.copy_context()

        def in_context() -> T:
            return context.run(fn, *args, **kwargs)

        return super().submit(in_context)


__all__ = ["ContextThreadPool"]
