"""Celery beat's schedule, run inside each gunicorn worker when there is no Redis.

The embedded default (SQLite, no Redis) has no broker, so no Celery worker or beat process: the
periodic jobs (budget resets, usage rollup, retention) would never run. Here each worker runs the
same schedule (config/celery.py) in a green thread, calling the tasks in-process. Every periodic
task is idempotent and safe to run concurrently, so several workers running it is only extra
work; a random start offset spreads them out.
"""

import logging
import random
import time

log = logging.getLogger(__name__)


def start() -> None:
    """Run the beat schedule in a background green thread of this (gevent) worker."""
    import gevent

    gevent.spawn(_loop)


def _loop() -> None:
    from django.db import close_old_connections
    from django.utils.module_loading import import_string

    from config.celery import app

    schedule = {name: (entry["task"], float(entry["schedule"])) for name, entry in app.conf.beat_schedule.items()}
    due = {name: time.monotonic() + random.uniform(0, every) for name, (_, every) in schedule.items()}
    while True:
        name = min(due, key=due.__getitem__)
        time.sleep(max(0.0, due[name] - time.monotonic()))
        task, every = schedule[name]
        due[name] = time.monotonic() + every
        try:
            import_string(task).run()  # the task's own function, here and now: no broker
        except Exception:
            log.exception("periodic job %s failed; it runs again in %.0f s", name, every)
        finally:
            close_old_connections()
