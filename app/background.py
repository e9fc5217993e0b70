"""Background tasks of the app's components: how each is stopped."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` unless it has ended, and wait until it has (its ``CancelledError`` is the
    expected end, not an error)."""
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
