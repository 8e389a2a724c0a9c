/**
 * The hand-off of completed series through the whole service (ServiceController, SQLite, real
 * C-STOREs from our SCU): completion after series_completion_seconds and not before, a late
 * instance reopening the series and its second completion a `series.updated`; completion on
 * release (and not without the setting); a restart while a webhook delivery is pending
 * delivering it once afterwards (a new controller on the same data directory), and a delivery
 * interrupted mid-attempt taken back; a webhook receiver down then up getting the event exactly
 * once, signed, with the same idempotency key, every attempt in the transaction log; the
 * processing command run with the handler-folder copy as its argument and the event in its
 * environment; a failing command retried, dead, the series failed, and retried again.
 *
 * Layer: integration test (server). 127.0.0.1, free ports; short completion and retry times;
 * every wait has a deadline.
 */

import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type OpenDatabase, openDatabase } from '../../src/db/dialect.js';
import type { SeriesStateChange } from '../../src/db/repositories/handoff-repository.js';
import { HandoffRepository } from '../../src/db/repositories/handoff-repository.js';
import { ProcessingQueueRepository } from '../../src/db/repositories/processing-queue-repository.js';
import { SeriesStateRepository } from '../../src/db/repositories/series-state-repository.js';
import { SettingsRepository } from '../../src/db/repositories/settings-repository.js';
import { TransactionLogRepository } from '../../src/db/repositories/transaction-log-repository.js';
import { ServerEvents } from '../../src/server/events.js';
import { webhookSignature } from '../../src/server/handoff/webhook.js';
import { HANDOFF_ACTIONS } from '../../src/server/handoff-worker.js';
import { LiveConfig } from '../../src/server/live-config.js';
import {
  ServiceController,
  type ServiceControllerOptions,
} from '../../src/server/service-controller.js';
import type { Settings } from '../../src/settings/schema.js';
import { freePort } from '../helpers/net.js';
import { sendSeries, writeSeries } from '../helpers/series-files.js';
import type { LogLine } from '../helpers/server.js';
import { eventually } from '../helpers/web.js';

const ROOT = '1.2.826.0.1.3680043.9.7777.70';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Setup {
  readonly dataDir: string;
  readonly database: OpenDatabase;
  readonly settings: SettingsRepository;
  readonly config: LiveConfig;
  readonly controller: ServiceController;
  readonly states: SeriesStateRepository;
  readonly jobs: HandoffRepository;
  readonly queue: ProcessingQueueRepository;
  readonly logs: LogLine[];
  /** Every series state change announced, in order. */
  readonly changes: SeriesStateChange[];
  /** Stops the controller and closes the database (the data directory stays). */
  close(): Promise<void>;
}

/**
 * A controller on a data directory (a new one unless given), with the settings stored; the
 * service started. Nothing may be logged at error level.
 */
async function setup(
  stored: Partial<Settings>,
  handoff: ServiceControllerOptions['handoff'] = {},
  reuseDataDir?: string,
): Promise<Setup> {
  let dataDir = reuseDataDir;
  if (dataDir === undefined) {
    const created = await mkdtemp(join(tmpdir(), 'handoff-test-'));
    cleanups.push(() => rm(created, { recursive: true, force: true }));
    dataDir = created;
  }
  const database = await openDatabase({ dataDir });
  const settings = new SettingsRepository(database);
  const result = await settings.update({
    host: '127.0.0.1',
    port: await freePort(),
    durability: 'os',
    ...stored,
  });
  expect(result.isValid, JSON.stringify(result)).toBe(true);
  const logs: LogLine[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (line.trim() !== '') logs.push(JSON.parse(line) as LogLine);
        }
        callback();
      },
    }),
  );
  const config = await LiveConfig.load(settings);
  const events = new ServerEvents();
  const changes: SeriesStateChange[] = [];
  events.on('series', (change) => changes.push(change));
  const controller = new ServiceController({
    database,
    config,
    dataDir,
    logger,
    shutdownGraceMs: 1_000,
    isLogLevelFixed: true,
    events,
    handoff,
  });
  let isClosed = false;
  const close = async () => {
    if (isClosed) return;
    isClosed = true;
    await controller.close();
    await database.close();
    const errors = logs.filter((line) => line.level >= 50);
    if (errors.length > 0) console.error(logs.map((line) => JSON.stringify(line)).join('\n'));
    expect(errors).toEqual([]);
  };
  cleanups.push(close);
  await controller.start();
  return {
    dataDir,
    database,
    settings,
    config,
    controller,
    states: new SeriesStateRepository(database),
    jobs: new HandoffRepository(database),
    queue: new ProcessingQueueRepository(database),
    logs,
    changes,
    close,
  };
}

