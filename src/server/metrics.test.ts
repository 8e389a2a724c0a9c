import { EventEmitter } from 'node:events';
import { mkdtemp, rm, stat, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MetricSamples } from '../../test/helpers/metrics-text.js';
import { type OpenDatabase, openDatabase } from '../db/dialect.js';
import type { HandoffJob, JobKind, JobState } from '../db/repositories/handoff-repository.js';
import type { Association, CloseSummary } from '../network/association/association.js';
import type { OperationNote, OperationRecord } from '../network/dimse/channel.js';
import { CommandField } from '../network/dimse/command.js';
import { Status } from '../network/dimse/status.js';
import { RejectReason, RejectResult, RejectSource } from '../network/pdu/types.js';
import { DEFAULT_SETTINGS, type Settings } from '../settings/schema.js';
import { ServerEvents } from './events.js';
import { ServiceMetrics } from './metrics.js';

let dataDir: string;
let database: OpenDatabase;
let settings: Settings;
let events: ServerEvents;
let metrics: ServiceMetrics;

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'metrics-test-'));
  database = await openDatabase({ dataDir });
  settings = { ...DEFAULT_SETTINGS };
  events = new ServerEvents();
  metrics = new ServiceMetrics({
    database,
    settings: () => settings,
    logger: pino({ level: 'silent' }),
    events,
  });
});

afterEach(async () => {
  await database.close();
  await rm(dataDir, { recursive: true, force: true });
});

const scrape = async () => new MetricSamples(await metrics.scrape());

/** An association as the acceptor announces it: only its events matter here. */
function newAssociation(): { association: Association; emitter: EventEmitter } {
  const emitter = new EventEmitter();
  metrics.followAssociation(emitter as unknown as Association);
  return { association: emitter as unknown as Association, emitter };
}

function closed(outcome: CloseSummary['outcome'], extra: Partial<CloseSummary> = {}) {
  return { outcome, isInternalError: false, durationMs: 5, bytesIn: 0, bytesOut: 0, ...extra };
}

function operation(
  commandField: number,
  status: number,
  fields: { note?: OperationNote; durationMs?: number; datasetBytes?: number; error?: Error } = {},
): OperationRecord {
  return {
    command: { commandField, messageId: 1, hasDataset: commandField === CommandField.CStoreRq },
    context: {
      id: 1,
      abstractSyntax: '1.2.840.10008.5.1.4.1.1.2',
      transferSyntax: '1.2.840.10008.1.2.1',
      requestorIsScu: true,
      requestorIsScp: false,
    },
    response: { commandField: commandField | 0x8000, hasDataset: false, status },
    durationMs: fields.durationMs ?? 20,
    datasetBytes: fields.datasetBytes ?? 0,
    ...(fields.note !== undefined && { note: fields.note }),
    ...(fields.error !== undefined && { error: fields.error }),
  };
}

function job(kind: JobKind, state: JobState): HandoffJob {
  const now = new Date().toISOString();
  return {
    id: 1,
    eventId: 1,
    seriesInstanceUid: '1.2.3',
    completion: 1,
    kind,
    target: kind === 'webhook' ? 'http://127.0.0.1:9/hook' : '',
    state,
    attempts: 1,
    nextAttemptAt: null,
    lastError: null,
    claimedBy: null,
    claimedAt: null,
    result: null,
    createdAt: now,
    updatedAt: now,
  };
}

