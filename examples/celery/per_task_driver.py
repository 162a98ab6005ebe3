"""The pattern from the field that hurts: a new Neo4j driver in every task.

Each task pays a TCP connect, the Bolt handshake and authentication before its query, and closes
the connection after it. Neo4j sees a stream of connections that live for milliseconds and carry
one query each, and with many workers the server spends its time authenticating.

Run it:  celery -A per_task_driver worker --concurrency 2
"""

from neo4j import GraphDatabase, RoutingControl

import settings

app = settings.make_app("per-task")


@app.task(name="per_task_driver.run_job")
def run_job(job_id: int) -> dict:
    # Anti-pattern on purpose: see worker_driver.py for the fix.
    with GraphDatabase.driver(settings.NEO4J_URI, auth=settings.AUTH) as driver:
        records, _, _ = driver.execute_query(
            settings.job_query(run_job.name),
            job=job_id,
            size=settings.JOB_SIZE,
            database_=settings.NEO4J_DATABASE,
            routing_=RoutingControl.READ,
        )
    return {"job": records[0]["job"], "checksum": records[0]["checksum"]}
