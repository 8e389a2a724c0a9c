/**
 * The service's Prometheus metrics (prom-client), in a registry of their own, so that tests
 * and several servers in one process never share counters. Counters and histograms are fed
 * from what the server already emits: each association's establishment and end, each served
 * operation's record, each hand-off attempt's job event. Gauges read from disk or the index
 * (storage used, limit and free, index size, hand-off jobs waiting and the oldest one's age,
 * series awaiting completion) are collected at scrape time, each cheaply: the store's
 * incremental usage, one statfs, file sizes or a catalogue query, an indexed count.
 *
 * The per-transfer figures (bytes received, receive and C-FIND latency) are recorded only while
 * `enable_performance_metrics` is on, read as each operation ends. Labels stay few-valued: the
 * operation (C-STORE ...), the status as 0xHHHH with its category, the reject reason by its
 * PS3.8 name (Table 9-21), the hand-off job kind; never a UID or an AE title.
 *
 * Layer: server.
 */

import { statfs } from 'node:fs/promises';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { OpenDatabase } from '../db/dialect.js';
import { type HandoffJob, JOB_KINDS } from '../db/repositories/handoff-repository.js';
import { MetricsRepository } from '../db/repositories/metrics-repository.js';
import type { Association, CloseSummary } from '../network/association/association.js';
import { describeRejection } from '../network/association/reasons.js';
import type { OperationRecord } from '../network/dimse/channel.js';
import { CommandField, commandName } from '../network/dimse/command.js';
import { formatStatus, statusCategory } from '../network/dimse/status.js';
import type { Settings } from '../settings/schema.js';
import type { ServerEvents } from './events.js';

/** Every metric's name starts with this. */
export const METRICS_PREFIX = 'dicom_server_';

/** Latency buckets (seconds): from a small instance on loopback to a large one on a slow link. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** How an association ended, other than released or rejected, as the aborted counter says. */
const ABORT_SOURCES = {
  'aborted-by-peer': 'peer',
  'aborted-locally': 'local',
  'connection-lost': 'connection-lost',
} as const;

/** The outcomes of a hand-off attempt: delivered, failed (retried later), dead (no more tries). */
const DELIVERY_OUTCOMES = { done: 'delivered', failed: 'failed', dead: 'dead' } as const;

/** Why a connection was closed before an association: too many pending, or TLS refused it. */
export type ConnectionRefusal = 'too-many-pending' | 'tls';

/** The service while it runs, as the gauges read it. */
export interface RunningService {
  readonly storageRoot: string;
  /** The store's usage, tracked incrementally, and its limit (0: none). */
  readonly store: { readonly usedBytes: number; readonly limitBytes: number };
  /** Series being received, waiting for their completion. */
  readonly receivingSeries: () => number;
}

/** What the metrics work with. */
export interface ServiceMetricsOptions {
  readonly database: OpenDatabase;
  /** The live settings: `enable_performance_metrics` is read as each operation ends. */
  readonly settings: () => Settings;
  readonly logger: Logger;
  /** The hand-off's job events (attempts' outcomes); without them deliveries are not counted. */
  readonly events?: ServerEvents;
}

/** The metrics of one server, and its registry. */
export class ServiceMetrics {
  readonly registry = new Registry();
  readonly #options: ServiceMetricsOptions;
  readonly #logger: Logger;
  readonly #repository: MetricsRepository;
  #running: RunningService | undefined;

  readonly #associationsActive: Gauge;
  readonly #associationsAccepted: Counter;
  readonly #associationsReleased: Counter;
  readonly #associationsRejected: Counter<'reason'>;
  readonly #associationsAborted: Counter<'source'>;
  readonly #connectionsRefused: Counter<'reason'>;
  readonly #operations: Counter<'operation' | 'status' | 'category'>;
  readonly #instancesReceived: Counter;
  readonly #bytesReceived: Counter;
  readonly #receiveSeconds: Histogram;
  readonly #findSeconds: Histogram;
  readonly #deliveries: Counter<'kind' | 'outcome'>;

