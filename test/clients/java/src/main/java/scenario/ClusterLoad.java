package scenario;

import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.neo4j.driver.Record;
import org.neo4j.driver.Result;
import org.neo4j.driver.Session;
import org.neo4j.driver.TransactionCallback;
import org.neo4j.driver.summary.ResultSummary;

/**
 * The cluster scenarios: managed read and write transactions on the marker queries of
 * test/support/cluster.ts, one new session each, counted by the member that served them. One instance
 * is shared by the workers of a run.
 */
final class ClusterLoad {
    /** Each member holds one (:ClusterMember {name}) node, so a transaction's record names its member. */
    static final String READ = "MATCH (m:ClusterMember) RETURN m.name AS member";

    static final String WRITE = "CREATE (w:ClusterWrite {id: $id}) WITH w MATCH (m:ClusterMember) RETURN m.name AS member";

    private final Supplier<Session> sessions;
    private final Consumer<ResultSummary> noteServer;
    private final String idPrefix;
    private final Map<String, Map<String, Object>> counts = new LinkedHashMap<>();
    private final List<String> acknowledged = new ArrayList<>();
    private final List<Map<String, Object>> failures = new ArrayList<>();
    private long attempts;
    private long retried;
    private long nextWrite;
    private long completed;

    ClusterLoad(Supplier<Session> sessions, Consumer<ResultSummary> noteServer, String idPrefix) {
        this.sessions = sessions;
        this.noteServer = noteServer;
        this.idPrefix = idPrefix;
        for (String access : List.of("read", "write")) {
            Map<String, Object> perAccess = new LinkedHashMap<>();
            perAccess.put("transactions", 0L);
            perAccess.put("committed", 0L);
            perAccess.put("byMember", new LinkedHashMap<String, Object>());
            counts.put(access, perAccess);
        }
    }

    /** A member answered with other than one ClusterMember: the test setting is wrong, not the driver. */
    static final class MarkerException extends RuntimeException {
        MarkerException(int members) {
            super("expected one ClusterMember, got " + members);
        }
    }

    private record Served(String member, ResultSummary summary) {}

    private synchronized String newWriteId() {
        return idPrefix + "-" + nextWrite++;
    }

    private void runOne(String access) {
        String writeId = access.equals("write") ? newWriteId() : null;
        int[] tries = {0};
        TransactionCallback<Served> work = tx -> {
            tries[0]++;
            Result result = writeId == null ? tx.run(READ) : tx.run(WRITE, Map.of("id", writeId));
            List<Record> records = result.list();
            ResultSummary summary = result.consume();
            if (records.size() != 1) throw new MarkerException(records.size());
            return new Served(records.get(0).get("member").asString(), summary);
        };
        synchronized (this) {
            increment(counts.get(access), "transactions");
        }
        Served served = null;
        RuntimeException failure = null;
        Session session = sessions.get();
        try {
            served = writeId == null ? session.executeRead(work) : session.executeWrite(work);
            noteServer.accept(served.summary());
        } catch (RuntimeException error) {
            failure = error;
        } finally {
            try {
                session.close();
            } catch (RuntimeException ignored) {
                // The transaction's outcome is known already; a close error does not change it.
            }
        }
        synchronized (this) {
            attempts += tries[0];
            if (tries[0] > 1) retried++;
            completed++;
            if (failure == null) {
                increment(counts.get(access), "committed");
                @SuppressWarnings("unchecked")
                Map<String, Object> byMember = (Map<String, Object>) counts.get(access).get("byMember");
                byMember.merge(served.member(), 1L, (a, b) -> (Long) a + (Long) b);
                if (writeId != null) acknowledged.add(writeId);
            } else {
                failures.add(failureJson(access, writeId, failure));
            }
            if (completed == 1 || completed % 10 == 0) {
                System.err.println("{\"progress\":{\"completed\":" + completed + ",\"failed\":" + failures.size() + "}}");
                System.err.flush();
            }
        }
    }

    private static void increment(Map<String, Object> perAccess, String key) {
        perAccess.put(key, (Long) perAccess.get(key) + 1);
    }

    private static Map<String, Object> failureJson(String access, String writeId, Throwable error) {
        Map<String, Object> details = ScenarioClient.errorJson(error);
        String message = String.valueOf(details.get("message"));
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("access", access);
        out.put("id", writeId);
        out.put("className", details.get("className"));
        out.put("code", details.get("code"));
        out.put("message", message.lines().findFirst().orElse(""));
        out.put("retryable", details.get("retryable"));
        return out;
    }

    /** Runs `concurrency` workers, each taking the next transaction's access mode until there is none. */
    Map<String, Object> runWorkers(int concurrency, Supplier<Optional<String>> next) {
        ScenarioClient.runThreads(concurrency, worker -> () -> {
            for (Optional<String> access = next.get(); access.isPresent(); access = next.get()) {
                runOne(access.get());
            }
        });
        synchronized (this) {
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("reads", counts.get("read"));
            out.put("writes", counts.get("write"));
            out.put("acknowledgedWriteIds", acknowledged);
            out.put("failures", failures);
            out.put("attempts", attempts);
            out.put("retried", retried);
            return out;
        }
    }

    /** Reads and writes interleaved evenly, so a change during the run meets both. */
    static List<String> spreadOrder(int reads, int writes) {
        int total = reads + writes;
        List<String> order = new ArrayList<>(total);
        for (long i = 0; i < total; i++) {
            order.add((i + 1) * writes / total > i * writes / total ? "write" : "read");
        }
        return order;
    }

    Map<String, Object> spread(int concurrency, int reads, int writes) {
        Iterator<String> pending = spreadOrder(reads, writes).iterator();
        return runWorkers(concurrency, () -> {
            synchronized (pending) {
                return pending.hasNext() ? Optional.of(pending.next()) : Optional.empty();
            }
        });
    }

    /** Runs `access` transactions until stdin ends (the caller closed it) or after durationMs, whichever is first. */
    Map<String, Object> loop(int concurrency, String access, Long durationMs) {
        CountDownLatch stop = new CountDownLatch(1);
        Thread stdinWatch = new Thread(() -> {
            InputStream in = System.in;
            byte[] buffer = new byte[4096];
            try {
                while (in.read(buffer) >= 0) {
                    // Only its end matters.
                }
            } catch (IOException closed) {
                // A broken stdin ends the run the same way.
            }
            stop.countDown();
        });
        stdinWatch.setDaemon(true);
        stdinWatch.start();
        long deadline = durationMs == null ? Long.MAX_VALUE : System.nanoTime() + durationMs * 1_000_000L;
        return runWorkers(concurrency, () -> stop.getCount() == 0 || System.nanoTime() >= deadline
                ? Optional.empty()
                : Optional.of(access));
    }
}