/** One request a receiver got. */
interface Received {
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  readonly status: number;
}

/** A webhook receiver on `port` (a free one unless given), answering `status()`. */
async function startReceiver(status: () => number, port = 0) {
  const requests: Received[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const code = status();
      requests.push({
        headers: request.headers,
        body: Buffer.concat(chunks).toString(),
        status: code,
      });
      response.writeHead(code, { 'Content-Type': 'text/plain' }).end(code < 300 ? 'ok' : 'down');
    });
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  const bound = (server.address() as { port: number }).port;
  const close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  cleanups.push(close);
  return { requests, url: `http://127.0.0.1:${bound}/hook`, close };
}

/** Writes and sends a series; its files. */
async function send(setup: Setup, series: number, count = 2, first = 1): Promise<string[]> {
  const seriesInstanceUid = `${ROOT}.${series}.1`;
  const files = await writeSeries(join(setup.dataDir, 'outgoing', `${series}-${first}`), {
    studyInstanceUid: `${ROOT}.${series}`,
    seriesInstanceUid,
    count,
    first,
  });
  await sendSeries(setup.controller.port!, files);
  return files;
}

const uidOf = (series: number) => `${ROOT}.${series}.1`;

/** Waits until the series is in `state` (after its `completion`-th completion, if given). */
function seriesIn(setup: Setup, series: number, state: string, completion?: number) {
  return eventually(
    async () => {
      const current = await setup.states.get(uidOf(series));
      if (current?.state !== state) return undefined;
      return completion === undefined || current.completion === completion ? current : undefined;
    },
    `series ${series} ${state}`,
    10_000,
  );
}

/** The jobs of a kind, oldest first. */
async function jobsOf(setup: Setup, kind: 'queue' | 'copy' | 'webhook' | 'command') {
  return (await setup.jobs.page({ kind }, 100)).rows.reverse();
}

describe('series completion', () => {
  it('completes a series once no instance arrived for the completion time, and again as an update after a late one', async () => {
    const s = await setup({ series_completion_seconds: 1, auto_import_to_handler: true });
    await send(s, 1, 2);
    const done = await seriesIn(s, 1, 'handed_off', 1);
    // Not before: the completion came at least the completion time after the newest instance.
    expect(Date.parse(done.completedAt!) - Date.parse(done.lastReceivedAt)).toBeGreaterThanOrEqual(
      1_000,
    );
    expect(s.controller.receivingSeries).toBe(0);

    await send(s, 1, 1, 3);
    const again = await seriesIn(s, 1, 'handed_off', 2);
    expect(
      Date.parse(again.completedAt!) - Date.parse(again.lastReceivedAt),
    ).toBeGreaterThanOrEqual(1_000);
    // Receiving (being sent, then waiting for completion once its association ended), then
    // complete and handed off; reopened by the late instance, then again.
    expect(s.changes.map((change) => [change.state, change.completion, change.isSending])).toEqual([
      ['receiving', 0, true],
      ['receiving', 0, false],
      ['handed_off', 1, undefined],
      ['receiving', 1, true],
      ['receiving', 1, false],
      ['handed_off', 2, undefined],
    ]);
    const items = await jobsOf(s, 'queue');
    expect(items.map((item) => [item.eventType, item.idempotencyKey])).toEqual([
      ['series.completed', `${uidOf(1)}:1`],
      ['series.updated', `${uidOf(1)}:2`],
    ]);
    const [first, second] = await Promise.all(items.map((item) => s.jobs.get(item.id)));
    expect(first?.event.series.files).toHaveLength(2);
    expect(second?.event.series.files.map((file) => file.sopInstanceUid)).toEqual(
      [1, 2, 3].map((n) => `${uidOf(1)}.${n}`),
    );
    expect(second?.event.series).toMatchObject({
      patientId: 'PID-7',
      studyInstanceUid: `${ROOT}.1`,
      modality: 'MR',
      seriesNumber: 5,
    });
  });

  it('completes a series when its association is released, only with the setting on', async () => {
    const s = await setup({
      series_completion_seconds: 3_600,
      complete_series_on_release: false,
      auto_import_to_handler: true,
    });
    await send(s, 2);
    // Its association has ended on our side too (the release is decided then).
    await eventually(
      async () => (s.controller.status().activeAssociations === 0 ? true : undefined),
      'the association closed',
    );
    expect(await s.states.get(uidOf(2))).toMatchObject({ state: 'receiving' });
    expect(s.controller.receivingSeries).toBe(1);
    // Its association ended: it is no longer being sent but waiting for its completion time.
    expect(s.controller.isSeriesSending(uidOf(2))).toBe(false);
    expect(s.changes.filter((change) => change.seriesInstanceUid === uidOf(2)).at(-1)).toEqual({
      seriesInstanceUid: uidOf(2),
      state: 'receiving',
      completion: 0,
      lastError: null,
      isSending: false,
    });

    expect((await s.settings.update({ complete_series_on_release: true })).isValid).toBe(true);
    await s.config.refresh();
    await send(s, 3);
    const done = await seriesIn(s, 3, 'handed_off', 1);
    expect(Date.parse(done.completedAt!) - Date.parse(done.lastReceivedAt)).toBeLessThan(3_600_000);
    // Released before the setting was on: it waits for its timer.
    expect(await s.states.get(uidOf(2))).toMatchObject({ state: 'receiving' });
  });

  it('takes back a series left receiving by a stop, and completes it after the restart', async () => {
    const first = await setup({ series_completion_seconds: 3_600, auto_import_to_handler: true });
    await send(first, 4);
    await first.close();
    const second = await setup(
      { series_completion_seconds: 1, auto_import_to_handler: true },
      {},
      first.dataDir,
    );
    await seriesIn(second, 4, 'handed_off', 1);
    expect(await jobsOf(second, 'queue')).toHaveLength(1);
  });
});

