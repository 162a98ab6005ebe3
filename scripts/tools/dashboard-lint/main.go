// Command dashboard-lint checks Grafana dashboards against the rules of grafana/dashboard-linter.
//
// It exists because the Go module proxy this project builds from refuses
// github.com/grafana/dashboard-linter and two of its dependencies, so `go install` of the real
// linter is impossible here. The rules are re-implemented from the linter's rule documentation
// with the same PromQL parser (github.com/prometheus/prometheus/promql/parser), the same sample
// values for Grafana's variables, the same `.lint` exclusion file format and the same --strict
// meaning (warnings fail too). Differences, each stricter than upstream, are noted where they are
// implemented. Where the real linter is available, test/deploy runs it as well.
//
// Usage: dashboard-lint lint [--strict] [--verbose] [-c .lint] dashboard.json
//
//	dashboard-lint rules
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"gopkg.in/yaml.v3"
)

type exclusionEntry struct {
	Reason    string `yaml:"reason"`
	Dashboard string `yaml:"dashboard"`
	Panel     string `yaml:"panel"`
	TargetIdx string `yaml:"targetIdx"`
}

type ruleExclusions struct {
	Reason  string           `yaml:"reason"`
	Entries []exclusionEntry `yaml:"entries"`
}

// lintConfig is the `.lint` file of grafana/dashboard-linter: rules excluded (or downgraded to
// warnings) everywhere, or only for the dashboards, panels and targets listed.
type lintConfig struct {
	Exclusions map[string]*ruleExclusions `yaml:"exclusions"`
	Warnings   map[string]*ruleExclusions `yaml:"warnings"`
}

func loadConfig(path string) (*lintConfig, error) {
	config := &lintConfig{}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return config, nil
	}
	if err != nil {
		return nil, err
	}
	if err := yaml.Unmarshal(data, config); err != nil {
		return nil, fmt.Errorf("could not read lint configuration %s: %w", path, err)
	}
	return config, nil
}

func (e exclusionEntry) matches(f finding) bool {
	if e.Dashboard != "" && e.Dashboard != f.Dashboard {
		return false
	}
	if e.Panel != "" && f.Panel != "" && e.Panel != f.Panel {
		return false
	}
	if e.TargetIdx != "" && f.TargetIdx >= 0 {
		if idx, err := strconv.Atoi(e.TargetIdx); err == nil && idx != f.TargetIdx {
			return false
		}
	}
	return true
}

func listed(rules map[string]*ruleExclusions, f finding) bool {
	entry, ok := rules[f.Rule]
	if !ok {
		return false
	}
	if entry == nil || len(entry.Entries) == 0 {
		return true
	}
	for _, e := range entry.Entries {
		if e.matches(f) {
			return true
		}
	}
	return false
}

func (c *lintConfig) apply(f finding) finding {
	if listed(c.Exclusions, f) {
		f.Severity = severityExcluded
		f.Message += " (Excluded)"
	}
	if f.Severity != severityExcluded && listed(c.Warnings, f) {
		f.Severity = severityWarning
	}
	return f
}

func lint(stdout io.Writer, args []string) int {
	flags := flag.NewFlagSet("lint", flag.ContinueOnError)
	strict := flags.Bool("strict", false, "fail upon linting error or warning")
	verbose := flags.Bool("verbose", false, "show excluded findings too")
	configPath := flags.String("c", "", "path to a configuration file (default: .lint beside the dashboard)")
	flags.StringVar(configPath, "config", "", "path to a configuration file")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if flags.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: dashboard-lint lint [--strict] [--verbose] [-c .lint] dashboard.json")
		return 2
	}
	file := flags.Arg(0)
	data, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	d, err := parseDashboard(data)
	if err != nil {
		fmt.Fprintf(os.Stderr, "failed to parse dashboard %s: %v\n", file, err)
		return 1
	}
	if *configPath == "" {
		*configPath = filepath.Join(filepath.Dir(file), ".lint")
	}
	config, err := loadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	worst := severityOK
	for _, r := range allRules() {
		r.check(d, func(f finding) {
			f = config.apply(f)
			worst = max(worst, f.Severity)
			switch f.Severity {
			case severityError:
				fmt.Fprintf(stdout, "[error] %s: %s\n", f.Rule, f.Message)
			case severityWarning:
				fmt.Fprintf(stdout, "[warning] %s: %s\n", f.Rule, f.Message)
			case severityExcluded:
				if *verbose {
					fmt.Fprintf(stdout, "[excluded] %s: %s\n", f.Rule, f.Message)
				}
			}
		})
	}
	if worst >= severityError || (*strict && worst >= severityWarning) {
		fmt.Fprintf(stdout, "%s: there were linting errors, please see previous output\n", file)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", file)
	return 0
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dashboard-lint lint [--strict] [-c .lint] dashboard.json | dashboard-lint rules")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "lint":
		os.Exit(lint(os.Stdout, os.Args[2:]))
	case "rules":
		for _, r := range allRules() {
			fmt.Printf("* `%s` - %s\n", r.Name, r.Description)
		}
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}
