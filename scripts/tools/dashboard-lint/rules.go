package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

type severity int

const (
	severityOK severity = iota
	severityExcluded
	severityWarning
	severityError
)

// finding is one rule's verdict on one dashboard, panel or target; panel and target are empty or -1 when not applicable.
type finding struct {
	Rule      string
	Severity  severity
	Message   string
	Dashboard string
	Panel     string
	TargetIdx int
}

type rule struct {
	Name        string
	Description string
	check       func(d *dashboard, report func(finding))
}

// Panel types each rule family looks at; other types (rows, text, state timelines) are skipped as upstream does.
var (
	titledPanelTypes = []string{"stat", "singlestat", "graph", "table", "timeseries", "gauge"}
	sourcedPanelTypes = []string{"singlestat", "graph", "table", "timeseries"}
	queryPanelTypes   = []string{"singlestat", "gauge", "table", "stat", "state-timeline", "timeseries"}
)

func newParser() parser.Parser { return parser.NewParser(parser.Options{}) }

func parsePromQL(expr string, variables []template) (parser.Expr, error) {
	expanded, err := expandVariables(expr, variables)
	if err != nil {
		return nil, fmt.Errorf("could not expand variables: %w", err)
	}
	return newParser().ParseExpr(expanded)
}

func dashboardFinding(d *dashboard, name string, level severity, message string) finding {
	return finding{Rule: name, Severity: level, Message: fmt.Sprintf("Dashboard '%s' %s", d.Title, message), Dashboard: d.Title, TargetIdx: -1}
}

func panelFinding(d *dashboard, p panel, name string, message string) finding {
	subject := fmt.Sprintf("panel '%s'", p.Title)
	if p.Title == "" {
		subject = fmt.Sprintf("panel with id '%d'", p.ID)
	}
	return finding{Rule: name, Severity: severityError, Message: fmt.Sprintf("Dashboard '%s', %s %s", d.Title, subject, message), Dashboard: d.Title, Panel: p.Title, TargetIdx: -1}
}

func targetFinding(d *dashboard, p panel, t target, name string, message string) finding {
	return finding{Rule: name, Severity: severityError, Message: fmt.Sprintf("Dashboard '%s', panel '%s', target idx '%d' %s", d.Title, p.Title, t.Idx, message), Dashboard: d.Title, Panel: p.Title, TargetIdx: t.Idx}
}

func titleCase(word string) string {
	if word == "" {
		return word
	}
	return strings.ToUpper(word[:1]) + strings.ToLower(word[1:])
}

func templateDatasourceRule() rule {
	name := "template-datasource-rule"
	return rule{name, "Checks that the dashboard has a templated datasource.", func(d *dashboard, report func(finding)) {
		sources := d.templatesOfType("datasource")
		if len(sources) == 0 {
			report(dashboardFinding(d, name, severityError, "does not have a templated data source"))
		}
		for _, source := range sources {
			specificName := strings.ToLower(source.Query) + "_datasource"
			specificLabel := titleCase(source.Query) + " data source"
			names := []string{specificName}
			labelsAllowed := []string{specificLabel}
			nameHint := fmt.Sprintf("'%s'", specificName)
			labelHint := fmt.Sprintf("'%s'", specificLabel)
			if len(sources) == 1 {
				names = append(names, "datasource")
				labelsAllowed = append(labelsAllowed, "Data source")
				nameHint += ", or 'datasource'"
				labelHint += ", or 'Data source'"
			}
			if !slices.Contains(names, source.Name) {
				report(dashboardFinding(d, name, severityError, fmt.Sprintf("templated data source variable named '%s', should be named %s", source.Name, nameHint)))
			}
			if !slices.Contains(labelsAllowed, source.Label) {
				report(dashboardFinding(d, name, severityWarning, fmt.Sprintf("templated data source variable labeled '%s', should be labeled %s", source.Label, labelHint)))
			}
		}
	}}
}

