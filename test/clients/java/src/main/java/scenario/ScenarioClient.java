package scenario;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.function.IntFunction;
import org.neo4j.driver.AuthTokens;
import org.neo4j.driver.Config;
import org.neo4j.driver.Driver;
import org.neo4j.driver.GraphDatabase;
import org.neo4j.driver.Logging;
import org.neo4j.driver.Record;
import org.neo4j.driver.Result;
import org.neo4j.driver.Session;
import org.neo4j.driver.SessionConfig;
import org.neo4j.driver.Transaction;
import org.neo4j.driver.exceptions.Neo4jException;
import org.neo4j.driver.exceptions.RetryableException;
import org.neo4j.driver.summary.ResultSummary;
import org.neo4j.driver.summary.ServerInfo;

/**
 * One client scenario against a Neo4j server (or the sidecar's Bolt proxy) with the official Java driver.
 *
 * <pre>java -jar scenario-client.jar --uri bolt://127.0.0.1:7687 --user neo4j --password secret --scenario autocommit</pre>
 *
 * Prints exactly one JSON line on stdout: the contract of test/clients/python/scenario.py and of the
 * ScenarioResult type in scripts/clients/run-scenario.ts. A Neo4j error is a result (ok=false, exit 0),
 * not a crash: only bad arguments exit non-zero.
 */
public final class ScenarioClient {
    static final List<String> SCENARIOS = List.of(
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
            "cluster-write-loop");

    /** Both clients build the same payloads so that their checksums, and the proxy's, must agree. */
    static final String PAYLOAD_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

    private final Options options;
    private Map<String, Object> server;

    private ScenarioClient(Options options) {
        this.options = options;
    }

    public static void main(String[] argv) {
        Options options;
        try {
            options = Options.parse(argv);
        } catch (IllegalArgumentException badArguments) {
            System.err.println(badArguments.getMessage());
            System.err.println(Options.USAGE);
            System.exit(2);
            return;
        }
        System.out.println(Json.write(new ScenarioClient(options).run()));
        System.out.flush();
        // The driver's event-loop threads must not keep a finished run alive.
        System.exit(0);
    }

    private Map<String, Object> run() {
        // wrong-password takes the real credentials like every scenario and spoils them itself, so
        // callers (and the proxy tests) can run all scenarios with one set of arguments.
        String password =
                options.scenario.equals("wrong-password") ? options.password + "-wrong-on-purpose" : options.password;
        String driverVersion = driverVersion();
        Map<String, Object> output = new LinkedHashMap<>();
        output.put("client", "java");
        output.put("scenario", options.scenario);
        output.put("ok", false);
        output.put("driverVersion", driverVersion);
        output.put("uri", options.uri);
        output.put("server", null);
        output.put("durationMs", 0);
        output.put("result", null);
        output.put("error", null);

        Config config = Config.builder()
                .withLogging(Logging.none())
                .withConnectionTimeout(options.connectionTimeoutMs, TimeUnit.MILLISECONDS)
                .withMaxConnectionPoolSize(Math.max(100, options.concurrency))
                .withMaxTransactionRetryTime(options.maxRetryMs, TimeUnit.MILLISECONDS)
                .withUserAgent("neo4j-pool-sidecar-scenario/java neo4j-java/" + driverVersion)
                .build();
        long started = System.nanoTime();
        try (Driver driver = GraphDatabase.driver(options.uri, AuthTokens.basic(options.user, password), config)) {
            try {
                output.put("result", runScenario(driver));
                output.put("ok", true);
            } catch (ScenarioFailure failure) {
                output.put("result", failure.result);
                output.put("error", errorJson(failure.cause));
            } catch (RuntimeException error) {
                output.put("error", errorJson(error));
            }
            output.put("durationMs", (System.nanoTime() - started) / 1_000_000L);
            if (server == null && !options.scenario.equals("wrong-password")) {
                server = serverInfoAfterFailure(driver);
            }
        } catch (RuntimeException closeOrCreateError) {
            if (output.get("error") == null) output.put("error", errorJson(closeOrCreateError));
        }
        output.put("server", server);
        return output;
    }

    private Map<String, Object> runScenario(Driver driver) {
        return switch (options.scenario) {
            case "autocommit" -> autocommit(driver);
            case "explicit-tx" -> explicitTransaction(driver);
            case "managed-read" -> managedRead(driver);
            case "managed-write" -> managedWrite(driver);
            case "failing-query" -> failingQuery(driver);
            case "wrong-password" -> wrongPassword(driver);
            case "large-result" -> largeResult(driver);
            case "concurrent" -> concurrent(driver);
            case "cluster-spread" -> clusterLoad(driver).spread(options.concurrency, options.reads, options.writes);
            case "cluster-read-loop" -> clusterLoad(driver).loop(options.concurrency, "read", options.durationMs);
            case "cluster-write-loop" -> clusterLoad(driver).loop(options.concurrency, "write", options.durationMs);
            default -> throw new IllegalArgumentException("unknown scenario " + options.scenario);
        };
    }