describe('webhook deliveries', () => {
  const chain = (url: string) => ({
    series_completion_seconds: 1,
    complete_series_on_release: true,
    trigger_processing_chain: true,
    webhook_urls: url,
    webhook_secret: 'the-secret',
  });

  it('delivers exactly once to a receiver that was down, then up, signed, with one idempotency key', async () => {
    const port = await freePort();
    const s = await setup(chain(`http://127.0.0.1:${port}/hook`), {
      retry: { baseMs: 200, maxMs: 1_000 },
    });
    await send(s, 10);
    // Down: nothing listens; the first attempt fails and waits for its retry.
    await eventually(async () => {
      const [job] = await jobsOf(s, 'webhook');
      return job !== undefined && job.attempts >= 1 && job.state === 'failed' ? job : undefined;
    }, 'a failed attempt');
    const receiver = await startReceiver(() => 200, port);
    const done = await seriesIn(s, 10, 'handed_off', 1);
    expect(done.lastError).toBeNull();
    expect(receiver.requests).toHaveLength(1);
    const [request] = receiver.requests;
    expect(request!.headers['idempotency-key']).toBe(`${uidOf(10)}:1`);
    expect(request!.headers['x-dicom-server-event']).toBe('series.completed');
    const timestamp = Number(request!.headers['x-dicom-server-timestamp']);
    expect(request!.headers['x-dicom-server-signature']).toBe(
      webhookSignature('the-secret', timestamp, request!.body),
    );
    const body = JSON.parse(request!.body);
    expect(body).toMatchObject({
      type: 'series.completed',
      idempotencyKey: `${uidOf(10)}:1`,
      seriesInstanceUid: uidOf(10),
      studyInstanceUid: `${ROOT}.10`,
      patientId: 'PID-7',
      modality: 'MR',
    });
    const [job] = await jobsOf(s, 'webhook');
    expect(job).toMatchObject({ state: 'done' });
    expect(await s.jobs.nextDueAt()).toBeUndefined();
    // Every attempt is a HANDOFF row: the failures, then one success.
    await s.close();
    const database = await openDatabase({ dataDir: s.dataDir });
    try {
      const log = new TransactionLogRepository(database);
      expect(await log.count({ type: 'HANDOFF', status: 'success' })).toBe(1);
      expect(await log.count({ type: 'HANDOFF', status: 'failure' })).toBe(job!.attempts - 1);
      const { rows } = await log.page({ type: 'HANDOFF' }, 100);
      expect(rows.every((row) => row.series_instance_uid === uidOf(10))).toBe(true);
      expect(rows[0]?.message).toMatch(
        /^webhook http:\/\/127\.0\.0\.1:\d+\/hook attempt \d+ of 8: done/,
      );
    } finally {
      await database.close();
    }
    expect(receiver.requests).toHaveLength(1);
  });

  it('delivers once after a restart a delivery that was pending when the service stopped', async () => {
    let isUp = false;
    const receiver = await startReceiver(() => (isUp ? 200 : 503));
    const first = await setup(chain(receiver.url), { retry: { baseMs: 1_500 } });
    await send(first, 11);
    await eventually(
      async () => ((await jobsOf(first, 'webhook'))[0]?.state === 'failed' ? true : undefined),
      'a failed attempt',
    );
    await first.close();
    isUp = true;
    const second = await setup(chain(receiver.url), { retry: { baseMs: 1_500 } }, first.dataDir);
    await seriesIn(second, 11, 'handed_off', 1);
    const delivered = receiver.requests.filter((request) => request.status === 200);
    expect(delivered).toHaveLength(1);
    expect(new Set(receiver.requests.map((r) => r.headers['idempotency-key']))).toEqual(
      new Set([`${uidOf(11)}:1`]),
    );
  });

  it('takes back a delivery a stopped process left in progress, and delivers it once', async () => {
    const receiver = await startReceiver(() => 200);
    // The first process never finishes its attempt (as if it died during it).
    const first = await setup(chain(receiver.url), {
      actions: { ...HANDOFF_ACTIONS, webhook: () => new Promise(() => undefined) },
    });
    await send(first, 12);
    await eventually(
      async () => ((await jobsOf(first, 'webhook'))[0]?.state === 'in_progress' ? true : undefined),
      'an attempt in progress',
    );
    await first.close();
    const [left] = await (async () => {
      const database = await openDatabase({ dataDir: first.dataDir });
      try {
        return (await new HandoffRepository(database).page({ kind: 'webhook' }, 10)).rows;
      } finally {
        await database.close();
      }
    })();
    expect(left).toMatchObject({ state: 'in_progress', claimedBy: `${hostname()}:${process.pid}` });
    const second = await setup(chain(receiver.url), {}, first.dataDir);
    await seriesIn(second, 12, 'handed_off', 1);
    expect(receiver.requests).toHaveLength(1);
    const [job] = await jobsOf(second, 'webhook');
    expect(job).toMatchObject({ state: 'done', attempts: 2 });
  });
});