describe('association metrics', () => {
  it('counts an accepted association as active until it is released', async () => {
    const { emitter } = newAssociation();
    emitter.emit('established');
    let samples = await scrape();
    expect(samples.get('dicom_server_associations_accepted_total')).toBe(1);
    expect(samples.get('dicom_server_associations_active')).toBe(1);
    emitter.emit('closed', closed('released'));
    samples = await scrape();
    expect(samples.get('dicom_server_associations_active')).toBe(0);
    expect(samples.get('dicom_server_associations_released_total')).toBe(1);
    expect(samples.get('dicom_server_associations_accepted_total')).toBe(1);
  });

  it('counts a rejection by its PS3.8 reason, never as accepted or active', async () => {
    const reject = (reason: number, source: RejectSource = RejectSource.ServiceUser) => {
      const { emitter } = newAssociation();
      emitter.emit(
        'closed',
        closed('rejected', {
          rejection: {
            type: 'AAssociateRj',
            result: RejectResult.RejectedPermanent,
            source,
            reason,
          },
        }),
      );
    };
    reject(RejectReason.CalledAeTitleNotRecognized);
    reject(RejectReason.CalledAeTitleNotRecognized);
    reject(RejectReason.CallingAeTitleNotRecognized);
    reject(RejectReason.LocalLimitExceeded, RejectSource.ServiceProviderPresentation);
    const samples = await scrape();
    const rejected = 'dicom_server_associations_rejected_total';
    expect(samples.samplesOf(rejected)).toEqual({
      [`${rejected}{reason="called-AE-title-not-recognized"}`]: 2,
      [`${rejected}{reason="calling-AE-title-not-recognized"}`]: 1,
      [`${rejected}{reason="local-limit-exceeded"}`]: 1,
    });
    expect(samples.get('dicom_server_associations_accepted_total')).toBe(0);
    expect(samples.get('dicom_server_associations_active')).toBe(0);
  });

  it('counts aborts by their source and ignores connections that never asked', async () => {
    for (const outcome of ['aborted-by-peer', 'aborted-by-peer', 'aborted-locally'] as const) {
      const { emitter } = newAssociation();
      emitter.emit('established');
      emitter.emit('closed', closed(outcome));
    }
    const lost = newAssociation().emitter;
    lost.emit('established');
    lost.emit('closed', closed('connection-lost'));
    newAssociation().emitter.emit('closed', closed('never-associated'));
    const samples = await scrape();
    const aborted = 'dicom_server_associations_aborted_total';
    expect(samples.samplesOf(aborted)).toEqual({
      [`${aborted}{source="peer"}`]: 2,
      [`${aborted}{source="local"}`]: 1,
      [`${aborted}{source="connection-lost"}`]: 1,
    });
    expect(samples.get('dicom_server_associations_accepted_total')).toBe(4);
    expect(samples.get('dicom_server_associations_active')).toBe(0);
    expect(samples.get('dicom_server_associations_released_total')).toBe(0);
    expect(samples.samplesOf('dicom_server_associations_rejected_total')).toEqual({});
  });

  it('counts connections closed before any association, by why', async () => {
    metrics.connectionRefused('tls');
    metrics.connectionRefused('tls');
    metrics.connectionRefused('too-many-pending');
    const samples = await scrape();
    const refused = 'dicom_server_connections_refused_total';
    expect(samples.samplesOf(refused)).toEqual({
      [`${refused}{reason="tls"}`]: 2,
      [`${refused}{reason="too-many-pending"}`]: 1,
    });
    expect(samples.get('dicom_server_associations_accepted_total')).toBe(0);
  });
});

