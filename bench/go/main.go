// The Go side of `npm run bench`: the official Neo4j Go driver (v5) under the same loads as the
// JavaScript and Python drivers, steered by bench/support/load-worker.ts over the same JSON-lines
// protocol as bench/python/load_worker.py (one request per line on stdin, one answer per line on
// stdout), so one long-lived process keeps its drivers and their warm pools across rounds.
//
// Requests:
//
//	{"op": "open", "name": "direct", "uri": "bolt://...", "username": "...", "password": "..."}
//	{"op": "load", "name": "direct", "cypher": "...", "rows": 1, "concurrency": 16, "seconds": 2, "shape": ...}
//	    -> {"queries", "errors", "seconds", "latenciesMs", "firstError"}
//	{"op": "fresh_driver", "uri": ..., "username": ..., "password": ..., "seconds": 2, "maxSamples": 400, "shape": ...}
//	    -> the same shape; each sample is a new driver's connect plus first query (the per-task pattern)
//	{"op": "close"}
//
// Concurrency is goroutines sharing one driver, as a Go service would. "shape" is how a query is sent:
// "executeQuery" (neo4j.ExecuteQuery, a managed transaction; the default) or "session.run" (an
// auto-commit query in a session).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j/config"
)

const database = "neo4j"

type request struct {
	Op          string  `json:"op"`
	Name        string  `json:"name"`
	URI         string  `json:"uri"`
	Username    string  `json:"username"`
	Password    string  `json:"password"`
	Cypher      string  `json:"cypher"`
	Rows        int     `json:"rows"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`
	MaxSamples  int     `json:"maxSamples"`
	Shape       string  `json:"shape"`
}

type round struct {
	Queries     int       `json:"queries"`
	Errors      int       `json:"errors"`
	Seconds     float64   `json:"seconds"`
	LatenciesMs []float64 `json:"latenciesMs"`
	FirstError  string    `json:"firstError,omitempty"`
}

var drivers = map[string]neo4j.DriverWithContext{}

func openDriver(uri, username, password string, poolSize int) (neo4j.DriverWithContext, error) {
	return neo4j.NewDriverWithContext(uri, neo4j.BasicAuth(username, password, ""), func(c *config.Config) {
		c.MaxConnectionPoolSize = poolSize
	})
}

// runQuery runs one query and answers when its rows were in (before any session close).
func runQuery(ctx context.Context, driver neo4j.DriverWithContext, cypher string, rows int, shape string) (time.Time, error) {
	var count int
	switch shape {
	case "", "executeQuery":
		result, err := neo4j.ExecuteQuery(ctx, driver, cypher, nil, neo4j.EagerResultTransformer,
			neo4j.ExecuteQueryWithDatabase(database), neo4j.ExecuteQueryWithReadersRouting())
		if err != nil {
			return time.Time{}, err
		}
		count = len(result.Records)
	case "session.run":
		session := driver.NewSession(ctx, neo4j.SessionConfig{DatabaseName: database, AccessMode: neo4j.AccessModeRead})
		defer session.Close(ctx)
		result, err := session.Run(ctx, cypher, nil)
		if err != nil {
			return time.Time{}, err
		}
		records, err := result.Collect(ctx)
		if err != nil {
			return time.Time{}, err
		}
		count = len(records)
	default:
		return time.Time{}, fmt.Errorf("unknown query shape %q", shape)
	}
	rowsInAt := time.Now()
	if count != rows {
		return time.Time{}, fmt.Errorf("expected %d rows, got %d", rows, count)
	}
	return rowsInAt, nil
}

// closedLoop runs one from `concurrency` goroutines until `seconds` pass; one returns the
// milliseconds to record when it times itself (a negative value means: time the whole call).
func closedLoop(one func() (float64, error), concurrency int, seconds float64, maxSamples int) round {
	var mu sync.Mutex
	latencies := make([]float64, 0, 1024)
	errors := 0
	firstError := ""
	started := time.Now()
	deadline := started.Add(time.Duration(seconds * float64(time.Second)))
	var wg sync.WaitGroup
	for i := 0; i < concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				mu.Lock()
				full := maxSamples > 0 && len(latencies) >= maxSamples
				mu.Unlock()
				if full {
					return
				}
				queryStarted := time.Now()
				measured, err := one()
				elapsed := float64(time.Since(queryStarted).Nanoseconds()) / 1e6
				mu.Lock()
				if err != nil {
					errors++
					if firstError == "" {
						firstError = err.Error()
					}
				} else if measured >= 0 {
					latencies = append(latencies, measured)
				} else {
					latencies = append(latencies, elapsed)
				}
				mu.Unlock()
				if err != nil {
					// A failing variant must not spin.
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	return round{
		Queries:     len(latencies),
		Errors:      errors,
		Seconds:     time.Since(started).Seconds(),
		LatenciesMs: latencies,
		FirstError:  firstError,
	}
}

func driverVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/neo4j/neo4j-go-driver/v5" {
				return dep.Version
			}
		}
	}
	return "unknown"
}

func handle(ctx context.Context, req request) (any, error) {
	switch req.Op {
	case "open":
		driver, err := openDriver(req.URI, req.Username, req.Password, 64)
		if err != nil {
			return nil, err
		}
		if err := driver.VerifyConnectivity(ctx); err != nil {
			_ = driver.Close(ctx)
			return nil, err
		}
		drivers[req.Name] = driver
		return map[string]any{"ok": true, "driverVersion": driverVersion()}, nil
	case "load":
		driver, ok := drivers[req.Name]
		if !ok {
			return nil, fmt.Errorf("no driver named %q", req.Name)
		}
		return closedLoop(func() (float64, error) {
			_, err := runQuery(ctx, driver, req.Cypher, req.Rows, req.Shape)
			return -1, err
		}, req.Concurrency, req.Seconds, 0), nil
	case "fresh_driver":
		// The per-task pattern: a new driver, its first query, then close (close is not timed).
		return closedLoop(func() (float64, error) {
			started := time.Now()
			driver, err := openDriver(req.URI, req.Username, req.Password, 1)
			if err != nil {
				return 0, err
			}
			defer driver.Close(ctx)
			rowsInAt, err := runQuery(ctx, driver, "RETURN 1 AS value", 1, req.Shape)
			if err != nil {
				return 0, err
			}
			return float64(rowsInAt.Sub(started).Nanoseconds()) / 1e6, nil
		}, 1, req.Seconds, req.MaxSamples), nil
	case "close":
		for name, driver := range drivers {
			_ = driver.Close(ctx)
			delete(drivers, name)
		}
		return map[string]any{"ok": true}, nil
	}
	return nil, fmt.Errorf("unknown op %q", req.Op)
}

func main() {
	ctx := context.Background()
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1024*1024), 16*1024*1024)
	out := bufio.NewWriter(os.Stdout)
	encoder := json.NewEncoder(out)
	for scanner.Scan() {
		line := scanner.Bytes()
		if len(line) == 0 {
			continue
		}
		var req request
		var answer any
		err := json.Unmarshal(line, &req)
		if err == nil {
			answer, err = handle(ctx, req)
		}
		if err != nil {
			answer = map[string]string{"error": err.Error()}
		}
		if encodeErr := encoder.Encode(answer); encodeErr != nil {
			fmt.Fprintln(os.Stderr, encodeErr)
			os.Exit(1)
		}
		out.Flush()
	}
}