    private Session session(Driver driver) {
        SessionConfig.Builder config = SessionConfig.builder();
        if (options.database != null) config.withDatabase(options.database);
        return driver.session(config.build());
    }

    private ClusterLoad clusterLoad(Driver driver) {
        return new ClusterLoad(() -> session(driver), this::noteServer, options.idPrefix);
    }

    private synchronized void noteServer(ResultSummary summary) {
        if (server == null && summary != null && summary.server() != null) server = serverInfoJson(summary.server());
    }

    private Map<String, Object> autocommit(Driver driver) {
        try (Session session = session(driver)) {
            Result result = session.run("RETURN 1 AS value");
            List<Record> records = result.list();
            noteServer(result.consume());
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("records", records.size());
            out.put("value", records.get(0).get("value").asLong());
            return out;
        }
    }

    private Map<String, Object> explicitTransaction(Driver driver) {
        String probeId = UUID.randomUUID().toString();
        try (Session session = session(driver)) {
            String createdId;
            long deleted;
            try (Transaction tx = session.beginTransaction()) {
                createdId = tx.run("CREATE (p:ScenarioProbe {id: $id}) RETURN p.id AS id", Map.of("id", probeId))
                        .single()
                        .get("id")
                        .asString();
                Result deletedResult = tx.run(
                        "MATCH (p:ScenarioProbe {id: $id}) DELETE p RETURN count(*) AS deleted", Map.of("id", probeId));
                deleted = deletedResult.single().get("deleted").asLong();
                noteServer(deletedResult.consume());
                tx.commit();
            }
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("queries", 2);
            out.put("createdIdMatches", probeId.equals(createdId));
            out.put("deleted", deleted);
            out.put("committed", true);
            out.put("hasBookmark", !session.lastBookmarks().isEmpty());
            return out;
        }
    }

    private Map<String, Object> managedRead(Driver driver) {
        try (Session session = session(driver)) {
            Object[] valueAndSummary = session.executeRead(tx -> {
                Result result = tx.run("RETURN 1 AS value");
                long value = result.single().get("value").asLong();
                return new Object[] {value, result.consume()};
            });
            ResultSummary summary = (ResultSummary) valueAndSummary[1];
            noteServer(summary);
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("value", valueAndSummary[0]);
            out.put("database", summary.database().name());
            return out;
        }
    }

    private Map<String, Object> managedWrite(Driver driver) {
        String probeId = UUID.randomUUID().toString();
        try (Session session = session(driver)) {
            ResultSummary summary = session.executeWrite(tx -> {
                Result result = tx.run(
                        "CREATE (p:ScenarioProbe {id: $id}) WITH p DELETE p RETURN count(*) AS touched",
                        Map.of("id", probeId));
                result.single();
                return result.consume();
            });
            noteServer(summary);
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("nodesCreated", summary.counters().nodesCreated());
            out.put("nodesDeleted", summary.counters().nodesDeleted());
            out.put("database", summary.database().name());
            return out;
        }
    }

    private Map<String, Object> failingQuery(Driver driver) {
        try (Session session = session(driver)) {
            // Throws: a syntax error is a Neo4j error the scenario reports as its result.
            session.run("THIS IS NOT CYPHER").consume();
            return new LinkedHashMap<>();
        }
    }

    private Map<String, Object> wrongPassword(Driver driver) {
        driver.verifyConnectivity();
        return new LinkedHashMap<>();
    }

    static String payloadBlock(int rowBytes) {
        return PAYLOAD_ALPHABET.repeat(rowBytes / PAYLOAD_ALPHABET.length() + 1).substring(0, rowBytes);
    }

