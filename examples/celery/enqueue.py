"""Sends a batch of jobs to one pattern's queue and waits for every result.

    python enqueue.py --pattern per-task-driver --tasks 50
    python enqueue.py --pattern worker-driver --tasks 50

Prints one JSON line: the pattern, how many jobs were sent and succeeded, the wall time, and the
checksums seen (every job computes the same one, so one value means every job ran its query).
"""

import argparse
import json
import sys
import time

from celery import group

PATTERNS = ("per-task-driver", "worker-driver")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pattern", choices=PATTERNS, required=True)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for all results")
    args = parser.parse_args()

    if args.pattern == "per-task-driver":
        from per_task_driver import app, run_job
    else:
        from worker_driver import app, run_job

    started = time.monotonic()
    results = group(run_job.s(job) for job in range(args.tasks)).apply_async()
    outcomes = results.get(timeout=args.timeout, propagate=False)
    seconds = time.monotonic() - started
    succeeded = [outcome for outcome in outcomes if isinstance(outcome, dict)]
    failures = [repr(outcome) for outcome in outcomes if not isinstance(outcome, dict)]
    print(
        json.dumps(
            {
                "pattern": args.pattern,
                "tasks": args.tasks,
                "succeeded": len(succeeded),
                "failures": failures[:5],
                "seconds": round(seconds, 3),
                "checksums": sorted({outcome["checksum"] for outcome in succeeded}),
            }
        )
    )
    app.close()
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
