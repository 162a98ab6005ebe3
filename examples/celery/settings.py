"""Shared settings of the two Celery example apps, from the environment.

NEO4J_URI points at the sidecar's Bolt proxy (its default listen address is 127.0.0.1:7687), so every
connection the workers open, and every query they run, shows up in the sidecar's neo4j_proxy_* metrics.
"""

import os

from celery import Celery
from neo4j import Query

NEO4J_URI = os.environ.get("NEO4J_URI", "neo4j://127.0.0.1:7687")
NEO4J_USERNAME = os.environ.get("NEO4J_USERNAME", "neo4j")
NEO4J_PASSWORD = os.environ.get("NEO4J_PASSWORD", "")
NEO4J_DATABASE = os.environ.get("NEO4J_DATABASE", "neo4j")
BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", BROKER_URL)

AUTH = (NEO4J_USERNAME, NEO4J_PASSWORD)

# A stand-in for a job's real read: one round trip that does a little work on the server.
JOB_QUERY = "UNWIND range(1, $size) AS i RETURN $job AS job, sum(i) AS checksum"
JOB_SIZE = 100


def job_query(task_name: str) -> Query:
    """JOB_QUERY with the task's name in tx_metadata, so the sidecar's query statistics (with
    queryStats.metadataKey: task) can say which task sends which query; Neo4j's own SHOW TRANSACTIONS
    shows it too."""
    return Query(JOB_QUERY, metadata={"task": task_name})


def make_app(pattern: str) -> Celery:
    """A Celery app whose tasks go to a queue of their own, so the two patterns never share a worker."""
    app = Celery(f"neo4j-example-{pattern}", broker=BROKER_URL, backend=RESULT_BACKEND)
    app.conf.update(
        task_default_queue=f"neo4j-example-{pattern}",
        broker_connection_retry_on_startup=True,
        # One task at a time per process: the connection pattern, not prefetching, sets what Neo4j sees.
        worker_prefetch_multiplier=1,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=3600,
    )
    return app