func requiredTemplateRule(variable string) rule {
	name := fmt.Sprintf("template-%s-rule", variable)
	return rule{name, fmt.Sprintf("Checks that the dashboard has a templated %s.", variable), func(d *dashboard, report func(finding)) {
		if !d.prometheusDashboard() {
			return
		}
		t := d.template(variable)
		if t == nil {
			report(dashboardFinding(d, name, severityError, fmt.Sprintf("is missing the %s template", variable)))
			return
		}
		source, err := parseDatasource(t.Datasource)
		if err != nil {
			report(dashboardFinding(d, name, severityError, fmt.Sprintf("%s template has invalid datasource %v", variable, err)))
		}
		if !slices.Contains([]string{"$datasource", "${datasource}", "$prometheus_datasource", "${prometheus_datasource}"}, source.UID) {
			report(dashboardFinding(d, name, severityError, fmt.Sprintf("%s template should use datasource '$datasource', is currently '%s'", variable, source.UID)))
		}
		if t.Type != "query" {
			report(dashboardFinding(d, name, severityError, fmt.Sprintf("%s template should be a Prometheus query, is currently '%s'", variable, t.Type)))
		}
		if t.Label != titleCase(variable) {
			report(dashboardFinding(d, name, severityWarning, fmt.Sprintf("%s template should be labeled '%s', is currently '%s'", variable, titleCase(variable), t.Label)))
		}
		if !t.Multi {
			report(dashboardFinding(d, name, severityError, fmt.Sprintf("%s template should be a multi select", variable)))
		}
		if t.AllValue != ".+" {
			report(dashboardFinding(d, name, severityError, fmt.Sprintf("%s template allValue should be '.+', is currently '%s'", variable, t.AllValue)))
		}
	}}
}

var templateQueryPattern = regexp.MustCompile(`^\s*([a-z_]+)\((.*)\)\s*$`)

// checkTemplateQuery validates a Prometheus variable query such as label_values(metric{...}, label).
// Stricter than upstream, which accepts any query whose PromQL merely starts out valid: here the
// selector or query must parse completely and label arguments must be label names.
func checkTemplateQuery(query string, variables []template) error {
	groups := templateQueryPattern.FindStringSubmatch(query)
	if groups == nil {
		return fmt.Errorf("invalid 'query': %v", query)
	}
	function, argument := groups[1], strings.TrimSpace(groups[2])
	labelName := regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	switch function {
	case "label_names", "metrics":
		if argument == "" {
			return nil
		}
		if function == "metrics" {
			return nil // a regular expression over metric names, not PromQL
		}
		_, err := parsePromQL(argument, variables)
		return err
	case "label_values":
		comma := strings.LastIndex(argument, ",")
		if comma < 0 {
			if !labelName.MatchString(argument) {
				return fmt.Errorf("label_values needs a label name, got %q", argument)
			}
			return nil
		}
		selector, label := strings.TrimSpace(argument[:comma]), strings.TrimSpace(argument[comma+1:])
		if !labelName.MatchString(label) {
			return fmt.Errorf("label_values needs a label name as its last argument, got %q", label)
		}
		_, err := parsePromQL(selector, variables)
		return err
	case "query_result":
		_, err := parsePromQL(argument, variables)
		return err
	default:
		return fmt.Errorf("invalid 'function': %v", function)
	}
}

func templateLabelPromQLRule() rule {
	name := "template-label-promql-rule"
	return rule{name, "Checks that the dashboard templated labels have proper PromQL expressions.", func(d *dashboard, report func(finding)) {
		if !d.prometheusDashboard() {
			return
		}
		for _, t := range d.Templating.List {
			if t.Type != "query" {
				continue
			}
			if err := checkTemplateQuery(t.Query, d.Templating.List); err != nil {
				report(dashboardFinding(d, name, severityError, fmt.Sprintf("template '%s' invalid templated label '%s': %v", t.Name, t.Query, err)))
			}
		}
	}}
}

func templateOnTimeChangeReloadRule() rule {
	name := "template-on-time-change-reload-rule"
	return rule{name, "Checks that the dashboard template variables are configured to reload on time change.", func(d *dashboard, report func(finding)) {
		for _, t := range d.Templating.List {
			if t.Type == "query" && t.Refresh != 2 {
				report(dashboardFinding(d, name, severityError, fmt.Sprintf("templated datasource variable named '%s', should be set to be refreshed 'On Time Range Change (value 2)', is currently '%d'", t.Name, t.Refresh)))
			}
		}
	}}
}

func panelDatasourceRule() rule {
	name := "panel-datasource-rule"
	return rule{name, "Checks that each panel uses the templated datasource.", func(d *dashboard, report func(finding)) {
		allowed := []string{}
		for _, source := range d.templatesOfType("datasource") {
			allowed = append(allowed, "$"+source.Name, "${"+source.Name+"}")
		}
		for _, p := range d.allPanels() {
			if !slices.Contains(sourcedPanelTypes, p.Type) {
				continue
			}
			source, err := parseDatasource(p.Datasource)
			if err != nil {
				report(panelFinding(d, p, name, fmt.Sprintf("has invalid datasource: %v", err)))
			}
			if !slices.Contains(allowed, source.UID) {
				report(panelFinding(d, p, name, fmt.Sprintf("does not use a templated datasource, uses '%s'", source.UID)))
			}
		}
	}}
}