describe('operation metrics', () => {
  it('counts each operation by name, final status and its category', async () => {
    metrics.operationServed(operation(CommandField.CEchoRq, Status.Success));
    metrics.operationServed(operation(CommandField.CEchoRq, Status.Success));
    metrics.operationServed(operation(CommandField.CFindRq, Status.OutOfResourcesMatches));
    metrics.operationServed(operation(CommandField.CMoveRq, Status.Warning));
    // Our handler threw: a processing failure whatever the status code says.
    metrics.operationServed(
      operation(CommandField.CGetRq, Status.Success, { error: new Error('bug') }),
    );
    const samples = await scrape();
    const operations = 'dicom_server_dimse_operations_total';
    expect(samples.samplesOf(operations)).toEqual({
      [`${operations}{category="success",operation="C-ECHO",status="0x0000"}`]: 2,
      [`${operations}{category="failure",operation="C-FIND",status="0xA701"}`]: 1,
      [`${operations}{category="warning",operation="C-MOVE",status="0xB000"}`]: 1,
      [`${operations}{category="failure",operation="C-GET",status="0x0000"}`]: 1,
    });
  });

  it('counts received instances with their stored bytes and receive time', async () => {
    metrics.operationServed(
      operation(CommandField.CStoreRq, Status.Success, {
        note: { filePath: 'a.dcm', fileSize: 1_500 },
        datasetBytes: 1_300,
        durationMs: 30,
      }),
    );
    // A duplicate kept: stored earlier, so the data set's bytes.
    metrics.operationServed(
      operation(CommandField.CStoreRq, Status.Success, {
        note: { outcome: 'duplicate kept' },
        datasetBytes: 700,
        durationMs: 2_000,
      }),
    );
    // Refused: neither an instance nor a receive time.
    metrics.operationServed(
      operation(CommandField.CStoreRq, Status.OutOfResources, { datasetBytes: 900 }),
    );
    const samples = await scrape();
    expect(samples.get('dicom_server_instances_received_total')).toBe(2);
    expect(samples.get('dicom_server_instances_received_bytes_total')).toBe(2_200);
    expect(samples.get('dicom_server_receive_duration_seconds_count')).toBe(2);
    expect(samples.get('dicom_server_receive_duration_seconds_sum')).toBeCloseTo(2.03, 6);
    expect(samples.get('dicom_server_receive_duration_seconds_bucket', { le: '0.05' })).toBe(1);
    expect(samples.get('dicom_server_receive_duration_seconds_bucket', { le: '2.5' })).toBe(2);
    expect(samples.get('dicom_server_find_duration_seconds_count')).toBe(0);
  });

  it('records the C-FIND latency of each query', async () => {
    metrics.operationServed(operation(CommandField.CFindRq, Status.Success, { durationMs: 8 }));
    metrics.operationServed(operation(CommandField.CFindRq, Status.Cancel, { durationMs: 400 }));
    const samples = await scrape();
    expect(samples.get('dicom_server_find_duration_seconds_count')).toBe(2);
    expect(samples.get('dicom_server_find_duration_seconds_bucket', { le: '0.01' })).toBe(1);
    expect(samples.get('dicom_server_find_duration_seconds_bucket', { le: '0.5' })).toBe(2);
    expect(samples.get('dicom_server_receive_duration_seconds_count')).toBe(0);
  });

  it('records no per-transfer figures with enable_performance_metrics off, and counts all the same', async () => {
    settings = { ...settings, enable_performance_metrics: false };
    metrics.operationServed(
      operation(CommandField.CStoreRq, Status.Success, { note: { fileSize: 1_000 } }),
    );
    metrics.operationServed(operation(CommandField.CFindRq, Status.Success));
    let samples = await scrape();
    expect(samples.get('dicom_server_instances_received_total')).toBe(1);
    expect(samples.get('dicom_server_instances_received_bytes_total')).toBe(0);
    expect(samples.get('dicom_server_receive_duration_seconds_count')).toBe(0);
    expect(samples.get('dicom_server_find_duration_seconds_count')).toBe(0);
    expect(
      samples.count('dicom_server_dimse_operations_total', {
        operation: 'C-FIND',
        status: '0x0000',
        category: 'success',
      }),
    ).toBe(1);
    // Switched on again (a live setting): the next transfer is recorded.
    settings = { ...settings, enable_performance_metrics: true };
    metrics.operationServed(
      operation(CommandField.CStoreRq, Status.Success, { note: { fileSize: 1_000 } }),
    );
    samples = await scrape();
    expect(samples.get('dicom_server_instances_received_total')).toBe(2);
    expect(samples.get('dicom_server_instances_received_bytes_total')).toBe(1_000);
    expect(samples.get('dicom_server_receive_duration_seconds_count')).toBe(1);
  });
});

describe('hand-off delivery metrics', () => {
  it('counts each attempt of a delivery by kind and outcome, from the job events', async () => {
    events.emit('handoff', job('webhook', 'done'));
    events.emit('handoff', job('webhook', 'failed'));
    events.emit('handoff', job('webhook', 'failed'));
    events.emit('handoff', job('webhook', 'dead'));
    events.emit('handoff', job('copy', 'done'));
    events.emit('handoff', job('command', 'failed'));
    // Not attempts: an operator's retry (pending again), queue items claimed or finished.
    events.emit('handoff', job('webhook', 'pending'));
    events.emit('handoff', job('queue', 'processing'));
    events.emit('handoff', job('queue', 'done'));
    const samples = await scrape();
    const deliveries = 'dicom_server_handoff_deliveries_total';
    expect(samples.samplesOf(deliveries)).toEqual({
      [`${deliveries}{kind="copy",outcome="delivered"}`]: 1,
      [`${deliveries}{kind="copy",outcome="failed"}`]: 0,
      [`${deliveries}{kind="copy",outcome="dead"}`]: 0,
      [`${deliveries}{kind="webhook",outcome="delivered"}`]: 1,
      [`${deliveries}{kind="webhook",outcome="failed"}`]: 2,
      [`${deliveries}{kind="webhook",outcome="dead"}`]: 1,
      [`${deliveries}{kind="command",outcome="delivered"}`]: 0,
      [`${deliveries}{kind="command",outcome="failed"}`]: 1,
      [`${deliveries}{kind="command",outcome="dead"}`]: 0,
    });
  });
});

