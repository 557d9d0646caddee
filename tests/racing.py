"""Run one action from many threads at the same moment, each with its own app context and session."""
from __future__ import annotations

import threading
from collections.abc import Callable

from convene.errors import ConveneError
from convene.extensions import db


def race(app, actions: list[Callable[[], object]], timeout: float = 120) -> list:
    """Start every action together; each returns its result, or the code of the ConveneError it raised.

    Results are in finishing order. The caller's own session is rolled back afterwards, so its
    next reads see what the racers wrote (SQLite keeps a read snapshot otherwise).
    """
    barrier = threading.Barrier(len(actions))
    results: list = []
    guard = threading.Lock()

    def run(action) -> None:
        with app.app_context():
            barrier.wait()
            try:
                result = action()
            except ConveneError as error:
                result = error.code
            finally:
                db.session.remove()
            with guard:
                results.append(result)

    threads = [threading.Thread(target=run, args=(action,)) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    db.session.rollback()
    assert len(results) == len(actions), "a racer did not finish"
    return results