func panelTitleDescriptionRule() rule {
	name := "panel-title-description-rule"
	return rule{name, "Checks that each panel has a title and description.", func(d *dashboard, report func(finding)) {
		for _, p := range d.allPanels() {
			if slices.Contains(titledPanelTypes, p.Type) && (p.Title == "" || p.Description == "") {
				report(panelFinding(d, p, name, fmt.Sprintf("has missing title or description, currently has title '%s' and description: '%s'", p.Title, p.Description)))
			}
		}
	}}
}

func configuredUnit(p panel) string {
	unit := ""
	if p.FieldConfig == nil {
		return unit
	}
	for _, override := range p.FieldConfig.Overrides {
		for _, property := range override.Properties {
			if property.ID == "unit" {
				_ = json.Unmarshal(property.Value, &unit)
			}
		}
	}
	if unit == "" {
		unit = p.FieldConfig.Defaults.Unit
	}
	return unit
}

func hasValueMappings(p panel) bool {
	if p.FieldConfig == nil {
		return false
	}
	for _, override := range p.FieldConfig.Overrides {
		for _, property := range override.Properties {
			if property.ID == "mappings" && len(property.Value) > 0 && string(property.Value) != "null" {
				return true
			}
		}
	}
	mappings := p.FieldConfig.Defaults.Mappings
	return len(mappings) > 0 && string(mappings) != "null"
}

func panelUnitsRule() rule {
	name := "panel-units-rule"
	return rule{name, "Checks that each panel uses has valid units defined.", func(d *dashboard, report func(finding)) {
		for _, p := range d.allPanels() {
			if !slices.Contains(titledPanelTypes, p.Type) {
				continue
			}
			if p.Type == "stat" {
				var options struct {
					ReduceOptions struct {
						Fields string `json:"fields"`
					} `json:"reduceOptions"`
				}
				if json.Unmarshal(p.Options, &options) == nil && options.ReduceOptions.Fields != "" {
					continue // a stat of a text field has no unit
				}
			}
			if hasValueMappings(p) {
				continue
			}
			unit := configuredUnit(p)
			if unit == "" || !validUnits[unit] {
				report(panelFinding(d, p, name, fmt.Sprintf("has no or invalid units defined: '%s'", unit)))
			}
		}
	}}
}

func panelNoTargetsRule() rule {
	name := "panel-no-targets-rule"
	return rule{name, "Checks that each panel has at least one target.", func(d *dashboard, report func(finding)) {
		for _, p := range d.allPanels() {
			if slices.Contains(titledPanelTypes, p.Type) && !p.HasTargets {
				report(panelFinding(d, p, name, "has no targets"))
			}
		}
	}}
}

// eachPromQLTarget visits the Prometheus targets of query panels, as the target rules do upstream.
func eachPromQLTarget(d *dashboard, visit func(p panel, t target)) {
	if !d.prometheusDashboard() {
		return
	}
	for _, p := range d.allPanels() {
		if !slices.Contains(queryPanelTypes, p.Type) {
			continue
		}
		for _, t := range p.Targets {
			visit(p, t)
		}
	}
}

func targetPromQLRule() rule {
	name := "target-promql-rule"
	return rule{name, "Checks that each target uses a valid PromQL query.", func(d *dashboard, report func(finding)) {
		panelIDs := map[int]bool{}
		for _, p := range d.allPanels() {
			panelIDs[p.ID] = true
		}
		eachPromQLTarget(d, func(p panel, t target) {
			if t.Expr == "" && t.PanelID > 0 {
				if !panelIDs[t.PanelID] {
					report(targetFinding(d, p, t, name, "Invalid panel reference in target"))
				}
				return
			}
			if _, err := parsePromQL(t.Expr, d.Templating.List); err != nil {
				report(targetFinding(d, p, t, name, fmt.Sprintf("invalid PromQL query '%s': %v", t.Expr, err)))
			}
		})
	}}
}

func targetRateIntervalRule() rule {
	name := "target-rate-interval-rule"
	return rule{name, "Checks that each target uses $__rate_interval.", func(d *dashboard, report func(finding)) {
		eachPromQLTarget(d, func(p panel, t target) {
			expr, err := parsePromQL(t.Expr, d.Templating.List)
			if err != nil {
				return // invalid PromQL is target-promql-rule's finding
			}
			var problem string
			parser.Inspect(expr, func(node parser.Node, path []parser.Node) error {
				selector, ok := node.(*parser.MatrixSelector)
				if !ok || problem != "" || selector.Range == rateIntervalSample || len(path) == 0 {
					return nil
				}
				call, ok := path[len(path)-1].(*parser.Call)
				if !ok {
					problem = fmt.Sprintf("invalid PromQL query '%s': $__rate_interval used in non-rate function", t.Expr)
					return nil
				}
				if call.Func.Name == "rate" || call.Func.Name == "irate" {
					problem = fmt.Sprintf("invalid PromQL query '%s': should use $__rate_interval", t.Expr)
				}
				return nil
			})
			if problem != "" {
				report(targetFinding(d, p, t, name, problem))
			}
		})
	}}
}

