"""One client scenario against a Neo4j server (or the sidecar's Bolt proxy) with the official Python driver
(the 4.4, 5.x or 6.x line: the few calls 4.4 names differently go through the shims below).

    python scenario.py --uri bolt://127.0.0.1:7687 --user neo4j --password secret --scenario autocommit

Prints exactly one JSON line on stdout, the same contract as the Java client (test/clients/java) and
the ScenarioResult type in scripts/clients/run-scenario.ts, so results from both clients, direct or
through the proxy, can be compared field by field. A Neo4j error is a result (ok=false, exit 0), not
a crash: only bad arguments or a broken harness exit non-zero.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
import time
import traceback
import uuid
import warnings
from typing import Any, Callable, Optional

import neo4j
from neo4j import GraphDatabase, Driver
from neo4j.exceptions import Neo4jError, ServiceUnavailable, SessionExpired, TransientError

SCENARIOS = (
    "autocommit",
    "explicit-tx",
    "managed-read",
    "managed-write",
    "failing-query",
    "wrong-password",
    "large-result",
    "concurrent",
    "cluster-spread",
    "cluster-read-loop",
    "cluster-write-loop",
)

# The 5.x driver warns on every GQL attribute read, 4.4 on verify_connectivity; stderr noise would
# only hide real problems.
warnings.filterwarnings("ignore", message="GQLSTATUS support is a preview feature")
warnings.filterwarnings("ignore", message="The configuration may change in the future")

# 4.4 has no execute_read/execute_write, single(strict=...), last_bookmarks() or is_retryable().
DRIVER_4 = neo4j.__version__.startswith("4.")

# Both clients build the same payloads so that their checksums, and the proxy's, must agree.
PAYLOAD_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"

# Each cluster member holds one (:ClusterMember {name}) node, so a transaction's record names the member
# that served it (test/support/cluster.ts).
CLUSTER_READ = "MATCH (m:ClusterMember) RETURN m.name AS member"
CLUSTER_WRITE = "CREATE (w:ClusterWrite {id: $id}) WITH w MATCH (m:ClusterMember) RETURN m.name AS member"


class ScenarioContext:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.server: Optional[dict[str, Any]] = None

    def note_server(self, summary: Any) -> None:
        if self.server is None and summary is not None and summary.server is not None:
            self.server = server_info_json(summary.server)

    def session(self, driver: Driver, **config: Any) -> Any:
        if self.args.database:
            config["database"] = self.args.database
        return driver.session(**config)


def server_info_json(info: Any) -> dict[str, Any]:
    version = info.protocol_version
    return {
        "address": str(info.address),
        "agent": info.agent,
        "protocolVersion": f"{version[0]}.{version[1]}",
    }


def error_json(error: BaseException) -> dict[str, Any]:
    # The driver chains the server's GQL cause (e.g. 42I06 under 42001) as __cause__.
    cause = error.__cause__
    common = {
        "className": type(error).__name__,
        "gqlStatus": getattr(error, "gql_status", None),
        "gqlStatusDescription": getattr(error, "gql_status_description", None),
        "causeGqlStatus": getattr(cause, "gql_status", None) if cause is not None else None,
    }
    if isinstance(error, Neo4jError):
        return {
            **common,
            "code": error.code,
            "classification": error.classification,
            "message": error.message,
            "retryable": is_retryable(error),
        }
    return {
        **common,
        "code": None,
        "classification": None,
        "message": str(error),
        "retryable": is_retryable(error),
    }


def single(result: Any) -> Any:
    """The one record of a result, failing when there is not exactly one (4.4: single() only warns)."""
    if DRIVER_4:
        records = list(result)
        if len(records) != 1:
            raise ValueError(f"expected exactly one record, got {len(records)}")
        return records[0]
    return result.single(strict=True)


def execute_read(session: Any, work: Callable[[Any], Any]) -> Any:
    return session.read_transaction(work) if DRIVER_4 else session.execute_read(work)


def execute_write(session: Any, work: Callable[[Any], Any]) -> Any:
    return session.write_transaction(work) if DRIVER_4 else session.execute_write(work)


def has_bookmark(session: Any) -> bool:
    if DRIVER_4:
        return bool(session.last_bookmark())
    return len(session.last_bookmarks().raw_values) > 0


def is_retryable(error: BaseException) -> bool:
    method = getattr(error, "is_retryable", None)
    if method is not None:
        return bool(method())
    # What 4.4's own retry loop (Session._run_transaction) retries.
    if isinstance(error, TransientError):
        return error.is_retriable()
    return isinstance(error, (ServiceUnavailable, SessionExpired))


def payload_block(row_bytes: int) -> str:
    repeats = row_bytes // len(PAYLOAD_ALPHABET) + 1
    return (PAYLOAD_ALPHABET * repeats)[:row_bytes]


def run_autocommit(driver: Driver, ctx: ScenarioContext) -> dict[str, Any]:
    with ctx.session(driver) as session:
        result = session.run("RETURN 1 AS value")
        records = list(result)
        ctx.note_server(result.consume())
    return {"records": len(records), "value": records[0]["value"]}


def run_explicit_tx(driver: Driver, ctx: ScenarioContext) -> dict[str, Any]:
    probe_id = str(uuid.uuid4())
    with ctx.session(driver) as session:
        tx = session.begin_transaction()
        try:
            created = single(tx.run("CREATE (p:ScenarioProbe {id: $id}) RETURN p.id AS id", id=probe_id))
            deleted_result = tx.run("MATCH (p:ScenarioProbe {id: $id}) DELETE p RETURN count(*) AS deleted", id=probe_id)
            deleted = single(deleted_result)
            ctx.note_server(deleted_result.consume())
            tx.commit()
        finally:
            tx.close()
        bookmarked = has_bookmark(session)
    return {
        "queries": 2,
        "createdIdMatches": created["id"] == probe_id,
        "deleted": deleted["deleted"],
        "committed": True,
        "hasBookmark": bookmarked,
    }


def run_managed_read(driver: Driver, ctx: ScenarioContext) -> dict[str, Any]:
    def work(tx: Any) -> tuple[int, Any]:
        result = tx.run("RETURN 1 AS value")
        value = single(result)["value"]
        return value, result.consume()

    with ctx.session(driver) as session:
        value, summary = execute_read(session, work)
    ctx.note_server(summary)
    return {"value": value, "database": summary.database}


def run_managed_write(driver: Driver, ctx: ScenarioContext) -> dict[str, Any]:
    probe_id = str(uuid.uuid4())

    def work(tx: Any) -> Any:
        result = tx.run("CREATE (p:ScenarioProbe {id: $id}) WITH p DELETE p RETURN count(*) AS touched", id=probe_id)
        single(result)
        return result.consume()

    with ctx.session(driver) as session:
        summary = execute_write(session, work)
    ctx.note_server(summary)
    return {
        "nodesCreated": summary.counters.nodes_created,
        "nodesDeleted": summary.counters.nodes_deleted,
        "database": summary.database,
    }


def run_failing_query(driver: Driver, ctx: ScenarioContext) -> dict[str, Any]:
    with ctx.session(driver) as session:
        # Raises: a syntax error is a Neo4j error the scenario reports as its result.
        session.run("THIS IS NOT CYPHER").consume()
    return {}


def run_wrong_password(driver: Driver, ctx: ScenarioContext) -> dict[str, Any]:
    driver.verify_connectivity()
    return {}


def run_large_result(driver: Driver, ctx: ScenarioContext) -> dict[str, Any]:
    rows = ctx.args.rows
    row_bytes = ctx.args.row_bytes
    digest = hashlib.sha256()
    row_count = 0
    payload_bytes = 0
    last_index = 0
    in_order = True
    with ctx.session(driver) as session:
        result = session.run(
            "UNWIND range(1, $rows) AS i RETURN i, left(toString(i) + '-' + $block, $rowBytes) AS payload",
            rows=rows,
            block=payload_block(row_bytes),
            rowBytes=row_bytes,
        )
        for record in result:
            encoded = record["payload"].encode("utf-8")
            digest.update(encoded)
            digest.update(b"\n")
            payload_bytes += len(encoded)
            row_count += 1
            in_order = in_order and record["i"] == last_index + 1
            last_index = record["i"]
        ctx.note_server(result.consume())
    return {"rows": row_count, "payloadBytes": payload_bytes, "sha256": digest.hexdigest(), "inOrder": in_order}


def run_concurrent(driver: Driver, ctx: ScenarioContext) -> dict[str, Any]:
    sessions = ctx.args.concurrency
    # Every worker holds an open transaction until all have one, so the server (or proxy) really
    # sees `sessions` connections at once rather than a few reused in turn.
    barrier = threading.Barrier(sessions, timeout=ctx.args.barrier_timeout)
    values: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        arrived = False
        try:
            with ctx.session(driver) as session:
                with session.begin_transaction() as tx:
                    result = tx.run("RETURN $index AS index", index=index)
                    value = single(result)["index"]
                    summary = result.consume()
                    arrived = True
                    barrier.wait()
                    tx.commit()
            with lock:
                values.append(value)
                ctx.note_server(summary)
        except BaseException as error:  # noqa: BLE001 - every failure is reported, none may kill the run
            with lock:
                errors.append(error)
        finally:
            # A failed worker still arrives, so one failure is reported as such instead of as a barrier timeout.
            if not arrived:
                try:
                    barrier.wait()
                except threading.BrokenBarrierError:
                    pass

    threads = [threading.Thread(target=worker, args=(index,), daemon=True) for index in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = {
        "sessions": sessions,
        "succeeded": len(values),
        "failed": len(errors),
        "distinctValues": len(set(values)),
        "heldOpenTogether": len(errors) == 0,
    }
    if errors:
        # The first real failure explains the run; barrier breaks are only its echo.
        real = [e for e in errors if not isinstance(e, threading.BrokenBarrierError)] or errors
        raise ScenarioFailure(real[0], result)
    return result


class MarkerError(Exception):
    """A member answered with other than one ClusterMember: the test setting is wrong, not the driver."""


class ClusterLoad:
    """Managed read and write transactions on the cluster marker queries, one new session each, counted
    by the member that served them; shared by the workers of one run."""

    def __init__(self, driver: Driver, ctx: ScenarioContext) -> None:
        self.driver = driver
        self.ctx = ctx
        self.lock = threading.Lock()
        self.counts = {access: {"transactions": 0, "committed": 0, "byMember": {}} for access in ("read", "write")}
        self.acknowledged: list[str] = []
        self.failures: list[dict[str, Any]] = []
        self.attempts = 0
        self.retried = 0
        self.next_write = 0
        self.completed = 0

    def new_write_id(self) -> str:
        with self.lock:
            number = self.next_write
            self.next_write += 1
        return f"{self.ctx.args.id_prefix}-{number}"

    def run_one(self, access: str) -> None:
        write_id = self.new_write_id() if access == "write" else None
        tries = 0

        def work(tx: Any) -> tuple[str, Any]:
            nonlocal tries
            tries += 1
            if write_id is None:
                result = tx.run(CLUSTER_READ)
            else:
                result = tx.run(CLUSTER_WRITE, id=write_id)
            members = [record["member"] for record in result]
            summary = result.consume()
            if len(members) != 1:
                raise MarkerError(f"expected one ClusterMember, got {len(members)}")
            return members[0], summary

        with self.lock:
            self.counts[access]["transactions"] += 1
        member = ""
        failure: Optional[BaseException] = None
        session = self.ctx.session(self.driver)
        try:
            member, summary = execute_read(session, work) if write_id is None else execute_write(session, work)
            self.ctx.note_server(summary)
        except Exception as error:  # noqa: BLE001 - a final failure is data, reported per transaction
            failure = error
        finally:
            try:
                session.close()
            except Exception:  # noqa: BLE001 - the transaction's outcome is known already
                pass
        with self.lock:
            self.attempts += tries
            self.retried += 1 if tries > 1 else 0
            self.completed += 1
            counts = self.counts[access]
            if failure is None:
                counts["committed"] += 1
                counts["byMember"][member] = counts["byMember"].get(member, 0) + 1
                if write_id is not None:
                    self.acknowledged.append(write_id)
            else:
                self.failures.append(cluster_failure_json(access, write_id, failure))
            if self.completed == 1 or self.completed % 10 == 0:
                progress = {"completed": self.completed, "failed": len(self.failures)}
                sys.stderr.write(json.dumps({"progress": progress}, separators=(",", ":")) + "\n")
                sys.stderr.flush()

    def run_workers(self, next_access: Callable[[], Optional[str]]) -> dict[str, Any]:
        """Runs --concurrency workers, each taking the next transaction's access mode until there is none."""

        def worker() -> None:
            while True:
                access = next_access()
                if access is None:
                    return
                self.run_one(access)

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(self.ctx.args.concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return {
            "reads": self.counts["read"],
            "writes": self.counts["write"],
            "acknowledgedWriteIds": self.acknowledged,
            "failures": self.failures,
            "attempts": self.attempts,
            "retried": self.retried,
        }


def cluster_failure_json(access: str, write_id: Optional[str], error: BaseException) -> dict[str, Any]:
    details = error_json(error)
    lines = (details["message"] or "").splitlines()
    return {
        "access": access,
        "id": write_id,
        "className": details["className"],
        "code": details["code"],
        "message": lines[0] if lines else "",
        "retryable": details["retryable"],
    }


def spread_order(reads: int, writes: int) -> list[str]:
    """Reads and writes interleaved evenly, so a change during the run meets both."""
    total = reads + writes
    if total == 0:
        return []
    return ["write" if (i + 1) * writes // total > i * writes // total else "read" for i in range(total)]


def run_cluster_spread(driver: Driver, ctx: ScenarioContext) -> dict[str, Any]:
    pending = iter(spread_order(ctx.args.reads, ctx.args.writes))
    lock = threading.Lock()

    def next_access() -> Optional[str]:
        with lock:
            return next(pending, None)

    return ClusterLoad(driver, ctx).run_workers(next_access)


def stop_signal(duration_ms: Optional[int]) -> threading.Event:
    """Set when stdin reaches its end (the caller closed it) or after duration_ms, whichever is first."""
    stop = threading.Event()

    def watch_stdin() -> None:
        # Raw reads: a daemon thread blocked in the buffered reader aborts the interpreter's shutdown.
        while os.read(sys.stdin.fileno(), 65536):
            pass
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    if duration_ms is not None:
        timer = threading.Timer(duration_ms / 1000, stop.set)
        timer.daemon = True
        timer.start()
    return stop


def cluster_loop(access: str) -> Callable[[Driver, ScenarioContext], dict[str, Any]]:
    def run(driver: Driver, ctx: ScenarioContext) -> dict[str, Any]:
        stop = stop_signal(ctx.args.duration_ms)
        return ClusterLoad(driver, ctx).run_workers(lambda: None if stop.is_set() else access)

    return run


class ScenarioFailure(Exception):
    """A failure that still carries the partial result (e.g. how many concurrent sessions worked)."""

    def __init__(self, cause: BaseException, result: dict[str, Any]) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.result = result


RUNNERS: dict[str, Callable[[Driver, ScenarioContext], dict[str, Any]]] = {
    "autocommit": run_autocommit,
    "explicit-tx": run_explicit_tx,
    "managed-read": run_managed_read,
    "managed-write": run_managed_write,
    "failing-query": run_failing_query,
    "wrong-password": run_wrong_password,
    "large-result": run_large_result,
    "concurrent": run_concurrent,
    "cluster-spread": run_cluster_spread,
    "cluster-read-loop": cluster_loop("read"),
    "cluster-write-loop": cluster_loop("write"),
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uri", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--scenario", required=True, choices=SCENARIOS)
    parser.add_argument("--database", default=None, help="session database; the server default when omitted")
    parser.add_argument("--rows", type=int, default=5000, help="large-result: rows to stream")
    parser.add_argument("--row-bytes", type=int, default=1000, help="large-result: payload bytes per row")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="concurrent: sessions held open at once (default 50); cluster-*: workers (default 1)",
    )
    parser.add_argument("--barrier-timeout", type=float, default=60.0, help="concurrent: seconds to wait for all")
    parser.add_argument("--connection-timeout", type=float, default=10.0, help="driver connection timeout, s")
    parser.add_argument("--reads", type=int, default=300, help="cluster-spread: read transactions")
    parser.add_argument("--writes", type=int, default=30, help="cluster-spread: write transactions")
    parser.add_argument(
        "--duration-ms", type=int, default=None, help="cluster-*-loop: stop after this long (else at end of stdin)"
    )
    parser.add_argument(
        "--max-retry-ms", type=int, default=30000, help="managed transactions' retry budget (the drivers' default)"
    )
    parser.add_argument("--id-prefix", default=None, help="cluster-*: write ids are PREFIX-0, PREFIX-1, ...")
    args = parser.parse_args(argv)
    if args.concurrency is None:
        args.concurrency = 1 if args.scenario.startswith("cluster-") else 50
    if args.id_prefix is None:
        args.id_prefix = uuid.uuid4().hex[:12]
    return args


def server_info_after_failure(driver: Driver) -> Optional[dict[str, Any]]:
    try:
        if DRIVER_4:
            with driver.session() as session:
                return server_info_json(session.run("RETURN 1").consume().server)
        return server_info_json(driver.get_server_info())
    except Exception:  # noqa: BLE001 - the scenario's own error is what matters
        return None


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    ctx = ScenarioContext(args)
    # wrong-password takes the real credentials like every scenario and spoils them itself, so
    # callers (and the proxy tests) can run all scenarios with one set of arguments.
    password = args.password + "-wrong-on-purpose" if args.scenario == "wrong-password" else args.password
    output: dict[str, Any] = {
        "client": "python",
        "scenario": args.scenario,
        "ok": False,
        "driverVersion": neo4j.__version__,
        "uri": args.uri,
        "server": None,
        "durationMs": 0,
        "result": None,
        "error": None,
    }
    started = time.monotonic()
    driver = GraphDatabase.driver(
        args.uri,
        auth=(args.user, password),
        connection_timeout=args.connection_timeout,
        max_connection_pool_size=max(100, args.concurrency),
        max_transaction_retry_time=args.max_retry_ms / 1000,
        user_agent=f"neo4j-pool-sidecar-scenario/python neo4j-python/{neo4j.__version__}",
    )
    try:
        output["result"] = RUNNERS[args.scenario](driver, ctx)
        output["ok"] = True
    except ScenarioFailure as failure:
        output["result"] = failure.result
        output["error"] = error_json(failure.cause)
    except Exception as error:  # noqa: BLE001 - reported in the JSON line
        output["error"] = error_json(error)
        if not isinstance(error, Neo4jError):
            # Not a server answer: the trace is what tells a harness bug from a driver one.
            output["error"]["stack"] = traceback.format_exc(limit=5)
    finally:
        output["durationMs"] = round((time.monotonic() - started) * 1000)
        if ctx.server is None and args.scenario != "wrong-password":
            ctx.server = server_info_after_failure(driver)
        output["server"] = ctx.server
        driver.close()
    sys.stdout.write(json.dumps(output, separators=(",", ":")) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
