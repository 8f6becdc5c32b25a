"""A guard for UI updates that workers send back with ``call_from_thread``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from textual.css.query import NoMatches

F = TypeVar("F", bound=Callable[..., object])


def from_worker(method: F) -> F:
    """Drop an update that arrives while the app is closing.

    The panes' widgets are all created in ``compose`` and never removed, so a widget that
    cannot be found means the screen is being torn down (the user quit while a worker was
    finishing); there is nothing left to update.
    """

    @functools.wraps(method)
    def guarded(*args: object, **kwargs: object) -> object:
        try:
            return method(*args, **kwargs)
        except NoMatches:
            return None

    return guarded  # type: ignore[return-value]
