package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Grafana's global variables get fixed sample values before a query is parsed. The durations are
// deliberately odd numbers of milliseconds so that a range equal to the $__rate_interval sample can
// only have come from $__rate_interval (the same trick grafana/dashboard-linter uses).
const rateIntervalSample = 8869990787 * time.Millisecond

var sampleTime = time.Date(2020, 7, 13, 20, 19, 9, 254000000, time.UTC)

var globalSamples = map[string]string{
	"__rate_interval": "8869990787ms",
	"__interval":      "4867856611ms",
	"__interval_ms":   "7781188786",
	"__range_ms":      "6737667980",
	"__range_s":       "9397795485",
	"__range":         "6069770749ms",
	"__dashboard":     "AwREbnft",
	"__name":          "name",
	"__org":           "42",
	"__org.name":      "orgname",
	"__user.id":       "42",
	"__user.login":    "user",
	"__user.email":    "user@test.com",
	"timeFilter":      "time > now() - 7d",
	"__timeFilter":    "time > now() - 7d",
	"__auto":          "12345ms",
}

func formatTime(kind, format string) (string, error) {
	if kind == "date" {
		switch format {
		case "seconds":
			return strconv.FormatInt(sampleTime.Unix(), 10), nil
		case "iso":
			return sampleTime.Format(time.RFC3339), nil
		default:
			return "", fmt.Errorf("unsupported time format %q", format)
		}
	}
	if format == "date" {
		return sampleTime.Format(time.RFC3339), nil
	}
	return strconv.FormatInt(sampleTime.UnixMilli(), 10), nil
}

// formatValue applies Grafana's advanced variable formats to a sample value (repeated three times
// for the list formats, as a multi-value selection would be).
func formatValue(name, value, format string) (string, error) {
	list := []string{value, value, value}
	switch format {
	case "":
		return value, nil
	case "csv", "raw":
		return strings.Join(list, ","), nil
	case "doublequote":
		return `"` + strings.Join(list, `","`) + `"`, nil
	case "glob":
		return "{" + strings.Join(list, ",") + "}", nil
	case "json":
		data, err := json.Marshal(list)
		return string(data), err
	case "lucene":
		return `("` + strings.Join(list, `" OR "`) + `")`, nil
	case "percentencode":
		return url.QueryEscape(strings.Join(list, ",")), nil
	case "pipe", "regex":
		return strings.Join(list, "|"), nil
	case "singlequote", "sqlstring":
		return "'" + strings.Join(list, "','") + "'", nil
	case "text":
		return strings.Join(list, " + "), nil
	case "queryparam":
		values := url.Values{}
		for _, v := range list {
			values.Add("var-"+name, v)
		}
		return values.Encode(), nil
	default:
		return value, nil
	}
}

func sampleValue(reference string, variables []template) (string, error) {
	parts := strings.Split(reference, ":")
	var name, kind, format string
	switch len(parts) {
	case 1:
		name = reference
	case 2:
		name, format = parts[0], parts[1]
	case 3:
		name, kind, format = parts[0], parts[1], parts[2]
	default:
		return "", fmt.Errorf("unknown variable format %q", reference)
	}
	if name == "__from" || name == "__to" {
		return formatTime(kind, format)
	}
	if value, ok := globalSamples[name]; ok {
		return formatValue(name, value, format)
	}
	if strings.HasPrefix(name, "__auto_interval") {
		return "10s", nil
	}
	for _, v := range variables {
		if v.Name != name {
			continue
		}
		rest := withoutVariable(name, variables)
		current, err := firstString(v.Current.Value)
		if err != nil {
			return "", err
		}
		if current != "" {
			return expandVariables(current, rest)
		}
		if len(v.Options) > 0 {
			option, err := firstString(v.Options[0].Value)
			if err != nil {
				return "", err
			}
			return expandVariables(option, rest)
		}
	}
	return formatValue(name, name, format)
}

func withoutVariable(name string, variables []template) []template {
	out := make([]template, 0, len(variables))
	for _, v := range variables {
		if v.Name != name {
			out = append(out, v)
		}
	}
	return out
}

var variablePattern = regexp.MustCompile(`\$(\w+)|\$\{([^}]+)\}|\[\[([^\[\]]+)\]\]`)

// expandVariables replaces $var, ${var} and [[var]] outside double-quoted strings with sample
// values. Inside quotes they stay as written, so a matcher such as job=~"$job" can be checked
// for the variable it names.
func expandVariables(expr string, variables []template) (string, error) {
	parts := strings.Split(expr, `"`)
	for i := 0; i < len(parts); i += 2 {
		var failure error
		parts[i] = variablePattern.ReplaceAllStringFunc(parts[i], func(match string) string {
			groups := variablePattern.FindStringSubmatch(match)
			for _, group := range groups[1:] {
				if group == "" {
					continue
				}
				value, err := sampleValue(group, variables)
				if err != nil && failure == nil {
					failure = err
				}
				return value
			}
			return match
		})
		if failure != nil {
			return "", failure
		}
	}
	return strings.Join(parts, `"`), nil
}
