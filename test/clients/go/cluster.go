// The cluster scenarios: managed read and write transactions on the marker queries of
// test/support/cluster.ts, one new session each, counted by the member that served them.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

// Each cluster member holds one (:ClusterMember {name}) node, so a transaction's record names the member
// that served it.
const (
	clusterRead  = "MATCH (m:ClusterMember) RETURN m.name AS member"
	clusterWrite = "CREATE (w:ClusterWrite {id: $id}) WITH w MATCH (m:ClusterMember) RETURN m.name AS member"
)

type access string

const (
	accessRead  access = "read"
	accessWrite access = "write"
)

// markerError: a member answered with other than one ClusterMember, so the test setting is wrong, not the driver.
type markerError struct{ members int }

func (e *markerError) Error() string {
	return fmt.Sprintf("expected one ClusterMember, got %d", e.members)
}

type accessCounts struct {
	Transactions int            `json:"transactions"`
	Committed    int            `json:"committed"`
	ByMember     map[string]int `json:"byMember"`
}

type clusterFailure struct {
	Access    access  `json:"access"`
	ID        *string `json:"id"`
	ClassName string  `json:"className"`
	Code      *string `json:"code"`
	Message   string  `json:"message"`
	Retryable bool    `json:"retryable"`
}

// clusterLoad is shared by the workers of one run.
type clusterLoad struct {
	r            *runner
	mu           sync.Mutex
	counts       map[access]*accessCounts
	acknowledged []string
	failures     []clusterFailure
	attempts     int
	retried      int
	nextWrite    int
	completed    int
}

func newClusterLoad(r *runner) *clusterLoad {
	return &clusterLoad{
		r: r,
		counts: map[access]*accessCounts{
			accessRead:  {ByMember: map[string]int{}},
			accessWrite: {ByMember: map[string]int{}},
		},
		acknowledged: []string{},
		failures:     []clusterFailure{},
	}
}

func (l *clusterLoad) newWriteID() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	id := fmt.Sprintf("%s-%d", l.r.opts.idPrefix, l.nextWrite)
	l.nextWrite++
	return id
}

type memberAndSummary struct {
	member  string
	summary neo4j.ResultSummary
}

func (l *clusterLoad) runOne(ctx context.Context, mode access) {
	var writeID *string
	if mode == accessWrite {
		id := l.newWriteID()
		writeID = &id
	}
	tries := 0
	work := func(tx neo4j.ManagedTransaction) (any, error) {
		tries++
		query, params := clusterRead, map[string]any(nil)
		if writeID != nil {
			query, params = clusterWrite, map[string]any{"id": *writeID}
		}
		result, err := tx.Run(ctx, query, params)
		if err != nil {
			return nil, err
		}
		records, summary, err := collectAll(ctx, result)
		if err != nil {
			return nil, err
		}
		if len(records) != 1 {
			return nil, &markerError{members: len(records)}
		}
		member, _ := records[0].Get("member")
		name, _ := member.(string)
		return memberAndSummary{name, summary}, nil
	}

	l.mu.Lock()
	l.counts[mode].Transactions++
	l.mu.Unlock()
	session := l.r.session(ctx)
	var out any
	var err error
	if mode == accessRead {
		out, err = session.ExecuteRead(ctx, work)
	} else {
		out, err = session.ExecuteWrite(ctx, work)
	}
	// The transaction's outcome is known already; a close error does not change it.
	_ = session.Close(ctx)
	if err == nil {
		l.r.noteServer(out.(memberAndSummary).summary)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	l.attempts += tries
	if tries > 1 {
		l.retried++
	}
	l.completed++
	if err == nil {
		counts := l.counts[mode]
		counts.Committed++
		counts.ByMember[out.(memberAndSummary).member]++
		if writeID != nil {
			l.acknowledged = append(l.acknowledged, *writeID)
		}
	} else {
		l.failures = append(l.failures, clusterFailureOf(mode, writeID, err))
	}
	if l.completed == 1 || l.completed%10 == 0 {
		line, _ := json.Marshal(map[string]any{"progress": map[string]int{"completed": l.completed, "failed": len(l.failures)}})
		fmt.Fprintln(os.Stderr, string(line))
	}
}

func clusterFailureOf(mode access, writeID *string, err error) clusterFailure {
	// Past its retry budget the driver wraps the errors it met; the last one is what the other clients report.
	final := err
	var limit *neo4j.TransactionExecutionLimit
	if errors.As(err, &limit) && len(limit.Errors) > 0 {
		final = limit.Errors[len(limit.Errors)-1]
	}
	details := errorJSON(final)
	message, _, _ := strings.Cut(err.Error(), "\n")
	return clusterFailure{
		Access:    mode,
		ID:        writeID,
		ClassName: details.ClassName,
		Code:      details.Code,
		Message:   message,
		Retryable: details.Retryable,
	}
}

// runWorkers runs --concurrency workers, each taking the next transaction's access mode until there is none.
func (l *clusterLoad) runWorkers(ctx context.Context, next func() (access, bool)) map[string]any {
	var wg sync.WaitGroup
	for worker := 0; worker < l.r.opts.concurrency; worker++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mode, ok := next()
				if !ok {
					return
				}
				l.runOne(ctx, mode)
			}
		}()
	}
	wg.Wait()
	return map[string]any{
		"reads":                l.counts[accessRead],
		"writes":               l.counts[accessWrite],
		"acknowledgedWriteIds": l.acknowledged,
		"failures":             l.failures,
		"attempts":             l.attempts,
		"retried":              l.retried,
	}
}

// spreadOrder interleaves reads and writes evenly, so a change during the run meets both.
func spreadOrder(reads, writes int) []access {
	total := reads + writes
	order := make([]access, 0, total)
	for i := 0; i < total; i++ {
		if (i+1)*writes/total > i*writes/total {
			order = append(order, accessWrite)
		} else {
			order = append(order, accessRead)
		}
	}
	return order
}

func (r *runner) clusterSpread(ctx context.Context) (map[string]any, error) {
	pending := spreadOrder(r.opts.reads, r.opts.writes)
	var mu sync.Mutex
	next := func() (access, bool) {
		mu.Lock()
		defer mu.Unlock()
		if len(pending) == 0 {
			return "", false
		}
		mode := pending[0]
		pending = pending[1:]
		return mode, true
	}
	return newClusterLoad(r).runWorkers(ctx, next), nil
}

// stopSignal is closed when stdin reaches its end (the caller closed it) or after duration, whichever is first.
func stopSignal(duration time.Duration) <-chan struct{} {
	stop := make(chan struct{})
	var once sync.Once
	closeStop := func() { once.Do(func() { close(stop) }) }
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		closeStop()
	}()
	if duration > 0 {
		time.AfterFunc(duration, closeStop)
	}
	return stop
}

func (r *runner) clusterLoop(ctx context.Context, mode access) (map[string]any, error) {
	stop := stopSignal(r.opts.duration)
	next := func() (access, bool) {
		select {
		case <-stop:
			return "", false
		default:
			return mode, true
		}
	}
	return newClusterLoad(r).runWorkers(ctx, next), nil
}
