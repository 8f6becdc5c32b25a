"""A guard for UI updates that workers send back with ``call_from_thread``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from textual.app import App
from textual.dom import DOMNode

P = ParamSpec("P")
N = TypeVar("N", bound=DOMNode)
R = TypeVar("R")


def is_live(node: DOMNode) -> bool:
    """Whether ``node`` is still on the screen of a running app (the app: whether it is not closing)."""
    if isinstance(node, App):
        return any(screen.is_attached for screen in node.screen_stack)
    return node.is_attached


def from_worker(method: Callable[Concatenate[N, P], R]) -> Callable[Concatenate[N, P], R | None]:
    """Drop an update that arrives after its widget left the screen (the user quit, or the widget was
    removed, while a worker was finishing): there is nothing left to update.

    Checked, not caught: a widget that cannot be found while its pane is live is a bug, and raises.
    """

    @functools.wraps(method)
    def guarded(node: N, *args: P.args, **kwargs: P.kwargs) -> R | None:
        if not is_live(node):
            return None
        return method(node, *args, **kwargs)

    return guarded