describe('gauges collected at scrape time', () => {
  it('give no storage or series figures while the service is stopped', async () => {
    const samples = await scrape();
    expect(samples.get('dicom_server_service_running')).toBe(0);
    for (const name of [
      'dicom_server_storage_used_bytes',
      'dicom_server_storage_limit_bytes',
      'dicom_server_storage_free_bytes',
      'dicom_server_series_awaiting_completion',
    ]) {
      expect(samples.declares(name), name).toBe(true);
      expect(samples.samplesOf(name), name).toEqual({});
    }
  });

  it('read the running store, the storage file system and the series being received', async () => {
    const store = { usedBytes: 12_345, limitBytes: 1_000_000 };
    let receiving = 2;
    metrics.serviceStarted({
      storageRoot: dataDir,
      store,
      receivingSeries: () => receiving,
    });
    let samples = await scrape();
    expect(samples.get('dicom_server_service_running')).toBe(1);
    expect(samples.get('dicom_server_storage_used_bytes')).toBe(12_345);
    expect(samples.get('dicom_server_storage_limit_bytes')).toBe(1_000_000);
    expect(samples.get('dicom_server_series_awaiting_completion')).toBe(2);
    const disk = await statfs(dataDir);
    const free = samples.get('dicom_server_storage_free_bytes')!;
    expect(free).toBeGreaterThan(0);
    expect(free).toBeLessThanOrEqual(disk.blocks * disk.bsize);
    expect(free % disk.bsize).toBe(0);

    store.usedBytes = 20_000;
    receiving = 0;
    samples = await scrape();
    expect(samples.get('dicom_server_storage_used_bytes')).toBe(20_000);
    expect(samples.get('dicom_server_series_awaiting_completion')).toBe(0);

    metrics.serviceStopped();
    samples = await scrape();
    expect(samples.get('dicom_server_service_running')).toBe(0);
    expect(samples.get('dicom_server_storage_used_bytes')).toBeUndefined();
  });

  it('give the index size as the SQLite file and its write-ahead log', async () => {
    const file = database.location;
    const sizeOf = (path: string) =>
      stat(path).then(
        (info) => info.size,
        () => 0,
      );
    const expected = (await sizeOf(file)) + (await sizeOf(`${file}-wal`));
    expect(expected).toBeGreaterThan(0);
    expect((await scrape()).get('dicom_server_index_size_bytes')).toBe(expected);
  });

  it('give every hand-off kind a queue depth and an oldest age, 0 when none waits', async () => {
    const samples = await scrape();
    for (const kind of ['queue', 'copy', 'webhook', 'command']) {
      expect(samples.get('dicom_server_handoff_queue_depth', { kind })).toBe(0);
      expect(samples.get('dicom_server_handoff_oldest_pending_age_seconds', { kind })).toBe(0);
    }
  });

  it('keep the other metrics when a gauge cannot be read, and log why', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino(
      { level: 'error' },
      { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
    );
    const broken = new ServiceMetrics({ database, settings: () => settings, logger });
    broken.serviceStarted({
      storageRoot: join(dataDir, 'gone'),
      store: { usedBytes: 1, limitBytes: 0 },
      receivingSeries: () => 0,
    });
    const samples = new MetricSamples(await broken.scrape());
    expect(samples.get('dicom_server_storage_used_bytes')).toBe(1);
    expect(samples.samplesOf('dicom_server_storage_free_bytes')).toEqual({});
    expect(lines).toMatchObject([
      { msg: 'metric not collected', metric: 'storage_free_bytes', component: 'metrics' },
    ]);
  });

  it('leave the hand-off gauges without values when the index cannot be read', async () => {
    const closedDir = await mkdtemp(join(tmpdir(), 'metrics-test-closed-'));
    const closedDatabase = await openDatabase({ dataDir: closedDir });
    await closedDatabase.close();
    const unreadable = new ServiceMetrics({
      database: closedDatabase,
      settings: () => settings,
      logger: pino({ level: 'silent' }),
    });
    const samples = new MetricSamples(await unreadable.scrape());
    await rm(closedDir, { recursive: true, force: true });
    expect(samples.samplesOf('dicom_server_handoff_queue_depth')).toEqual({});
    expect(samples.samplesOf('dicom_server_handoff_oldest_pending_age_seconds')).toEqual({});
    expect(samples.get('dicom_server_service_running')).toBe(0);
  });

  it('keep each registry to its own server', async () => {
    const other = new ServiceMetrics({
      database,
      settings: () => settings,
      logger: pino({ level: 'silent' }),
    });
    metrics.operationServed(operation(CommandField.CEchoRq, Status.Success));
    const samples = new MetricSamples(await other.scrape());
    expect(samples.samplesOf('dicom_server_dimse_operations_total')).toEqual({});
    expect(metrics.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
  });
});
