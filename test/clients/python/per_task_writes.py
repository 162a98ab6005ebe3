"""Per-task workers as Celery tasks are often written: a new driver per task, one auto-commit write
(session.run) or one managed write (execute_query), the driver closed after. Runs WORKERS threads until
the file named by STOP_FILE exists, then prints one JSON line: every task's id, outcome, error code and
start/end times (ms since the epoch), for the caller to count and compare with what Neo4j committed.
Environment: NEO4J_URI, NEO4J_USERNAME, NEO4J_PASSWORD, RUN_ID, WORKERS, SHAPE (run|execute_query),
STOP_FILE, FIRST_ID (ids are FIRST_ID, FIRST_ID+1, ... across workers).
"""
import json
import os
import threading
import time

from neo4j import GraphDatabase
from neo4j.exceptions import Neo4jError

QUERY = "CREATE (:PerTaskWrite {run: $run, id: $id})"

uri = os.environ["NEO4J_URI"]
auth = (os.environ["NEO4J_USERNAME"], os.environ["NEO4J_PASSWORD"])
run_id = os.environ["RUN_ID"]
workers = int(os.environ["WORKERS"])
shape = os.environ.get("SHAPE", "run")
stop_file = os.environ["STOP_FILE"]
lock = threading.Lock()
next_id = [int(os.environ.get("FIRST_ID", "0"))]
records = []


def now_ms():
    return time.time() * 1000


def task(task_id):
    driver = GraphDatabase.driver(uri, auth=auth, max_connection_pool_size=1, user_agent="per-task-writes/python")
    try:
        if shape == "execute_query":
            driver.execute_query(QUERY, run=run_id, id=task_id)
        else:
            with driver.session() as session:
                session.run(QUERY, run=run_id, id=task_id).consume()
    finally:
        driver.close()


def worker():
    while not os.path.exists(stop_file):
        with lock:
            task_id = next_id[0]
            next_id[0] += 1
        started = now_ms()
        outcome, code = "acknowledged", None
        try:
            task(task_id)
        except Neo4jError as error:
            outcome, code = "failed", error.code or type(error).__name__
        except Exception as error:  # ServiceUnavailable, SessionExpired, OSError: what a worker sees
            outcome, code = "failed", type(error).__name__
        with lock:
            records.append({"id": task_id, "outcome": outcome, "code": code, "startedAtMs": started, "endedAtMs": now_ms()})
        if outcome == "failed":
            time.sleep(0.05)


threads = [threading.Thread(target=worker) for _ in range(workers)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps(records))
