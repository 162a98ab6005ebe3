package main

import (
	"encoding/json"
	"fmt"
	"strings"
)

// The dashboard model reads only the fields the rules look at, in the same shapes Grafana writes
// them (a datasource may be a string or {type, uid}; a template query a string or {query}).

type datasourceRef struct {
	UID  string
	Type string
}

func parseDatasource(raw json.RawMessage) (datasourceRef, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return datasourceRef{}, nil
	}
	var name string
	if err := json.Unmarshal(raw, &name); err == nil {
		return datasourceRef{UID: name}, nil
	}
	var object struct {
		UID  *string `json:"uid"`
		Type string  `json:"type"`
	}
	if err := json.Unmarshal(raw, &object); err != nil {
		return datasourceRef{}, fmt.Errorf("datasource is neither a string nor an object: %s", raw)
	}
	if object.UID == nil {
		return datasourceRef{}, fmt.Errorf("datasource object has no uid")
	}
	return datasourceRef{UID: *object.UID, Type: object.Type}, nil
}

type templateValue struct {
	Text  json.RawMessage `json:"text"`
	Value json.RawMessage `json:"value"`
}

// firstString reads a string or the first element of a string list, as Grafana stores multi-value selections.
func firstString(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var single string
	if err := json.Unmarshal(raw, &single); err == nil {
		return single, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return "", fmt.Errorf("value is neither a string nor a list of strings: %s", raw)
	}
	if len(list) == 0 {
		return "", nil
	}
	return list[0], nil
}

type template struct {
	Name       string          `json:"name"`
	Label      string          `json:"label"`
	Type       string          `json:"type"`
	RawQuery   json.RawMessage `json:"query"`
	Datasource json.RawMessage `json:"datasource"`
	Multi      bool            `json:"multi"`
	AllValue   string          `json:"allValue"`
	Current    templateValue   `json:"current"`
	Options    []templateValue `json:"options"`
	Refresh    int             `json:"refresh"`
	// Query is RawQuery as text: the string itself, or the `query` field of an object.
	Query string `json:"-"`
}

func (t *template) resolveQuery() error {
	if t.Type == "adhoc" || t.Type == "custom" || len(t.RawQuery) == 0 || string(t.RawQuery) == "null" {
		return nil
	}
	var text string
	if err := json.Unmarshal(t.RawQuery, &text); err == nil {
		t.Query = text
		return nil
	}
	var object map[string]json.RawMessage
	if err := json.Unmarshal(t.RawQuery, &object); err != nil {
		return fmt.Errorf("template %q: query is neither a string nor an object", t.Name)
	}
	if inner, ok := object["query"]; ok {
		if err := json.Unmarshal(inner, &t.Query); err != nil {
			return fmt.Errorf("template %q: query.query is not a string", t.Name)
		}
	}
	return nil
}

type target struct {
	Datasource json.RawMessage `json:"datasource"`
	Expr       string          `json:"expr"`
	PanelID    int             `json:"panelId"`
	RefID      string          `json:"refId"`
	Hide       bool            `json:"hide"`
	Idx        int             `json:"-"`
}

type overrideProperty struct {
	ID    string          `json:"id"`
	Value json.RawMessage `json:"value"`
}

type fieldConfig struct {
	Defaults struct {
		Unit     string          `json:"unit"`
		Mappings json.RawMessage `json:"mappings"`
	} `json:"defaults"`
	Overrides []struct {
		Properties []overrideProperty `json:"properties"`
	} `json:"overrides"`
}

type panel struct {
	ID          int             `json:"id"`
	Title       string          `json:"title"`
	Description string          `json:"description"`
	Type        string          `json:"type"`
	Datasource  json.RawMessage `json:"datasource"`
	Targets     []target        `json:"targets"`
	HasTargets  bool            `json:"-"`
	Panels      []panel         `json:"panels"`
	FieldConfig *fieldConfig    `json:"fieldConfig"`
	Options     json.RawMessage `json:"options"`
}

type dashboard struct {
	Title      string `json:"title"`
	Editable   bool   `json:"editable"`
	Templating struct {
		List []template `json:"list"`
	} `json:"templating"`
	Rows []struct {
		Panels []panel `json:"panels"`
	} `json:"rows"`
	Panels []panel `json:"panels"`
}

func parseDashboard(data []byte) (*dashboard, error) {
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, err
	}
	// `targets` absent and `targets: []` differ for panel-no-targets-rule, so look at the raw panels too.
	var raw struct {
		Panels []json.RawMessage `json:"panels"`
		Rows   []struct {
			Panels []json.RawMessage `json:"panels"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	for i := range d.Panels {
		if i < len(raw.Panels) {
			markTargets(&d.Panels[i], raw.Panels[i])
		}
	}
	for r := range d.Rows {
		for i := range d.Rows[r].Panels {
			if r < len(raw.Rows) && i < len(raw.Rows[r].Panels) {
				markTargets(&d.Rows[r].Panels[i], raw.Rows[r].Panels[i])
			}
		}
	}
	for i := range d.Templating.List {
		if err := d.Templating.List[i].resolveQuery(); err != nil {
			return nil, err
		}
	}
	return &d, nil
}

func markTargets(p *panel, raw json.RawMessage) {
	var fields struct {
		Targets json.RawMessage   `json:"targets"`
		Panels  []json.RawMessage `json:"panels"`
	}
	if json.Unmarshal(raw, &fields) != nil {
		return
	}
	p.HasTargets = len(fields.Targets) > 0 && string(fields.Targets) != "null"
	for i := range p.Panels {
		if i < len(fields.Panels) {
			markTargets(&p.Panels[i], fields.Panels[i])
		}
	}
}

// allPanels flattens rows and nested (row) panels, numbering each panel's targets.
func (d *dashboard) allPanels() []panel {
	var out []panel
	var walk func(p panel)
	walk = func(p panel) {
		for i := range p.Targets {
			p.Targets[i].Idx = i
		}
		out = append(out, p)
		for _, child := range p.Panels {
			walk(child)
		}
	}
	for _, row := range d.Rows {
		for _, p := range row.Panels {
			walk(p)
		}
	}
	for _, p := range d.Panels {
		walk(p)
	}
	return out
}

func (d *dashboard) templatesOfType(kind string) []template {
	var out []template
	for _, t := range d.Templating.List {
		if strings.EqualFold(t.Type, kind) {
			out = append(out, t)
		}
	}
	return out
}

func (d *dashboard) template(name string) *template {
	for i := range d.Templating.List {
		if d.Templating.List[i].Name == name {
			return &d.Templating.List[i]
		}
	}
	return nil
}

// prometheusDashboard is true when the first datasource variable is a Prometheus one: the rules
// about PromQL, job and instance apply only then.
func (d *dashboard) prometheusDashboard() bool {
	sources := d.templatesOfType("datasource")
	return len(sources) > 0 && sources[0].Query == "prometheus"
}