describe('the processing command and the handler folder', () => {
  it('runs the command after the copy, with the copied folder as its last argument and the event', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'handoff-command-test-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const script = join(dataDir, 'handler.mjs');
    const output = join(dataDir, 'runs.jsonl');
    await writeFile(
      script,
      [
        "import { appendFileSync } from 'node:fs';",
        'appendFileSync(process.argv[2], `${JSON.stringify({',
        '  args: process.argv.slice(3),',
        '  type: process.env.DICOM_SERVER_EVENT_TYPE,',
        '  event: JSON.parse(process.env.DICOM_SERVER_EVENT),',
        '})}\\n`);',
      ].join('\n'),
    );
    const handler = join(dataDir, 'handler');
    const s = await setup(
      {
        series_completion_seconds: 1,
        complete_series_on_release: true,
        copy_to_handler_folder: true,
        handler_folder_path: handler,
        trigger_processing_chain: true,
        processing_command: `"${process.execPath}" "${script}" "${output}"`,
      },
      {},
      dataDir,
    );
    await send(s, 20, 3);
    await seriesIn(s, 20, 'handed_off', 1);
    const folder = join(handler, `${ROOT}.20`, uidOf(20));
    const runs = (await readFile(output, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({
      args: [folder],
      type: 'series.completed',
      event: { idempotencyKey: `${uidOf(20)}:1`, seriesInstanceUid: uidOf(20), folder },
    });
    expect((await readdir(folder)).sort()).toEqual(
      ['manifest.json', ...[1, 2, 3].map((n) => `${uidOf(20)}.${n}.dcm`)].sort(),
    );
    const [copy] = await jobsOf(s, 'copy');
    expect(copy).toMatchObject({ state: 'done', result: folder });
  });

  it('retries a failing command, then fails the series; a retry runs it again', async () => {
    const s = await setup(
      {
        series_completion_seconds: 1,
        complete_series_on_release: true,
        trigger_processing_chain: true,
        processing_command: `"${process.execPath}" -e "process.stderr.write('no GPU'); process.exit(3)"`,
      },
      { retry: { baseMs: 50, maxAttempts: 2 } },
    );
    await send(s, 21);
    const failed = await seriesIn(s, 21, 'failed', 1);
    expect(failed.lastError).toMatch(/exited with an error.*exitCode: 3.*no GPU/);
    const [job] = await jobsOf(s, 'command');
    expect(job).toMatchObject({ state: 'dead', attempts: 2 });
    const retried = await s.queue.retry(job!.id, new Date().toISOString());
    expect(retried).toMatchObject({ isChanged: true, series: { state: 'complete' } });
    s.controller.wakeHandoff();
    await eventually(async () => {
      const [again] = await jobsOf(s, 'command');
      return again?.state === 'dead' ? again : undefined;
    }, 'the retried command dead again');
    expect((await s.states.get(uidOf(21)))?.state).toBe('failed');
  });
});
