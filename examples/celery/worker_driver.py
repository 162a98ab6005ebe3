"""The fix: one Neo4j driver per worker process, opened in worker_process_init and closed in
worker_process_shutdown.

Celery's default prefork pool forks its child processes from the main worker process. A driver
must not cross a fork (its sockets and locks would be shared by several processes), so it is created
in each child after the fork, by worker_process_init, never at import time. Tasks then borrow pooled
connections that stay open for the life of the process; worker_process_shutdown closes them cleanly
when the worker stops, so the server does not wait for dead sockets to time out.

Run it:  celery -A worker_driver worker --concurrency 2
"""

from celery.signals import worker_process_init, worker_process_shutdown
from neo4j import Driver, GraphDatabase, RoutingControl

import settings

app = settings.make_app("worker-driver")

_driver: Driver | None = None


def _open_driver() -> Driver:
    return GraphDatabase.driver(
        settings.NEO4J_URI,
        auth=settings.AUTH,
        # A job worker runs one task at a time per process: a small pool is plenty.
        max_connection_pool_size=4,
    )


@worker_process_init.connect
def open_driver(**_: object) -> None:
    global _driver
    _driver = _open_driver()


@worker_process_shutdown.connect
def close_driver(**_: object) -> None:
    global _driver
    if _driver is not None:
        _driver.close()
        _driver = None


def driver() -> Driver:
    global _driver
    # worker_process_init fires only in prefork children; the solo and thread pools land here once.
    if _driver is None:
        _driver = _open_driver()
    return _driver


@app.task(name="worker_driver.run_job")
def run_job(job_id: int) -> dict:
    records, _, _ = driver().execute_query(
        settings.job_query(run_job.name),
        job=job_id,
        size=settings.JOB_SIZE,
        database_=settings.NEO4J_DATABASE,
        routing_=RoutingControl.READ,
    )
    return {"job": records[0]["job"], "checksum": records[0]["checksum"]}
