"""Background jobs for a pull: a daemon thread per job, and muting the client's log lines from it."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["background"]


class _Muted(logging.Filter):
    """Drops the client's log records from muted threads: a tensor download started before the Hub is known
    to be reachable, whose retry notices ("Retrying in 1s") would otherwise print around wavehub's own error
    when the Hub is unreachable (the download is then abandoned)."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread not in self.threads


_MUTED = _Muted()


def _quiet_threads() -> set[int]:
    """The ident set of :class:`_Muted`, installed on the client's loggers on first use."""
    for name in ("huggingface_hub.utils._http", "huggingface_hub.file_download"):
        lg = logging.getLogger(name)
        if _MUTED not in lg.filters:
            lg.addFilter(_MUTED)
    return _MUTED.threads


def background(fn, *args: Any, quiet: bool = False, **kw: Any):
    """Run ``fn`` on a daemon thread; the returned callable joins it and returns (or raises) its outcome.

    Daemon, not an executor: a download abandoned because the Hub turned out to be unreachable must not keep
    the interpreter from exiting while the client backs off. ``quiet``: the client's log lines from this thread
    are dropped until ``result.unmute()`` (an abandoned download stays quiet for good)."""
    import threading

    box: dict[str, Any] = {}
    quiet_set = _quiet_threads() if quiet else None
    lock, muted = threading.Lock(), [quiet]  # the lock orders the thread's mute against an early unmute()

    def run() -> None:
        with lock:
            if muted[0]:
                quiet_set.add(threading.get_ident())
        try:
            box["value"] = fn(*args, **kw)
        except BaseException as e:  # noqa: BLE001 - re-raised on the calling thread
            box["error"] = e
        finally:
            if quiet_set is not None:
                quiet_set.discard(threading.get_ident())  # idents are reused once a thread ends

    th = threading.Thread(target=run, name=f"wavehub-{getattr(fn, '__name__', 'job')}", daemon=True)
    th.start()

    def result() -> Any:
        th.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    def unmute() -> None:
        with lock:
            muted[0] = False
            if quiet_set is not None:
                quiet_set.discard(th.ident)

    result.unmute = unmute  # type: ignore[attr-defined]
    return result