func targetMatcherRule(variable string) rule {
	name := fmt.Sprintf("target-%s-rule", variable)
	want := "$" + variable
	return rule{name, fmt.Sprintf("Checks that every PromQL query has a %s matcher.", variable), func(d *dashboard, report func(finding)) {
		if !d.prometheusDashboard() {
			return
		}
		for _, p := range d.allPanels() {
			for _, t := range p.Targets {
				expr, err := parsePromQL(t.Expr, d.Templating.List)
				if err != nil {
					continue
				}
				for _, matchers := range parser.ExtractSelectors(expr) {
					if problem := matcherProblem(matchers, variable, want); problem != "" {
						report(targetFinding(d, p, t, name, fmt.Sprintf("invalid PromQL query '%s': %s", t.Expr, problem)))
					}
				}
			}
		}
	}}
}

func matcherProblem(matchers []*labels.Matcher, label, value string) string {
	problem := fmt.Sprintf("%s selector not found", label)
	for _, m := range matchers {
		if m.Name != label {
			continue
		}
		if m.Type == labels.MatchRegexp && m.Value == value {
			return ""
		}
		if m.Type != labels.MatchRegexp {
			problem = fmt.Sprintf("%s selector is %s, not %s", label, m.Type, labels.MatchRegexp)
		}
		if m.Value != value {
			problem = fmt.Sprintf("%s selector is %s, not %s", label, m.Value, value)
		}
	}
	return problem
}

// targetCounterAggRule requires every counter (a metric named *_total) to sit directly in
// rate, irate or increase. Upstream compares the whole selector text, which never ends in _total
// once matchers are present; this compares the metric name, so it also holds for selectors with
// matchers.
func targetCounterAggRule() rule {
	name := "target-counter-agg-rule"
	return rule{name, "Checks that any counter metric (ending in _total) is aggregated with rate, irate, or increase.", func(d *dashboard, report func(finding)) {
		for _, p := range d.allPanels() {
			for _, t := range p.Targets {
				expr, err := parsePromQL(t.Expr, d.Templating.List)
				if err != nil {
					continue
				}
				var problem string
				parser.Inspect(expr, func(node parser.Node, path []parser.Node) error {
					selector, ok := node.(*parser.VectorSelector)
					if !ok || problem != "" || !strings.HasSuffix(selector.Name, "_total") {
						return nil
					}
					message := fmt.Sprintf("counter metric '%s' is not aggregated with rate, irate, or increase", selector.String())
					if len(path) < 2 {
						problem = message
						return nil
					}
					if _, ranged := path[len(path)-1].(*parser.MatrixSelector); !ranged {
						problem = message
						return nil
					}
					call, ok := path[len(path)-2].(*parser.Call)
					if !ok || (call.Func.Name != "rate" && call.Func.Name != "irate" && call.Func.Name != "increase") {
						problem = message
					}
					return nil
				})
				if problem != "" {
					report(targetFinding(d, p, t, name, problem))
				}
			}
		}
	}}
}

func uneditableRule() rule {
	name := "uneditable-dashboard"
	return rule{name, "Checks that the dashboard is not editable.", func(d *dashboard, report func(finding)) {
		if d.Editable {
			report(dashboardFinding(d, name, severityError, "is editable, it should be set to 'editable: false'"))
		}
	}}
}

// lokiRule refuses dashboards with Loki datasources: the LogQL rules of upstream are not ported,
// and a port that silently passed them would be worse than one that says so.
func lokiRule() rule {
	name := "target-logql-rule"
	return rule{name, "Refuses Loki targets: the LogQL rules are not part of this port.", func(d *dashboard, report func(finding)) {
		for _, source := range d.templatesOfType("datasource") {
			if source.Query == "loki" {
				report(dashboardFinding(d, name, severityError, "has a Loki datasource; this port checks Prometheus dashboards only"))
			}
		}
	}}
}

func allRules() []rule {
	return []rule{
		templateDatasourceRule(),
		requiredTemplateRule("job"),
		requiredTemplateRule("instance"),
		templateLabelPromQLRule(),
		templateOnTimeChangeReloadRule(),
		panelDatasourceRule(),
		panelTitleDescriptionRule(),
		panelUnitsRule(),
		panelNoTargetsRule(),
		lokiRule(),
		targetPromQLRule(),
		targetRateIntervalRule(),
		targetMatcherRule("job"),
		targetMatcherRule("instance"),
		targetCounterAggRule(),
		uneditableRule(),
	}
}
