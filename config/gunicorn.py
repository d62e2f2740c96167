"""gunicorn configuration for Tollgate.

The gevent worker holds thousands of slow upstream streams per process (see docs/concurrency.md
for the measurement behind that choice). gevent must patch the standard library before anything
imports psycopg, or database calls block the whole worker: so this patch is the first statement,
and `preload_app` stays off (preloading imports Django, and psycopg with it, before the patch).
"""

from gevent import monkey

monkey.patch_all()

import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

worker_class = "gevent"
worker_connections = int(os.environ.get("TOLLGATE_WORKER_CONNECTIONS", "2000"))
workers = int(os.environ.get("TOLLGATE_WORKERS", "2"))
bind = os.environ.get("TOLLGATE_BIND", "0.0.0.0:4000")
preload_app = False
keepalive = 75  # longer than common load balancers' idle timeout, so they close first
timeout = 120  # heartbeat limit; gevent notifies from its own greenlet, so long streams are fine
graceful_timeout = 30
accesslog = os.environ.get("TOLLGATE_ACCESS_LOG", "-") or None
# The query string is left out, and anything shaped like a key is replaced by its hint
# (config/logredaction.py): a key can arrive in a URL (`/key/info?key=sk-...`).
logger_class = "config.logredaction.RedactingGunicornLogger"
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'
wsgi_app = "config.wsgi:application"
# Several instances may run on one host (tests, blue/green); a shared default socket path would clash.
control_socket_disable = True


def _metrics_directory() -> None:
    """Give prometheus_client's multiprocess mode a clean directory before any worker starts.

    Every worker writes its metric values to files there and /metrics sums them (proxy/metrics.py).
    An operator's PROMETHEUS_MULTIPROC_DIR is emptied of the last run's files; without one, a
    fresh temporary directory is made and removed when the server exits. Read once by the master:
    a reload (HUP) keeps the directory, so counts carry on.
    """
    if os.environ.get("TOLLGATE_METRICS_DIR_OWNER") == str(os.getpid()):
        return  # this master made it: a reload
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        for stale in Path(given).glob("*.db"):
            stale.unlink()
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="tollgate-metrics-")
        os.environ["TOLLGATE_METRICS_DIR_OWNER"] = str(os.getpid())


_metrics_directory()


def post_worker_init(worker) -> None:
    """Move everything loaded at start-up out of the garbage collector's sight, and collect the
    youngest generation less often: a request allocates many short-lived objects, and full
    collections over Django's import-time objects cost throughput for nothing."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)

    from django.conf import settings

    if settings.TOLLGATE_EMBEDDED_BEAT:  # no Redis, so no Celery beat: run its schedule here
        from config import embedded_beat

        embedded_beat.start()

    from proxy import metrics

    metrics.start_flusher()  # this worker's metric values reach the shared files once a second


def worker_exit(server, worker) -> None:
    """Write the last second's metric values before the worker goes (a graceful exit)."""
    try:
        from proxy import metrics

        metrics.flush()
    except Exception as e:  # the worker may be leaving because Django never started
        server.log.warning("metrics not flushed at worker exit: %s", type(e).__name__)


def child_exit(server, worker) -> None:
    """A worker is gone: its live gauges leave the sums; its counters stay counted."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    """Remove the metrics directory this master made (an operator's own is left in place)."""
    if os.environ.get("TOLLGATE_METRICS_DIR_OWNER") == str(os.getpid()):
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
