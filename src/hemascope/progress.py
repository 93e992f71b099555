"""Progress reporting and cancellation without any GUI types.

Long computations accept ``progress`` (a callable) and ``cancel`` (anything with ``is_set()``, such
as :class:`threading.Event`). The napari widgets, the CLI progress bars and dask workers all plug in
through these two arguments, so compute code never knows who is watching.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Protocol, TypeVar

from hemascope.errors import Cancelled

ProgressCallback = Callable[[int, int, str], None]
"""``progress(done, total, message)``: ``done`` of ``total`` steps finished."""


class CancelToken(Protocol):
    """Anything with ``is_set() -> bool`` (e.g. :class:`threading.Event`)."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class ProgressEvent:
    """One progress report of a generator-style computation: ``done`` of ``total`` steps."""

    done: int
    total: int
    message: str = ""

    @property
    def fraction(self) -> float:
        """Completed fraction in [0, 1] (0 while the total is unknown)."""
        return min(max(self.done / self.total, 0.0), 1.0) if self.total > 0 else 0.0


T = TypeVar("T")


def drain(steps: Generator[ProgressEvent, None, T], progress: ProgressCallback | None = None) -> T:
    """Run a generator-style computation to its end, passing its events to ``progress``.

    Returns
    -------
    The generator's return value.
    """
    while True:
        try:
            event = next(steps)
        except StopIteration as stop:
            return stop.value
        report(progress, event.done, event.total, event.message)


def report(progress: ProgressCallback | None, done: int, total: int, message: str = "") -> None:
    """Call ``progress`` if given."""
    if progress is not None:
        progress(done, total, message)


def check_cancelled(cancel: CancelToken | None) -> None:
    """Raise :class:`~hemascope.errors.Cancelled` if ``cancel`` is set."""
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled by the user")


def tqdm_progress(desc: str = "", disable: bool = False) -> ProgressCallback:
    """A ``progress`` callback that drives a tqdm bar on stderr (for the CLI)."""
    from tqdm.auto import tqdm

    bar = None

    def _progress(done: int, total: int, message: str = "") -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=desc, disable=disable, leave=False)
        if bar.total != total:
            bar.total = total
        bar.n = done
        if message:
            bar.set_postfix_str(message, refresh=False)
        bar.refresh()
        if done >= total:
            bar.close()

    return _progress
