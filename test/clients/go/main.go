// One client scenario against a Neo4j server (or the sidecar's Bolt proxy) with the official Go driver.
//
//	scenario-client --uri bolt://127.0.0.1:7687 --user neo4j --password secret --scenario autocommit
//
// Prints exactly one JSON line on stdout: the contract of test/clients/python/scenario.py, of the Java
// client and of the ScenarioResult type in scripts/clients/run-scenario.ts. A Neo4j error is a result
// (ok=false, exit 0), not a crash: only bad arguments exit non-zero.
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j/config"
)

var scenarios = []string{
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
}

// Every client builds the same payloads so that their checksums, and the proxy's, must agree.
const payloadAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

type options struct {
	uri               string
	user              string
	password          string
	scenario          string
	database          string
	rows              int
	rowBytes          int
	concurrency       int
	barrierTimeout    time.Duration
	connectionTimeout time.Duration
	reads             int
	writes            int
	duration          time.Duration // 0: until stdin ends
	maxRetry          time.Duration
	idPrefix          string
}

type serverInfo struct {
	Address         string `json:"address"`
	Agent           string `json:"agent"`
	ProtocolVersion string `json:"protocolVersion"`
}

type errorReport struct {
	ClassName            string  `json:"className"`
	Code                 *string `json:"code"`
	GqlStatus            *string `json:"gqlStatus"`
	GqlStatusDescription *string `json:"gqlStatusDescription"`
	CauseGqlStatus       *string `json:"causeGqlStatus"`
	Classification       *string `json:"classification"`
	Message              string  `json:"message"`
	Retryable            bool    `json:"retryable"`
	Stack                string  `json:"stack,omitempty"`
}

type report struct {
	Client        string         `json:"client"`
	Scenario      string         `json:"scenario"`
	Ok            bool           `json:"ok"`
	DriverVersion string         `json:"driverVersion"`
	URI           string         `json:"uri"`
	Server        *serverInfo    `json:"server"`
	DurationMs    int64          `json:"durationMs"`
	Result        map[string]any `json:"result"`
	Error         *errorReport   `json:"error"`
}

// scenarioFailure is a failure that still carries the partial result (how many concurrent sessions worked).
type scenarioFailure struct {
	cause  error
	result map[string]any
}

func (f *scenarioFailure) Error() string { return f.cause.Error() }

type runner struct {
	opts   options
	driver neo4j.DriverWithContext
	mu     sync.Mutex
	server *serverInfo
}

func (r *runner) noteServer(summary neo4j.ResultSummary) {
	if summary == nil || summary.Server() == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.server == nil {
		r.server = serverInfoOf(summary.Server())
	}
}

func serverInfoOf(info neo4j.ServerInfo) *serverInfo {
	version := info.ProtocolVersion()
	return &serverInfo{
		Address:         info.Address(),
		Agent:           info.Agent(),
		ProtocolVersion: fmt.Sprintf("%d.%d", version.Major, version.Minor),
	}
}

func (r *runner) session(ctx context.Context) neo4j.SessionWithContext {
	return r.driver.NewSession(ctx, neo4j.SessionConfig{DatabaseName: r.opts.database})
}

func (r *runner) autocommit(ctx context.Context) (map[string]any, error) {
	session := r.session(ctx)
	defer session.Close(ctx)
	result, err := session.Run(ctx, "RETURN 1 AS value", nil)
	if err != nil {
		return nil, err
	}
	records, summary, err := collectAll(ctx, result)
	if err != nil {
		return nil, err
	}
	r.noteServer(summary)
	value, _ := records[0].Get("value")
	return map[string]any{"records": len(records), "value": value}, nil
}

