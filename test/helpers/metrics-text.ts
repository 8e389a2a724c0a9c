/**
 * Reads the Prometheus text format (what GET /metrics answers) into samples a test can look up
 * by name and labels, and compare between two scrapes.
 *
 * Layer: test helper.
 */

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** One scrape's samples. */
export class MetricSamples {
  readonly text: string;
  readonly #values = new Map<string, number>();

  constructor(text: string) {
    this.text = text;
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const match = SAMPLE.exec(line);
      if (match === null) throw new Error(`not a sample line: ${line}`);
      const labels: Record<string, string> = {};
      for (const [, name, value] of (match[2] ?? '').matchAll(LABEL)) labels[name!] = value!;
      this.#values.set(keyOf(match[1]!, labels), Number(match[3]));
    }
  }

  /** The sample's value; undefined when there is no such sample. */
  get(name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
    return this.#values.get(keyOf(name, labels));
  }

  /** The sample's value, 0 when absent (a labelled counter not yet moved). */
  count(name: string, labels: Readonly<Record<string, string>> = {}): number {
    return this.get(name, labels) ?? 0;
  }

  /** Whether the text declares a metric of that name (with or without samples). */
  declares(name: string): boolean {
    return this.text.includes(`# TYPE ${name} `);
  }

  /** Every sample of a metric, by its label text (`{a="x"}`), for failure messages. */
  samplesOf(name: string): Record<string, number> {
    return Object.fromEntries(
      [...this.#values].filter(([key]) => key === name || key.startsWith(`${name}{`)),
    );
  }
}

function keyOf(name: string, labels: Readonly<Record<string, string>>): string {
  const entries = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) return name;
  return `${name}{${entries.map(([key, value]) => `${key}="${value}"`).join(',')}}`;
}