  constructor(options: ServiceMetricsOptions) {
    this.#options = options;
    this.#logger = options.logger.child({ component: 'metrics' });
    this.#repository = new MetricsRepository(options.database);
    const registers = [this.registry];
    this.#associationsActive = new Gauge({
      name: `${METRICS_PREFIX}associations_active`,
      help: 'Associations established and not yet ended',
      registers,
    });
    this.#associationsAccepted = new Counter({
      name: `${METRICS_PREFIX}associations_accepted_total`,
      help: 'Associations accepted (A-ASSOCIATE-AC sent)',
      registers,
    });
    this.#associationsReleased = new Counter({
      name: `${METRICS_PREFIX}associations_released_total`,
      help: 'Associations ended by an orderly release',
      registers,
    });
    this.#associationsRejected = new Counter({
      name: `${METRICS_PREFIX}associations_rejected_total`,
      help: 'Associations rejected (A-ASSOCIATE-RJ sent), by reason (PS3.8 Table 9-21)',
      labelNames: ['reason'],
      registers,
    });
    this.#connectionsRefused = new Counter({
      name: `${METRICS_PREFIX}connections_refused_total`,
      help: 'Connections closed before any association: too many awaiting their request, or a TLS handshake or client certificate refused',
      labelNames: ['reason'],
      registers,
    });
    this.#associationsAborted = new Counter({
      name: `${METRICS_PREFIX}associations_aborted_total`,
      help: 'Associations that ended without a release, by source: an A-ABORT from the peer, one from us (timeout, protocol error, administrator, shutdown), or the connection lost',
      labelNames: ['source'],
      registers,
    });
    this.#operations = new Counter({
      name: `${METRICS_PREFIX}dimse_operations_total`,
      help: 'DIMSE operations served, by operation, final status (0xHHHH) and its category',
      labelNames: ['operation', 'status', 'category'],
      registers,
    });
    this.#instancesReceived = new Counter({
      name: `${METRICS_PREFIX}instances_received_total`,
      help: 'Instances received (C-STORE answered with success or a warning)',
      registers,
    });
    this.#bytesReceived = new Counter({
      name: `${METRICS_PREFIX}instances_received_bytes_total`,
      help: 'Bytes of the instances received, as stored (with enable_performance_metrics)',
      registers,
    });
    this.#receiveSeconds = new Histogram({
      name: `${METRICS_PREFIX}receive_duration_seconds`,
      help: 'Time from a C-STORE request to its response, per instance received (with enable_performance_metrics)',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#findSeconds = new Histogram({
      name: `${METRICS_PREFIX}find_duration_seconds`,
      help: 'Time from a C-FIND request to its final response (with enable_performance_metrics)',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#deliveries = new Counter({
      name: `${METRICS_PREFIX}handoff_deliveries_total`,
      help: 'Hand-off delivery attempts (folder copy, webhook, command), by kind and outcome: delivered, failed (retried later), dead (attempts exhausted)',
      labelNames: ['kind', 'outcome'],
      registers,
    });
    for (const source of Object.values(ABORT_SOURCES)) this.#associationsAborted.inc({ source }, 0);
    for (const kind of JOB_KINDS.filter((k) => k !== 'queue')) {
      for (const outcome of Object.values(DELIVERY_OUTCOMES)) {
        this.#deliveries.inc({ kind, outcome }, 0);
      }
    }
    this.#registerCollectedGauges();
    options.events?.on('handoff', (job) => this.#handoffChanged(job));
  }

  /** The content type of `scrape`'s text (Prometheus text format 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Every metric in the Prometheus text format, the gauges collected now. */
  scrape(): Promise<string> {
    return this.registry.metrics();
  }

  /** The service started: its storage and series completion are read at each scrape. */
  serviceStarted(running: RunningService): void {
    this.#running = running;
  }

  /** The service stopped: the gauges of a running service have no value until it starts. */
  serviceStopped(): void {
    this.#running = undefined;
  }

  /** Follows an association from its connection to its end (the acceptor's new association). */
  followAssociation(association: Association): void {
    let isEstablished = false;
    association.once('established', () => {
      isEstablished = true;
      this.#associationsAccepted.inc();
      this.#associationsActive.inc();
    });
    association.once('closed', (summary) => {
      if (isEstablished) this.#associationsActive.dec();
      this.#associationEnded(summary);
    });
  }

  /** Counts a connection closed before any association could be requested on it. */
  connectionRefused(reason: ConnectionRefusal): void {
    this.#connectionsRefused.inc({ reason });
  }

  /** Counts one served operation (the channel's record). */
  operationServed(record: OperationRecord): void {
    const status = record.response.status ?? 0;
    const category = record.error !== undefined ? 'failure' : statusCategory(status);
    this.#operations.inc({
      operation: operationName(record.command.commandField),
      status: formatStatus(status),
      category,
    });
    const isPerformance = this.#options.settings().enable_performance_metrics;
    const seconds = record.durationMs / 1000;
    if (record.command.commandField === CommandField.CStoreRq && category !== 'failure') {
      this.#instancesReceived.inc();
      if (isPerformance) {
        const size = record.note?.fileSize;
        this.#bytesReceived.inc(typeof size === 'number' ? size : record.datasetBytes);
        this.#receiveSeconds.observe(seconds);
      }
    } else if (record.command.commandField === CommandField.CFindRq && isPerformance) {
      this.#findSeconds.observe(seconds);
    }
  }

  #associationEnded(summary: CloseSummary): void {
    switch (summary.outcome) {
      case 'released':
        this.#associationsReleased.inc();
        return;
      case 'rejected': {
        const { result, source, reason } = summary.rejection!;
        this.#associationsRejected.inc({ reason: rejectReasonName(result, source, reason) });
        return;
      }
      case 'aborted-by-peer':
      case 'aborted-locally':
      case 'connection-lost':
        this.#associationsAborted.inc({ source: ABORT_SOURCES[summary.outcome] });
        return;
      case 'never-associated':
        return;
      default: {
        const unreachable: never = summary.outcome;
        throw new Error(`unknown outcome ${String(unreachable)}`);
      }
    }
  }

  /** A job event: an attempt's outcome (done, failed, dead) of a delivery is counted. */
  #handoffChanged(job: HandoffJob): void {
    if (job.kind === 'queue') return;
    const state = job.state;
    if (state !== 'done' && state !== 'failed' && state !== 'dead') return;
    this.#deliveries.inc({ kind: job.kind, outcome: DELIVERY_OUTCOMES[state] });
  }

  /**
   * A gauge's collect that logs its failure and leaves the gauge without a value (`clear`): the
   * scrape answers with everything else, and this gauge with no value rather than a stale one.
   */
  #guarded(what: string, clear: () => void, collect: () => Promise<void>): () => Promise<void> {
    return async () => {
      try {
        await collect();
      } catch (error) {
        this.#logger.error({ err: error, metric: what }, 'metric not collected');
        clear();
      }
    };
  }

  /** Sets a gauge of the running service, or leaves it without a value while stopped. */
  #setWhileRunning(gauge: Gauge, read: (running: RunningService) => number): void {
    const running = this.#running;
    if (running === undefined) gauge.remove();
    else gauge.set(read(running));
  }

  /** The gauges read at scrape time. */
  #registerCollectedGauges(): void {
    this.#registerServiceGauges();
    const index: Gauge = new Gauge({
      name: `${METRICS_PREFIX}index_size_bytes`,
      help: 'Size of the index: SQLite database file and write-ahead log, or the PostgreSQL tables of our schema',
      registers: [this.registry],
      collect: this.#guarded(
        'index_size_bytes',
        () => index.remove(),
        async () => index.set(await this.#repository.sizeBytes()),
      ),
    });
    this.#registerHandoffGauges();
  }

  /** Whether the service runs, its storage, and the series it is receiving. */
  #registerServiceGauges(): void {
    const registers = [this.registry];
    const service: Gauge = new Gauge({
      name: `${METRICS_PREFIX}service_running`,
      help: 'Whether the DICOM service is running (1) or not (0); the storage and series gauges have values only while it runs',
      registers,
      collect: () => service.set(this.#running === undefined ? 0 : 1),
    });
    const used: Gauge = new Gauge({
      name: `${METRICS_PREFIX}storage_used_bytes`,
      help: 'Bytes of the stored instances (tracked as they are written and removed)',
      registers,
      collect: () => this.#setWhileRunning(used, (running) => running.store.usedBytes),
    });
    const limit: Gauge = new Gauge({
      name: `${METRICS_PREFIX}storage_limit_bytes`,
      help: 'The storage limit (max_storage_size_gb) in bytes; 0: none',
      registers,
      collect: () => this.#setWhileRunning(limit, (running) => running.store.limitBytes),
    });
    const free: Gauge = new Gauge({
      name: `${METRICS_PREFIX}storage_free_bytes`,
      help: 'Bytes free for us on the file system of the storage path',
      registers,
      collect: this.#guarded(
        'storage_free_bytes',
        () => free.remove(),
        async () => {
          const running = this.#running;
          if (running === undefined) return void free.remove();
          const info = await statfs(running.storageRoot);
          free.set(info.bavail * info.bsize);
        },
      ),
    });
    const series: Gauge = new Gauge({
      name: `${METRICS_PREFIX}series_awaiting_completion`,
      help: 'Series being received, waiting for their completion (quiet period or release)',
      registers,
      collect: () => this.#setWhileRunning(series, (running) => running.receivingSeries()),
    });
  }

  /** Hand-off jobs waiting and the oldest one's age, by kind (one indexed query each). */
  #registerHandoffGauges(): void {
    const registers = [this.registry];
    const byKind = async (value: (count: number, oldestCreatedAt: string) => number) => {
      const waiting = await this.#repository.waitingHandoffJobs();
      return new Map(waiting.map((w) => [w.kind, value(w.count, w.oldestCreatedAt)]));
    };
    const depth: Gauge<'kind'> = new Gauge({
      name: `${METRICS_PREFIX}handoff_queue_depth`,
      help: 'Hand-off jobs waiting, by kind: queue items not yet claimed downstream, deliveries not yet run or to be retried',
      labelNames: ['kind'],
      registers,
      collect: this.#guarded(
        'handoff_queue_depth',
        () => depth.reset(),
        async () => {
          const counts = await byKind((count) => count);
          for (const kind of JOB_KINDS) depth.set({ kind }, counts.get(kind) ?? 0);
        },
      ),
    });
    const age: Gauge<'kind'> = new Gauge({
      name: `${METRICS_PREFIX}handoff_oldest_pending_age_seconds`,
      help: 'Age of the oldest hand-off job waiting, by kind (since it was written); 0 when none waits',
      labelNames: ['kind'],
      registers,
      collect: this.#guarded(
        'handoff_oldest_pending_age_seconds',
        () => age.reset(),
        async () => {
          const now = Date.now();
          const ages = await byKind((_, oldest) => Math.max(0, (now - Date.parse(oldest)) / 1000));
          for (const kind of JOB_KINDS) age.set({ kind }, ages.get(kind) ?? 0);
        },
      ),
    });
  }
}

/** An operation's name without the -RQ suffix (C-STORE); requests we do not know as "other". */
function operationName(commandField: number): string {
  const name = commandName(commandField);
  return /^[CN]-[A-Z-]+-RQ$/.test(name) ? name.slice(0, -3) : 'other';
}

/** A rejection's reason by its PS3.8 name (Table 9-21), e.g. called-AE-title-not-recognized. */
function rejectReasonName(result: number, source: number, reason: number): string {
  const described = describeRejection(result, source, reason);
  return described.slice(described.lastIndexOf(': ') + 2);
}