func (r *runner) explicitTransaction(ctx context.Context) (map[string]any, error) {
	probeID := newProbeID()
	session := r.session(ctx)
	defer session.Close(ctx)
	tx, err := session.BeginTransaction(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Close(ctx)
	created, err := tx.Run(ctx, "CREATE (p:ScenarioProbe {id: $id}) RETURN p.id AS id", map[string]any{"id": probeID})
	if err != nil {
		return nil, err
	}
	createdRecord, err := created.Single(ctx)
	if err != nil {
		return nil, err
	}
	deletedResult, err := tx.Run(ctx, "MATCH (p:ScenarioProbe {id: $id}) DELETE p RETURN count(*) AS deleted",
		map[string]any{"id": probeID})
	if err != nil {
		return nil, err
	}
	deletedRecord, err := deletedResult.Single(ctx)
	if err != nil {
		return nil, err
	}
	summary, err := deletedResult.Consume(ctx)
	if err != nil {
		return nil, err
	}
	r.noteServer(summary)
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	createdID, _ := createdRecord.Get("id")
	deleted, _ := deletedRecord.Get("deleted")
	return map[string]any{
		"queries":          2,
		"createdIdMatches": createdID == probeID,
		"deleted":          deleted,
		"committed":        true,
		"hasBookmark":      len(session.LastBookmarks()) > 0,
	}, nil
}

// collectAll reads every record of a result, then its summary.
func collectAll(ctx context.Context, result neo4j.ResultWithContext) ([]*neo4j.Record, neo4j.ResultSummary, error) {
	records, err := result.Collect(ctx)
	if err != nil {
		return nil, nil, err
	}
	summary, err := result.Consume(ctx)
	if err != nil {
		return nil, nil, err
	}
	return records, summary, nil
}

type valueAndSummary struct {
	value   any
	summary neo4j.ResultSummary
}

func (r *runner) managedRead(ctx context.Context) (map[string]any, error) {
	session := r.session(ctx)
	defer session.Close(ctx)
	out, err := session.ExecuteRead(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		result, err := tx.Run(ctx, "RETURN 1 AS value", nil)
		if err != nil {
			return nil, err
		}
		record, err := result.Single(ctx)
		if err != nil {
			return nil, err
		}
		summary, err := result.Consume(ctx)
		if err != nil {
			return nil, err
		}
		value, _ := record.Get("value")
		return valueAndSummary{value, summary}, nil
	})
	if err != nil {
		return nil, err
	}
	read := out.(valueAndSummary)
	r.noteServer(read.summary)
	return map[string]any{"value": read.value, "database": read.summary.Database().Name()}, nil
}

func (r *runner) managedWrite(ctx context.Context) (map[string]any, error) {
	probeID := newProbeID()
	session := r.session(ctx)
	defer session.Close(ctx)
	out, err := session.ExecuteWrite(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		result, err := tx.Run(ctx, "CREATE (p:ScenarioProbe {id: $id}) WITH p DELETE p RETURN count(*) AS touched",
			map[string]any{"id": probeID})
		if err != nil {
			return nil, err
		}
		if _, err := result.Single(ctx); err != nil {
			return nil, err
		}
		return result.Consume(ctx)
	})
	if err != nil {
		return nil, err
	}
	summary := out.(neo4j.ResultSummary)
	r.noteServer(summary)
	return map[string]any{
		"nodesCreated": summary.Counters().NodesCreated(),
		"nodesDeleted": summary.Counters().NodesDeleted(),
		"database":     summary.Database().Name(),
	}, nil
}

