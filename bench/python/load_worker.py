"""The Python side of `npm run bench`: the official Neo4j Python driver under the same closed-loop
loads as the JavaScript driver, steered by bench/support/load-worker.ts.

It reads one JSON request per line on stdin and answers each with one JSON line on stdout, so that
one long-lived process keeps its drivers (and their warm pools) across the alternating rounds.

Requests:
  {"op": "open", "name": "direct", "uri": "bolt://...", "username": "...", "password": "..."}
  {"op": "load", "name": "direct", "cypher": "...", "rows": 1, "concurrency": 16, "seconds": 2, "shape": ...}
      -> {"queries", "errors", "seconds", "latenciesMs", "firstError"}
  {"op": "fresh_driver", "uri": ..., "username": ..., "password": ..., "seconds": 2, "maxSamples": 500, "shape": ...}
      -> the same shape; each sample is a new driver's connect plus first query (the per-task pattern)
  {"op": "close"}
Concurrency is threads sharing one driver, as a threaded Python worker would. "shape" is how a query
is sent: "executeQuery" (driver.execute_query, a managed transaction; the default) or "session.run"
(an auto-commit query in a session).
"""

import json
import sys
import threading
import time

import neo4j
from neo4j import GraphDatabase, RoutingControl

DATABASE = "neo4j"
drivers: dict[str, neo4j.Driver] = {}


def open_driver(uri: str, username: str, password: str, pool_size: int = 64) -> neo4j.Driver:
    return GraphDatabase.driver(uri, auth=(username, password), max_connection_pool_size=pool_size)


def run_query(driver: neo4j.Driver, cypher: str, rows: int, shape: str = "executeQuery") -> float:
    """Runs one query and answers perf_counter() when its rows were in (before any session close)."""
    if shape == "executeQuery":
        records, _, _ = driver.execute_query(cypher, database_=DATABASE, routing_=RoutingControl.READ)
        rows_in_at = time.perf_counter()
    elif shape == "session.run":
        with driver.session(database=DATABASE, default_access_mode=neo4j.READ_ACCESS) as session:
            records = list(session.run(cypher))
            rows_in_at = time.perf_counter()
    else:
        raise ValueError(f"unknown query shape {shape!r}")
    if len(records) != rows:
        raise RuntimeError(f"expected {rows} rows, got {len(records)}")
    return rows_in_at


def closed_loop(one_query, concurrency: int, seconds: float, max_samples: int | None = None) -> dict:
    """Runs one_query from `concurrency` threads until `seconds` pass. one_query may return the
    milliseconds to record (when it times itself); otherwise its whole call is timed."""
    latencies: list[float] = []
    errors = [0]
    first_error: list[str] = []
    lock = threading.Lock()
    started = time.perf_counter()
    deadline = started + seconds

    def loop() -> None:
        while time.perf_counter() < deadline:
            if max_samples is not None and len(latencies) >= max_samples:
                return
            query_started = time.perf_counter()
            try:
                measured_ms = one_query()
                elapsed_ms = measured_ms if measured_ms is not None else (time.perf_counter() - query_started) * 1000
                with lock:
                    latencies.append(elapsed_ms)
            except Exception as error:  # noqa: BLE001 - every failure is counted, none may end the round
                with lock:
                    errors[0] += 1
                    if not first_error:
                        first_error.append(f"{type(error).__name__}: {error}")
                time.sleep(0.01)

    threads = [threading.Thread(target=loop) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    answer = {
        "queries": len(latencies),
        "errors": errors[0],
        "seconds": time.perf_counter() - started,
        "latenciesMs": latencies,
    }
    if first_error:
        answer["firstError"] = first_error[0]
    return answer


def fresh_driver_query(uri: str, username: str, password: str, shape: str):
    """The per-task pattern: a new driver, its first query, then close (close is not timed)."""

    def one() -> float:
        started = time.perf_counter()
        driver = open_driver(uri, username, password, pool_size=1)
        try:
            return (run_query(driver, "RETURN 1 AS value", 1, shape) - started) * 1000
        finally:
            driver.close()

    return one


def handle(request: dict) -> dict:
    op = request["op"]
    if op == "open":
        drivers[request["name"]] = open_driver(request["uri"], request["username"], request["password"])
        drivers[request["name"]].verify_connectivity()
        return {"ok": True, "driverVersion": neo4j.__version__}
    if op == "load":
        driver = drivers[request["name"]]
        cypher, rows, shape = request["cypher"], request["rows"], request.get("shape", "executeQuery")

        def one_query() -> None:  # answers nothing: the loop times the whole call, as for the other clients
            run_query(driver, cypher, rows, shape)

        return closed_loop(one_query, request["concurrency"], request["seconds"])
    if op == "fresh_driver":
        shape = request.get("shape", "executeQuery")
        one = fresh_driver_query(request["uri"], request["username"], request["password"], shape)
        return closed_loop(one, 1, request["seconds"], request.get("maxSamples"))
    if op == "close":
        for driver in drivers.values():
            driver.close()
        drivers.clear()
        return {"ok": True}
    raise ValueError(f"unknown op {op!r}")


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = handle(json.loads(line))
        except Exception as error:  # noqa: BLE001 - reported to the caller, which decides
            answer = {"error": f"{type(error).__name__}: {error}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