    private Map<String, Object> largeResult(Driver driver) {
        MessageDigest digest = sha256();
        long rowCount = 0;
        long payloadBytes = 0;
        long lastIndex = 0;
        boolean inOrder = true;
        try (Session session = session(driver)) {
            Result result = session.run(
                    "UNWIND range(1, $rows) AS i RETURN i, left(toString(i) + '-' + $block, $rowBytes) AS payload",
                    Map.of("rows", options.rows, "block", payloadBlock(options.rowBytes), "rowBytes", options.rowBytes));
            while (result.hasNext()) {
                Record record = result.next();
                byte[] encoded = record.get("payload").asString().getBytes(StandardCharsets.UTF_8);
                digest.update(encoded);
                digest.update((byte) '\n');
                payloadBytes += encoded.length;
                rowCount++;
                long index = record.get("i").asLong();
                inOrder = inOrder && index == lastIndex + 1;
                lastIndex = index;
            }
            noteServer(result.consume());
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("rows", rowCount);
        out.put("payloadBytes", payloadBytes);
        out.put("sha256", HexFormat.of().formatHex(digest.digest()));
        out.put("inOrder", inOrder);
        return out;
    }

    private Map<String, Object> concurrent(Driver driver) {
        int sessions = options.concurrency;
        // Every worker holds an open transaction until all have one, so the server (or proxy) really
        // sees `sessions` connections at once rather than a few reused in turn.
        CyclicBarrier barrier = new CyclicBarrier(sessions);
        List<Long> values = new ArrayList<>();
        List<Throwable> errors = new ArrayList<>();
        runThreads(sessions, index -> () -> concurrentWorker(driver, barrier, index, values, errors));
        Map<String, Object> out = new LinkedHashMap<>();
        synchronized (values) {
            out.put("sessions", sessions);
            out.put("succeeded", values.size());
            out.put("failed", errors.size());
            out.put("distinctValues", new HashSet<>(values).size());
            out.put("heldOpenTogether", errors.isEmpty());
            if (!errors.isEmpty()) {
                // The first real failure explains the run; barrier breaks are only its echo.
                Throwable first = errors.stream()
                        .filter(e -> !(e instanceof BrokenBarrierException))
                        .findFirst()
                        .orElse(errors.get(0));
                throw new ScenarioFailure(first, out);
            }
        }
        return out;
    }

    private void concurrentWorker(
            Driver driver, CyclicBarrier barrier, long index, List<Long> values, List<Throwable> errors) {
        boolean arrived = false;
        try (Session session = session(driver);
                Transaction tx = session.beginTransaction()) {
            Result result = tx.run("RETURN $index AS index", Map.of("index", index));
            long value = result.single().get("index").asLong();
            ResultSummary summary = result.consume();
            arrived = true;
            barrier.await(options.barrierTimeoutMs, TimeUnit.MILLISECONDS);
            tx.commit();
            synchronized (values) {
                values.add(value);
            }
            noteServer(summary);
        } catch (Throwable error) {
            synchronized (values) {
                errors.add(error);
            }
        } finally {
            // A failed worker still arrives, so one failure is reported as such instead of as a barrier timeout.
            if (!arrived) {
                try {
                    barrier.await(options.barrierTimeoutMs, TimeUnit.MILLISECONDS);
                } catch (Exception ignored) {
                    // Its own failure is already recorded.
                }
            }
        }
    }

    /** Starts `count` daemon threads (the driver's must not keep a finished run alive) and waits for all. */
    static void runThreads(int count, IntFunction<Runnable> work) {
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            Thread thread = new Thread(work.apply(i));
            thread.setDaemon(true);
            threads.add(thread);
            thread.start();
        }
        for (Thread thread : threads) {
            try {
                thread.join();
            } catch (InterruptedException interrupted) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for the scenario's threads", interrupted);
            }
        }
    }

    private static Map<String, Object> serverInfoJson(ServerInfo info) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("address", info.address());
        out.put("agent", info.agent());
        out.put("protocolVersion", info.protocolVersion());
        return out;
    }

    private static Map<String, Object> serverInfoAfterFailure(Driver driver) {
        // Auto-commit, not executableQuery: its retries would spin for 30 s when the server is unreachable.
        try (Session session = driver.session()) {
            return serverInfoJson(session.run("RETURN 1").consume().server());
        } catch (RuntimeException ignored) {
            // The scenario's own error is what matters.
            return null;
        }
    }

    static Map<String, Object> errorJson(Throwable error) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("className", error.getClass().getSimpleName());
        if (error instanceof Neo4jException neo4jError) {
            out.put("gqlStatus", neo4jError.gqlStatus());
            out.put("gqlStatusDescription", neo4jError.statusDescription());
            out.put("causeGqlStatus", neo4jError.gqlCause().map(Neo4jException::gqlStatus).orElse(null));
            // The driver's own errors (ServiceUnavailable...) say N/A; null, as in Python, means "not from the server".
            String code = "N/A".equals(neo4jError.code()) ? null : neo4jError.code();
            out.put("code", code);
            out.put("classification", classificationOf(code));
            out.put("message", neo4jError.getMessage());
        } else {
            out.put("gqlStatus", null);
            out.put("gqlStatusDescription", null);
            out.put("causeGqlStatus", null);
            out.put("code", null);
            out.put("classification", null);
            out.put("message", String.valueOf(error.getMessage()));
        }
        out.put("retryable", error instanceof RetryableException);
        if (!(error instanceof Neo4jException)) {
            // Not a server answer: the trace is what tells a harness bug from a driver one.
            StringWriter trace = new StringWriter();
            error.printStackTrace(new PrintWriter(trace));
            out.put("stack", trace.toString().lines().limit(12).reduce((a, b) -> a + "\n" + b).orElse(""));
        }
        return out;
    }

    /** Neo.ClientError.Statement.SyntaxError -> ClientError, as the Python driver reports it. */
    private static String classificationOf(String code) {
        if (code == null) return null;
        String[] parts = code.split("\\.");
        return parts.length >= 2 && parts[0].equals("Neo") ? parts[1] : null;
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException impossible) {
            throw new IllegalStateException(impossible);
        }
    }

    private static String driverVersion() {
        Properties properties = new Properties();
        try (InputStream in = ScenarioClient.class.getResourceAsStream("/scenario-client.properties")) {
            if (in != null) properties.load(in);
        } catch (IOException ignored) {
            // Reported as unknown below.
        }
        return properties.getProperty("driverVersion", "unknown");
    }

    /** A failure that still carries the partial result (e.g. how many concurrent sessions worked). */
    static final class ScenarioFailure extends RuntimeException {
        final transient Throwable cause;
        final transient Map<String, Object> result;

        ScenarioFailure(Throwable cause, Map<String, Object> result) {
            super(cause.getMessage(), cause);
            this.cause = cause;
            this.result = result;
        }
    }

    static final class Options {
        static final String USAGE = "usage: --uri URI --user USER --password PASSWORD --scenario "
                + String.join("|", SCENARIOS)
                + " [--database DB] [--rows N] [--row-bytes N] [--concurrency N] [--barrier-timeout S]"
                + " [--connection-timeout S] [--reads N] [--writes N] [--duration-ms MS] [--max-retry-ms MS]"
                + " [--id-prefix P]";

        String uri;
        String user;
        String password;
        String scenario;
        String database;
        int rows = 5000;
        int rowBytes = 1000;
        /** concurrent: sessions held open at once (default 50); cluster-*: workers (default 1). */
        int concurrency = -1;

        long barrierTimeoutMs = 60_000;
        long connectionTimeoutMs = 10_000;
        int reads = 300;
        int writes = 30;
        /** cluster-*-loop: stop after this long; null runs until stdin ends. */
        Long durationMs;
        /** Managed transactions' retry budget: the drivers' default. */
        long maxRetryMs = 30_000;
        /** cluster-*: write ids are PREFIX-0, PREFIX-1, ... */
        String idPrefix = UUID.randomUUID().toString().replace("-", "").substring(0, 12);

        static Options parse(String[] argv) {
            Options options = new Options();
            for (int i = 0; i < argv.length; i++) {
                String flag = argv[i];
                if (i + 1 >= argv.length) throw new IllegalArgumentException("missing value for " + flag);
                String value = argv[++i];
                switch (flag) {
                    case "--uri" -> options.uri = value;
                    case "--user" -> options.user = value;
                    case "--password" -> options.password = value;
                    case "--scenario" -> options.scenario = value;
                    case "--database" -> options.database = value;
                    case "--rows" -> options.rows = Integer.parseInt(value);
                    case "--row-bytes" -> options.rowBytes = Integer.parseInt(value);
                    case "--concurrency" -> options.concurrency = Integer.parseInt(value);
                    case "--barrier-timeout" -> options.barrierTimeoutMs = secondsToMillis(value);
                    case "--connection-timeout" -> options.connectionTimeoutMs = secondsToMillis(value);
                    case "--reads" -> options.reads = Integer.parseInt(value);
                    case "--writes" -> options.writes = Integer.parseInt(value);
                    case "--duration-ms" -> options.durationMs = Long.parseLong(value);
                    case "--max-retry-ms" -> options.maxRetryMs = Long.parseLong(value);
                    case "--id-prefix" -> options.idPrefix = value;
                    default -> throw new IllegalArgumentException("unknown option " + flag);
                }
            }
            if (options.uri == null || options.user == null || options.password == null || options.scenario == null) {
                throw new IllegalArgumentException("--uri, --user, --password and --scenario are required");
            }
            if (!SCENARIOS.contains(options.scenario)) {
                throw new IllegalArgumentException("unknown scenario " + options.scenario);
            }
            if (options.concurrency < 0) options.concurrency = options.scenario.startsWith("cluster-") ? 1 : 50;
            return options;
        }

        private static long secondsToMillis(String seconds) {
            return Math.round(Double.parseDouble(seconds) * 1000);
        }
    }
}
