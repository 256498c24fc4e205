"""A progress bar for long work made of a few uneven stages (extraction, a build's set-up, a large export).

Each stage can take from a second to a minute and has no inner count, so the bar shows ``stage k/N: name`` and
an elapsed clock that a background thread keeps ticking: the user sees what runs and that it still runs. Like
every tqdm bar in wavehub it draws only on a terminal (``disable=None``: pipes and logs stay clean), and an
error erases it, so the one-line error stands alone.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

__all__ = ["Stages", "stages"]


class Stages:
    """``step("name")`` starts the next stage; the previous one counts as done."""

    def __init__(self, desc: str, total: int, enabled: bool = True):
        self._bar = None
        self._stop = threading.Event()
        if not enabled:
            return
        from tqdm.auto import tqdm

        self._bar = tqdm(
            total=total,
            desc=desc,
            unit="stage",
            dynamic_ncols=True,
            disable=None,
            leave=True,
            bar_format="{desc}: {n_fmt}/{total_fmt} {postfix} [{elapsed}]",
        )
        if self._bar.disable:
            self._bar = None
            return
        self._started = False
        threading.Thread(target=self._tick, daemon=True).start()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            bar = self._bar
            if bar is not None:
                bar.refresh()

    def __call__(self, name: str) -> None:
        if self._bar is None:
            return
        if self._started:
            self._bar.update(1)
        self._started = True
        self._bar.set_postfix_str(name, refresh=True)

    def close(self, ok: bool = True) -> None:
        self._stop.set()
        bar, self._bar = self._bar, None
        if bar is None:
            return
        if ok:
            bar.update(bar.total - bar.n)
            bar.set_postfix_str("done", refresh=False)
        else:
            bar.leave = False
        bar.close()


@contextlib.contextmanager
def stages(desc: str, total: int, enabled: bool = True) -> Iterator[Stages]:
    """``with stages("extract", 4) as step: step("load ancestry"); ...``"""
    s = Stages(desc, total, enabled)
    try:
        yield s
    except BaseException:
        s.close(ok=False)
        raise
    s.close()