func (r *runner) failingQuery(ctx context.Context) (map[string]any, error) {
	session := r.session(ctx)
	defer session.Close(ctx)
	// Fails: a syntax error is a Neo4j error the scenario reports as its result.
	result, err := session.Run(ctx, "THIS IS NOT CYPHER", nil)
	if err != nil {
		return nil, err
	}
	if _, err := result.Consume(ctx); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

func (r *runner) wrongPassword(ctx context.Context) (map[string]any, error) {
	if err := r.driver.VerifyConnectivity(ctx); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

func payloadBlock(rowBytes int) string {
	return strings.Repeat(payloadAlphabet, rowBytes/len(payloadAlphabet)+1)[:rowBytes]
}

func (r *runner) largeResult(ctx context.Context) (map[string]any, error) {
	digest := sha256.New()
	var rowCount, payloadBytes, lastIndex int64
	inOrder := true
	session := r.session(ctx)
	defer session.Close(ctx)
	result, err := session.Run(ctx,
		"UNWIND range(1, $rows) AS i RETURN i, left(toString(i) + '-' + $block, $rowBytes) AS payload",
		map[string]any{"rows": r.opts.rows, "block": payloadBlock(r.opts.rowBytes), "rowBytes": r.opts.rowBytes})
	if err != nil {
		return nil, err
	}
	for result.Next(ctx) {
		record := result.Record()
		payload, _ := record.Get("payload")
		index, _ := record.Get("i")
		encoded := []byte(payload.(string))
		digest.Write(encoded)
		digest.Write([]byte{'\n'})
		payloadBytes += int64(len(encoded))
		rowCount++
		inOrder = inOrder && index.(int64) == lastIndex+1
		lastIndex = index.(int64)
	}
	if err := result.Err(); err != nil {
		return nil, err
	}
	summary, err := result.Consume(ctx)
	if err != nil {
		return nil, err
	}
	r.noteServer(summary)
	return map[string]any{
		"rows":         rowCount,
		"payloadBytes": payloadBytes,
		"sha256":       hex.EncodeToString(digest.Sum(nil)),
		"inOrder":      inOrder,
	}, nil
}

// barrier releases every waiter once `parties` have arrived, or fails them all after the timeout.
type barrier struct {
	mu      sync.Mutex
	parties int
	arrived int
	all     chan struct{}
}

var errBrokenBarrier = errors.New("barrier broken: not every session arrived in time")

func (b *barrier) wait(timeout time.Duration) error {
	b.mu.Lock()
	b.arrived++
	if b.arrived == b.parties {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
		return nil
	case <-time.After(timeout):
		return errBrokenBarrier
	}
}

func (r *runner) concurrent(ctx context.Context) (map[string]any, error) {
	sessions := r.opts.concurrency
	// Every worker holds an open transaction until all have one, so the server (or proxy) really
	// sees `sessions` connections at once rather than a few reused in turn.
	gate := &barrier{parties: sessions, all: make(chan struct{})}
	var mu sync.Mutex
	var values []int64
	var failures []error
	var wg sync.WaitGroup
	for index := 0; index < sessions; index++ {
		wg.Add(1)
		go func(index int64) {
			defer wg.Done()
			value, err := r.concurrentWorker(ctx, gate, index)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures = append(failures, err)
			} else {
				values = append(values, value)
			}
		}(int64(index))
	}
	wg.Wait()
	distinct := map[int64]bool{}
	for _, value := range values {
		distinct[value] = true
	}
	out := map[string]any{
		"sessions":         sessions,
		"succeeded":        len(values),
		"failed":           len(failures),
		"distinctValues":   len(distinct),
		"heldOpenTogether": len(failures) == 0,
	}
	if len(failures) > 0 {
		// The first real failure explains the run; barrier breaks are only its echo.
		first := failures[0]
		for _, failure := range failures {
			if !errors.Is(failure, errBrokenBarrier) {
				first = failure
				break
			}
		}
		return nil, &scenarioFailure{cause: first, result: out}
	}
	return out, nil
}

func (r *runner) concurrentWorker(ctx context.Context, gate *barrier, index int64) (value int64, err error) {
	arrived := false
	defer func() {
		// A failed worker still arrives, so one failure is reported as such instead of as a barrier timeout.
		if !arrived {
			_ = gate.wait(r.opts.barrierTimeout)
		}
	}()
	session := r.session(ctx)
	defer session.Close(ctx)
	tx, err := session.BeginTransaction(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Close(ctx)
	result, err := tx.Run(ctx, "RETURN $index AS index", map[string]any{"index": index})
	if err != nil {
		return 0, err
	}
	record, err := result.Single(ctx)
	if err != nil {
		return 0, err
	}
	summary, err := result.Consume(ctx)
	if err != nil {
		return 0, err
	}
	arrived = true
	if err := gate.wait(r.opts.barrierTimeout); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	r.noteServer(summary)
	got, _ := record.Get("index")
	return got.(int64), nil
}

func newProbeID() string {
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(raw[:])
}

func stringPointer(value string) *string {
	if value == "" {
		return nil
	}
	return &value
}

// className names the driver's error type without package or pointer: Neo4jError, ConnectivityError...
func className(err error) string {
	name := reflect.TypeOf(err).String()
	name = strings.TrimPrefix(name, "*")
	if dot := strings.LastIndex(name, "."); dot >= 0 {
		name = name[dot+1:]
	}
	return name
}

func errorJSON(err error) *errorReport {
	var neo4jError *neo4j.Neo4jError
	if errors.As(err, &neo4jError) {
		var cause *string
		if neo4jError.GqlCause != nil {
			cause = stringPointer(neo4jError.GqlCause.GqlStatus)
		}
		return &errorReport{
			ClassName:            className(neo4jError),
			Code:                 stringPointer(neo4jError.Code),
			GqlStatus:            stringPointer(neo4jError.GqlStatus),
			GqlStatusDescription: stringPointer(neo4jError.GqlStatusDescription),
			CauseGqlStatus:       cause,
			Classification:       stringPointer(neo4jError.Classification()),
			Message:              neo4jError.Msg,
			Retryable:            neo4j.IsRetryable(err),
		}
	}
	// Not a server answer: the wrapping chain is what tells a harness bug from a driver one.
	return &errorReport{
		ClassName: className(err),
		Message:   err.Error(),
		Retryable: neo4j.IsRetryable(err),
		Stack:     fmt.Sprintf("%+v", err),
	}
}

func driverVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/neo4j/neo4j-go-driver/v5" {
				return strings.TrimPrefix(dep.Version, "v")
			}
		}
	}
	return strings.TrimPrefix(neo4j.UserAgent, "Go Driver/")
}

