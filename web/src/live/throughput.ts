/**
 * Received instances and bytes over the last minutes, in 10-second buckets, for the
 * dashboard's chart: instances per minute and MB/s. Fed with the transaction log's C-STORE
 * rows (their time and size), or, when the transaction log is off, with the movement of the
 * status totals (files and bytes received) between two status events.
 */

/** Width of a bucket. */
export const BUCKET_SECONDS = 10;
/** How far back the chart looks. */
export const WINDOW_SECONDS = 15 * 60;

interface Bucket {
  instances: number;
  bytes: number;
}

/** The chart's data: times (s), instances per minute, MB/s (10⁶ bytes). */
export type ThroughputSeries = [number[], number[], number[]];

export class Throughput {
  readonly #buckets = new Map<number, Bucket>();

  /** One received instance. */
  addInstance(atMs: number, bytes: number): void {
    this.#add(atMs, 1, bytes);
  }

  /** Instances and bytes that arrived since the previous status (attributed to `atMs`). */
  addTotals(atMs: number, instances: number, bytes: number): void {
    if (instances > 0 || bytes > 0) this.#add(atMs, instances, bytes);
  }

  /** The buckets of the window ending now, oldest first (empty ones as zero). */
  series(nowMs: number): ThroughputSeries {
    const last = Math.floor(nowMs / 1000 / BUCKET_SECONDS) * BUCKET_SECONDS;
    const first = last - WINDOW_SECONDS + BUCKET_SECONDS;
    for (const key of this.#buckets.keys()) if (key < first) this.#buckets.delete(key);
    const times: number[] = [];
    const perMinute: number[] = [];
    const megabytesPerSecond: number[] = [];
    for (let start = first; start <= last; start += BUCKET_SECONDS) {
      const bucket = this.#buckets.get(start);
      // A bucket is plotted at its end; the current one is still filling.
      times.push(start + BUCKET_SECONDS);
      perMinute.push(((bucket?.instances ?? 0) * 60) / BUCKET_SECONDS);
      megabytesPerSecond.push((bucket?.bytes ?? 0) / 1_000_000 / BUCKET_SECONDS);
    }
    return [times, perMinute, megabytesPerSecond];
  }

  #add(atMs: number, instances: number, bytes: number): void {
    const key = Math.floor(atMs / 1000 / BUCKET_SECONDS) * BUCKET_SECONDS;
    const bucket = this.#buckets.get(key) ?? { instances: 0, bytes: 0 };
    bucket.instances += instances;
    bucket.bytes += bytes;
    this.#buckets.set(key, bucket);
  }
}
