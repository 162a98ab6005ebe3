/**
 * The subset of Prometheus alert templating the alert descriptions use, rendered the way Prometheus
 * renders it, so the sidecar's own log lines and StatsD events read exactly like the alerts
 * Alertmanager shows (promtool's expected annotations in the tests check that).
 *
 * Supported: `{{ $labels.name }}`, `{{ $value }}`, `{{ $value | humanize }}`, `| humanizeDuration`,
 * `| humanizePercentage`, and `{{ if $labels.name }}...{{ else }}...{{ end }}` (not nested).
 */

/**
 * The `precision` significant digits of |value| and its decimal exponent, rounded half to even on the
 * exact binary value as Go's strconv does (JavaScript's toExponential rounds exact ties up).
 */
function significantDigits(value: number, precision: number): { digits: string; exponent: number } {
  const rounded = value.toExponential(precision - 1);
  const [mantissa = '', exponentText = '0'] = rounded.split('e');
  const exact = value.toExponential(Math.min(100, precision + 24));
  const [exactMantissa = '', exactExponentText = '0'] = exact.split('e');
  const exactDigits = exactMantissa.replace('.', '');
  const tail = exactDigits.slice(precision);
  const lastKept = Number(exactDigits[precision - 1]);
  if (/^50*$/.test(tail) && lastKept % 2 === 0) {
    return { digits: exactDigits.slice(0, precision), exponent: Number(exactExponentText) };
  }
  return { digits: mantissa.replace('.', ''), exponent: Number(exponentText) };
}

function stripZeros(text: string): string {
  return text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text;
}

/** Go's `fmt.Sprintf("%.4g", v)`: four significant digits, no trailing zeros, exponent form outside 1e-4..1e4. */
export function formatSignificant(value: number, precision = 4): string {
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return value > 0 ? '+Inf' : '-Inf';
  if (value === 0) return '0';
  const sign = value < 0 ? '-' : '';
  const { digits, exponent } = significantDigits(Math.abs(value), precision);
  if (exponent < -4 || exponent >= precision) {
    const mantissa = stripZeros(`${digits[0]}.${digits.slice(1)}`);
    return `${sign}${mantissa}e${exponent < 0 ? '-' : '+'}${String(Math.abs(exponent)).padStart(2, '0')}`;
  }
  const fixed =
    exponent >= 0
      ? `${digits.slice(0, exponent + 1)}.${digits.slice(exponent + 1)}`
      : `0.${'0'.repeat(-exponent - 1)}${digits}`;
  return `${sign}${stripZeros(fixed)}`;
}

const LARGE_PREFIXES = ['k', 'M', 'G', 'T', 'P', 'E', 'Z', 'Y'];
const SMALL_PREFIXES = ['m', 'u', 'n', 'p', 'f', 'a', 'z', 'y'];

/** Prometheus `humanize`: SI prefixes, four significant digits (1234 → 1.234k, 0.05 → 50m). */
export function humanize(value: number): string {
  if (value === 0 || !Number.isFinite(value)) return formatSignificant(value);
  let scaled = value;
  let prefix = '';
  if (Math.abs(scaled) >= 1) {
    for (const candidate of LARGE_PREFIXES) {
      if (Math.abs(scaled) < 1000) break;
      prefix = candidate;
      scaled /= 1000;
    }
    return `${formatSignificant(scaled)}${prefix}`;
  }
  for (const candidate of SMALL_PREFIXES) {
    if (Math.abs(scaled) >= 1) break;
    prefix = candidate;
    scaled *= 1000;
  }
  return `${formatSignificant(scaled)}${prefix}`;
}

/** Prometheus `humanizeDuration`: 90 → 1m 30s, 0.25 → 250ms, 3.5 → 3.5s. */
export function humanizeDuration(value: number): string {
  if (!Number.isFinite(value)) return formatSignificant(value);
  if (value === 0) return '0s';
  if (Math.abs(value) >= 1) {
    const sign = value < 0 ? '-' : '';
    const positive = Math.abs(value);
    const whole = Math.trunc(positive);
    const seconds = whole % 60;
    const minutes = Math.trunc(whole / 60) % 60;
    const hours = Math.trunc(whole / 3600) % 24;
    const days = Math.trunc(whole / 86400);
    if (days !== 0) return `${sign}${days}d ${hours}h ${minutes}m ${seconds}s`;
    if (hours !== 0) return `${sign}${hours}h ${minutes}m ${seconds}s`;
    if (minutes !== 0) return `${sign}${minutes}m ${seconds}s`;
    return `${sign}${formatSignificant(positive)}s`;
  }
  let scaled = value;
  let prefix = '';
  for (const candidate of SMALL_PREFIXES) {
    if (Math.abs(scaled) >= 1) break;
    prefix = candidate;
    scaled *= 1000;
  }
  return `${formatSignificant(scaled)}${prefix}s`;
}

/** Prometheus `humanizePercentage`: 0.1234 → 12.34%. */
export function humanizePercentage(value: number): string {
  return `${formatSignificant(value * 100)}%`;
}

const FUNCTIONS: Record<string, (value: number) => string> = {
  humanize,
  humanizeDuration,
  humanizePercentage,
};

const NO_VALUE = '<no value>';

/** Go's default formatting of a float64 (`{{ $value }}`): shortest representation, exponent past 1e21. */
function formatPlain(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return value > 0 ? '+Inf' : '-Inf';
  const exponent = value === 0 ? 0 : Math.floor(Math.log10(Math.abs(value)));
  if (exponent < -4 || exponent >= 21) {
    const [mantissa = '', exponentText = '0'] = value.toExponential().split('e');
    const sign = exponentText.startsWith('-') ? '-' : '+';
    return `${mantissa}e${sign}${exponentText.replace(/^[-+]/, '').padStart(2, '0')}`;
  }
  return String(value);
}

/** Renders a description template for one alert instance. Unknown constructs are an error at render time. */
export function renderTemplate(template: string, labels: Readonly<Record<string, string>>, value: number): string {
  const withConditionals = template.replace(
    /\{\{-?\s*if\s+\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)\s*-?\}\}([\s\S]*?)\{\{-?\s*end\s*-?\}\}/g,
    (_, name: string, body: string) => {
      const [then = '', otherwise = ''] = body.split(/\{\{-?\s*else\s*-?\}\}/);
      return labels[name] ? then : otherwise;
    },
  );
  return withConditionals.replace(/\{\{\s*([^}]*?)\s*\}\}/g, (whole, expression: string) => {
    const label = /^\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)$/.exec(expression);
    if (label) return labels[label[1]!] ?? NO_VALUE;
    if (expression === '$value') return formatPlain(value);
    const piped = /^\$value\s*\|\s*([a-zA-Z]+)$/.exec(expression);
    const fn = piped ? FUNCTIONS[piped[1]!] : undefined;
    if (fn) return fn(value);
    throw new Error(`unsupported template expression ${whole}`);
  });
}