func parseOptions(args []string) (options, error) {
	var opts options
	var barrierSeconds, connectionSeconds float64
	var durationMs, maxRetryMs int64
	flags := flag.NewFlagSet("scenario-client", flag.ContinueOnError)
	flags.StringVar(&opts.uri, "uri", "", "bolt:// or neo4j:// URI")
	flags.StringVar(&opts.user, "user", "", "user name")
	flags.StringVar(&opts.password, "password", "", "password")
	flags.StringVar(&opts.scenario, "scenario", "", strings.Join(scenarios, "|"))
	flags.StringVar(&opts.database, "database", "", "session database; the server default when omitted")
	flags.IntVar(&opts.rows, "rows", 5000, "large-result: rows to stream")
	flags.IntVar(&opts.rowBytes, "row-bytes", 1000, "large-result: payload bytes per row")
	flags.IntVar(&opts.concurrency, "concurrency", 0,
		"concurrent: sessions held open at once (default 50); cluster-*: workers (default 1)")
	flags.Float64Var(&barrierSeconds, "barrier-timeout", 60, "concurrent: seconds to wait for all")
	flags.Float64Var(&connectionSeconds, "connection-timeout", 10, "driver connection timeout, s")
	flags.IntVar(&opts.reads, "reads", 300, "cluster-spread: read transactions")
	flags.IntVar(&opts.writes, "writes", 30, "cluster-spread: write transactions")
	flags.Int64Var(&durationMs, "duration-ms", 0, "cluster-*-loop: stop after this long (else at end of stdin)")
	flags.Int64Var(&maxRetryMs, "max-retry-ms", 30000, "managed transactions' retry budget (the drivers' default)")
	flags.StringVar(&opts.idPrefix, "id-prefix", "", "cluster-*: write ids are PREFIX-0, PREFIX-1, ...")
	if err := flags.Parse(args); err != nil {
		return opts, err
	}
	if opts.concurrency == 0 {
		opts.concurrency = 50
		if strings.HasPrefix(opts.scenario, "cluster-") {
			opts.concurrency = 1
		}
	}
	if opts.idPrefix == "" {
		opts.idPrefix = newProbeID()[:12]
	}
	opts.duration = time.Duration(durationMs) * time.Millisecond
	opts.maxRetry = time.Duration(maxRetryMs) * time.Millisecond
	if opts.uri == "" || opts.user == "" || opts.password == "" || opts.scenario == "" {
		return opts, errors.New("--uri, --user, --password and --scenario are required")
	}
	known := false
	for _, name := range scenarios {
		known = known || name == opts.scenario
	}
	if !known {
		return opts, fmt.Errorf("unknown scenario %s", opts.scenario)
	}
	opts.barrierTimeout = time.Duration(barrierSeconds * float64(time.Second))
	opts.connectionTimeout = time.Duration(connectionSeconds * float64(time.Second))
	return opts, nil
}

func (r *runner) run(ctx context.Context) (map[string]any, error) {
	switch r.opts.scenario {
	case "autocommit":
		return r.autocommit(ctx)
	case "explicit-tx":
		return r.explicitTransaction(ctx)
	case "managed-read":
		return r.managedRead(ctx)
	case "managed-write":
		return r.managedWrite(ctx)
	case "failing-query":
		return r.failingQuery(ctx)
	case "wrong-password":
		return r.wrongPassword(ctx)
	case "large-result":
		return r.largeResult(ctx)
	case "cluster-spread":
		return r.clusterSpread(ctx)
	case "cluster-read-loop":
		return r.clusterLoop(ctx, accessRead)
	case "cluster-write-loop":
		return r.clusterLoop(ctx, accessWrite)
	default:
		return r.concurrent(ctx)
	}
}

func main() {
	opts, err := parseOptions(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// wrong-password takes the real credentials like every scenario and spoils them itself, so
	// callers (and the proxy tests) can run all scenarios with one set of arguments.
	password := opts.password
	if opts.scenario == "wrong-password" {
		password += "-wrong-on-purpose"
	}
	version := driverVersion()
	out := report{Client: "go", Scenario: opts.scenario, DriverVersion: version, URI: opts.uri}
	ctx := context.Background()
	started := time.Now()
	driver, err := neo4j.NewDriverWithContext(opts.uri, neo4j.BasicAuth(opts.user, password, ""),
		func(c *config.Config) {
			c.SocketConnectTimeout = opts.connectionTimeout
			c.MaxConnectionPoolSize = max(100, opts.concurrency)
			c.MaxTransactionRetryTime = opts.maxRetry
			c.UserAgent = "neo4j-pool-sidecar-scenario/go neo4j-go/" + version
		})
	if err != nil {
		out.Error = errorJSON(err)
	} else {
		r := &runner{opts: opts, driver: driver}
		result, err := r.run(ctx)
		var failure *scenarioFailure
		switch {
		case errors.As(err, &failure):
			out.Result = failure.result
			out.Error = errorJSON(failure.cause)
		case err != nil:
			out.Error = errorJSON(err)
		default:
			out.Result = result
			out.Ok = true
		}
		out.DurationMs = time.Since(started).Milliseconds()
		if r.server == nil && opts.scenario != "wrong-password" {
			// The scenario's own error is what matters; a failure here only leaves the server unknown.
			if info, err := driver.GetServerInfo(ctx); err == nil {
				r.server = serverInfoOf(info)
			}
		}
		out.Server = r.server
		_ = driver.Close(ctx)
	}
	line, err := json.Marshal(out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(string(line))
}
