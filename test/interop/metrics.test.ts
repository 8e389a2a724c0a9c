/**
 * Interop: GET /metrics of `dicom-server serve` after a scripted workload of real peers. DCMTK's
 * echoscu (released, refused for a wrong called AE title, aborted), storescu (an instance whose
 * series stays receiving, then three whose series complete on release and are handed off as
 * queue items and to two webhooks, one of which fails once), findscu, and an association of
 * ours held open; /metrics is scraped before and after, and every metric must have moved by
 * exactly what the workload did (the bytes against the files on disk). With
 * enable_performance_metrics off, the per-transfer figures stand still while the counts move.
 * Who may read: the metrics token (stored by another process or through the API, masked there),
 * a console session, a user's API token; anyone else gets 401 with why.
 *
 * Layer: test (interop).
 */

import { readdir, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TransferSyntax } from '../../src/dicom/transfer-syntax.js';
import { SopClass } from '../../src/dicom/uid.js';
import { requestAssociation } from '../../src/network/association/requestor.js';
import { INCOMING_FOLDER } from '../../src/server/instance-store.js';
import type { Settings } from '../../src/settings/schema.js';
import { loginAdmin } from '../helpers/api-session.js';
import { runTool, type ToolRun } from '../helpers/dcmtk.js';
import { MetricSamples } from '../helpers/metrics-text.js';
import {
  createDataDir,
  type DataDir,
  pollUntil,
  type ServeProcess,
  startServeOn,
  stopServeAndRemoveDir,
} from '../helpers/serve-process.js';
import { TESTDATA_DICOM } from '../helpers/testdata.js';

const HOST = '127.0.0.1';
const CALLED_AE = 'DRAW_SCP';
const ADMIN_PASSWORD = 'metrics-admin-password-1';
const TOKEN = 'scrape-token-0123456789abcdef';
const TOOL_TIMEOUTS = ['-to', '10', '-ta', '10', '-td', '10'];
const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8';

/** What the workload sends: one instance first, then three of three other series. */
const FIRST_FILE = join(TESTDATA_DICOM, 'rtdose.dcm');
const FILES = ['CT_small.dcm', 'MR_small.dcm', 'rtplan.dcm'].map((f) => join(TESTDATA_DICOM, f));
const LATE_FILE = join(TESTDATA_DICOM, 'SC_rgb_small_odd.dcm');

/** Webhook receivers: `ok` answers 200; `flaky` 500 to its first request, then 200. */
class WebhookReceivers {
  readonly requests = { ok: 0, flaky: 0 };
  isFlakyFailing = false;
  readonly #server: Server;

  constructor() {
    this.#server = createServer((request, reply) => {
      request.resume();
      request.on('end', () => {
        const path = request.url === '/flaky' ? 'flaky' : 'ok';
        this.requests[path] += 1;
        const isFailing = path === 'flaky' && this.isFlakyFailing;
        this.isFlakyFailing &&= !isFailing;
        reply.statusCode = isFailing ? 500 : 200;
        reply.end();
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, HOST, resolve));
    const { port } = this.#server.address() as AddressInfo;
    return `http://${HOST}:${port}/ok,http://${HOST}:${port}/flaky`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

let dir: DataDir;
let serve: ServeProcess;
let dicomPort: number;
let httpPort: number;
let webhookUrls: string;
const receivers = new WebhookReceivers();

beforeAll(async () => {
  webhookUrls = await receivers.listen();
  dir = await createDataDir('metrics-');
  await configure({ metrics_token: TOKEN });
  ({ serve, dicomPort, httpPort } = await startServeOn(dir, {
    host: HOST,
    env: { DICOM_SERVER_ADMIN_PASSWORD: ADMIN_PASSWORD },
  }));
}, 60_000);

afterAll(async () => {
  try {
    await stopServeAndRemoveDir(serve, dir);
  } finally {
    await receivers.close();
  }
});

/** Stores a settings change as `config set` does; the server takes it with its next request. */
async function configure(change: Partial<Settings>): Promise<void> {
  const result = await dir.settings.update(change);
  if (!result.isValid) throw new Error(`settings rejected: ${JSON.stringify(result.errors)}`);
}

function metricsRequest(headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`http://${HOST}:${httpPort}/metrics`, { headers });
}

async function scrape(): Promise<MetricSamples> {
  const response = await metricsRequest({ authorization: `Bearer ${TOKEN}` });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`GET /metrics: ${response.status} ${text}`);
  return new MetricSamples(text);
}

/** Scrapes until `isDone` holds (the server counts as the peer's last PDUs arrive). */
function scrapeUntil(
  isDone: (samples: MetricSamples) => boolean,
  what: string,
  timeoutMs = 10_000,
) {
  return pollUntil(scrape, isDone, what, timeoutMs).catch((error: unknown) => {
    throw new Error(`${(error as Error).message.slice(0, 300)}\n${serve.output()}`);
  });
}

function expectSuccess(run: ToolRun): void {
  expect(run.exitCode, run.output).toBe(0);
}

function echoscu(extra: readonly string[] = [], calledAe = CALLED_AE): Promise<ToolRun> {
  return runTool('echoscu', [
    '-aet',
    'ECHOSCU',
    '-aec',
    calledAe,
    ...TOOL_TIMEOUTS,
    ...extra,
    HOST,
    String(dicomPort),
  ]);
}

function storescu(files: readonly string[]): Promise<ToolRun> {
  return runTool('storescu', [
    '-aet',
    'STORESCU',
    '-aec',
    CALLED_AE,
    ...TOOL_TIMEOUTS,
    HOST,
    String(dicomPort),
    ...files,
  ]);
}

function findscu(): Promise<ToolRun> {
  return runTool('findscu', [
    '-S',
    '-aet',
    'FINDSCU',
    '-aec',
    CALLED_AE,
    ...TOOL_TIMEOUTS,
    '-k',
    'QueryRetrieveLevel=STUDY',
    '-k',
    'StudyInstanceUID',
    HOST,
    String(dicomPort),
  ]);
}

/** Bytes of the stored files (not the temporary ones of receptions under way). */
async function storedBytes(): Promise<number> {
  let total = 0;
  const walk = async (folder: string): Promise<void> => {
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== INCOMING_FOLDER) await walk(path);
      } else if (entry.isFile() && entry.name.endsWith('.dcm')) {
        total += (await stat(path)).size;
      }
    }
  };
  await walk(join(dir.path, 'storage'));
  return total;
}

/** How much each sample moved from `before` to `after`. */
function moved(before: MetricSamples, after: MetricSamples) {
  return (name: string, labels: Record<string, string> = {}) =>
    after.count(name, labels) - before.count(name, labels);
}

const ops = (operation: string, status = '0x0000', category = 'success') => ({
  operation,
  status,
  category,
});

/** How far the stores, finds and received instances moved, with their per-transfer figures. */
function transferFigures(delta: ReturnType<typeof moved>) {
  return {
    stores: delta('dicom_server_dimse_operations_total', ops('C-STORE')),
    finds: delta('dicom_server_dimse_operations_total', ops('C-FIND')),
    instances: delta('dicom_server_instances_received_total'),
    bytes: delta('dicom_server_instances_received_bytes_total'),
    receiveTimes: delta('dicom_server_receive_duration_seconds_count'),
    findTimes: delta('dicom_server_find_duration_seconds_count'),
    storageUsed: delta('dicom_server_storage_used_bytes'),
  };
}

describe('GET /metrics after a scripted workload', () => {
  it('moves each metric by exactly what the peers did', { timeout: 120_000 }, async () => {
    await configure({
      enable_performance_metrics: true,
      auto_import_to_handler: true,
      trigger_processing_chain: true,
      webhook_urls: webhookUrls,
      series_completion_seconds: 3_600,
      complete_series_on_release: false,
    });
    receivers.isFlakyFailing = true;
    const requestsBefore = { ...receivers.requests };
    const bytesBefore = await storedBytes();
    const before = await scrape();
    expect(before.get('dicom_server_service_running')).toBe(1);
    expect(before.get('dicom_server_associations_active')).toBe(0);

    // An association of ours, held open: active while it lasts.
    const held = await requestAssociation({
      host: HOST,
      port: dicomPort,
      callingAeTitle: 'HOLDER',
      calledAeTitle: CALLED_AE,
      contexts: [
        {
          abstractSyntax: SopClass.Verification,
          transferSyntaxes: [TransferSyntax.ImplicitVRLittleEndian],
        },
      ],
    });
    await scrapeUntil((s) => s.get('dicom_server_associations_active') === 1, 'one active');
    await held.release();
    await scrapeUntil((s) => s.get('dicom_server_associations_active') === 0, 'none active');

    expectSuccess(await echoscu());
    const refused = await echoscu([], 'NOT_OUR_AE');
    expect(refused.exitCode, refused.output).not.toBe(0);
    expectSuccess(await echoscu(['--abort']));

    // Its series stays receiving: the completion time is an hour, release does not complete.
    expectSuccess(await storescu([FIRST_FILE]));
    await scrapeUntil(
      (s) => s.get('dicom_server_series_awaiting_completion') === 1,
      'a series awaiting completion',
    );
    // These three complete when their association is released: three queue items, six webhooks.
    await configure({ complete_series_on_release: true });
    expectSuccess(await storescu(FILES));
    expectSuccess(await findscu());

    const after = await scrapeUntil(
      (s) =>
        s.get('dicom_server_associations_released_total') ===
          before.count('dicom_server_associations_released_total') + 5 &&
        s.get('dicom_server_handoff_deliveries_total', {
          kind: 'webhook',
          outcome: 'delivered',
        }) ===
          before.count('dicom_server_handoff_deliveries_total', {
            kind: 'webhook',
            outcome: 'delivered',
          }) +
            6,
      'the workload counted and its webhooks delivered (one after a retry)',
      60_000,
    );
    const delta = moved(before, after);
    const fileBytes = (await storedBytes()) - bytesBefore;
    expect(fileBytes).toBeGreaterThan(0);

    expect({
      accepted: delta('dicom_server_associations_accepted_total'),
      released: delta('dicom_server_associations_released_total'),
      rejectedCalledAe: delta('dicom_server_associations_rejected_total', {
        reason: 'called-AE-title-not-recognized',
      }),
      abortedByPeer: delta('dicom_server_associations_aborted_total', { source: 'peer' }),
      abortedLocally: delta('dicom_server_associations_aborted_total', { source: 'local' }),
      connectionLost: delta('dicom_server_associations_aborted_total', {
        source: 'connection-lost',
      }),
      active: after.get('dicom_server_associations_active'),
      echoes: delta('dicom_server_dimse_operations_total', ops('C-ECHO')),
      ...transferFigures(delta),
      seriesAwaiting: after.get('dicom_server_series_awaiting_completion'),
      queueItems: delta('dicom_server_handoff_queue_depth', { kind: 'queue' }),
      webhooksWaiting: after.get('dicom_server_handoff_queue_depth', { kind: 'webhook' }),
      webhooksDelivered: delta('dicom_server_handoff_deliveries_total', {
        kind: 'webhook',
        outcome: 'delivered',
      }),
      webhooksFailed: delta('dicom_server_handoff_deliveries_total', {
        kind: 'webhook',
        outcome: 'failed',
      }),
      webhooksDead: delta('dicom_server_handoff_deliveries_total', {
        kind: 'webhook',
        outcome: 'dead',
      }),
      webhookRequests: {
        ok: receivers.requests.ok - requestsBefore.ok,
        flaky: receivers.requests.flaky - requestsBefore.flaky,
      },
    }).toEqual({
      // Ours held open, echo, echo aborted, two stores, find.
      accepted: 6,
      released: 5,
      rejectedCalledAe: 1,
      abortedByPeer: 1,
      abortedLocally: 0,
      connectionLost: 0,
      active: 0,
      echoes: 2,
      stores: 4,
      finds: 1,
      instances: 4,
      bytes: fileBytes,
      receiveTimes: 4,
      findTimes: 1,
      storageUsed: fileBytes,
      seriesAwaiting: 1,
      queueItems: 3,
      webhooksWaiting: 0,
      webhooksDelivered: 6,
      webhooksFailed: 1,
      webhooksDead: 0,
      webhookRequests: { ok: 3, flaky: 4 },
    });
    // Nothing else moved: no other operation, status or reject reason.
    const operations = Object.keys(after.samplesOf('dicom_server_dimse_operations_total'));
    expect(operations.filter((key) => !key.includes('category="success"'))).toEqual([]);
    expect(Object.keys(after.samplesOf('dicom_server_associations_rejected_total'))).toEqual([
      'dicom_server_associations_rejected_total{reason="called-AE-title-not-recognized"}',
    ]);
    // Oldest queue item: written during the workload, so between 0 and the workload's length.
    const age = after.get('dicom_server_handoff_oldest_pending_age_seconds', { kind: 'queue' });
    expect(age).toBeGreaterThanOrEqual(0);
    expect(age).toBeLessThan(120);
    expect(after.get('dicom_server_storage_limit_bytes')).toBe(100 * 1024 ** 3);
    expect(after.get('dicom_server_storage_free_bytes')).toBeGreaterThan(0);
    expect(after.get('dicom_server_index_size_bytes')).toBeGreaterThan(0);
  });

  it('leaves the per-transfer figures alone with enable_performance_metrics off', async () => {
    await configure({
      enable_performance_metrics: false,
      auto_import_to_handler: false,
      trigger_processing_chain: false,
    });
    const bytesBefore = await storedBytes();
    const before = await scrape();
    expectSuccess(await storescu([LATE_FILE]));
    expectSuccess(await findscu());
    const after = await scrapeUntil(
      (s) =>
        s.get('dicom_server_associations_released_total') ===
        before.count('dicom_server_associations_released_total') + 2,
      'two associations released',
    );
    expect(transferFigures(moved(before, after))).toEqual({
      stores: 1,
      finds: 1,
      instances: 1,
      bytes: 0,
      receiveTimes: 0,
      findTimes: 0,
      // Storage use is no per-transfer figure.
      storageUsed: (await storedBytes()) - bytesBefore,
    });
    await configure({ enable_performance_metrics: true });
  });
});

/** What the settings API answers, as far as the token goes. */
interface SettingsAnswer {
  readonly settings: Partial<Settings>;
  readonly effective: Partial<Settings>;
}

describe('who may read /metrics', () => {
  const login = () => loginAdmin(httpPort, ADMIN_PASSWORD);

  async function expectRefused(headers: Record<string, string>, message: string): Promise<void> {
    const response = await metricsRequest(headers);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer realm="metrics"');
    expect(await response.json()).toEqual({ error: message });
  }

  it('answers the metrics token, a console session and a user API token, in the text format', async () => {
    await configure({ metrics_token: TOKEN });
    const session = await login();
    const token = await session.post('tokens/', { name: 'prometheus' });
    expect(token.status).toBe(201);
    const userToken = ((await token.json()) as { token: string }).token;
    const callers: Record<string, string>[] = [
      { authorization: `Bearer ${TOKEN}` },
      { cookie: session.cookie },
      { authorization: `Bearer ${userToken}` },
    ];
    for (const headers of callers) {
      const response = await metricsRequest(headers);
      const text = await response.text();
      expect(response.status, text).toBe(200);
      expect(response.headers.get('content-type')).toBe(PROMETHEUS_TEXT);
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect(new MetricSamples(text).get('dicom_server_service_running')).toBe(1);
    }
  });

  it('refuses anyone else with 401 and says why', async () => {
    await configure({ metrics_token: TOKEN });
    await expectRefused(
      {},
      'metrics need Authorization: Bearer <metrics_token> or a console login',
    );
    await expectRefused(
      { authorization: 'Bearer not-the-token-0123456789' },
      'bearer token not accepted: neither the metrics_token nor a user API token',
    );
    await expectRefused(
      { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}` },
      'metrics need Authorization: Bearer <metrics_token> or a console login',
    );
    await expectRefused(
      { cookie: 'dicom_server_session=expired-or-made-up' },
      'metrics need Authorization: Bearer <metrics_token> or a console login',
    );
    // No token set: the old one no longer opens, and nothing empty does.
    await configure({ metrics_token: '' });
    await expectRefused(
      { authorization: `Bearer ${TOKEN}` },
      'bearer token not accepted: no metrics_token is set, and it is no user API token',
    );
    await expectRefused(
      { authorization: 'Bearer ' },
      'metrics need Authorization: Bearer <metrics_token> or a console login',
    );
    await configure({ metrics_token: TOKEN });
  });

  it('masks the token in the settings API, checks a new one, and takes it at once', async () => {
    await configure({ metrics_token: TOKEN });
    const session = await login();
    // A scrape takes the stored token into the settings in effect, which are masked too.
    expect((await metricsRequest({ authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    const read = (await (await session.get('settings/')).json()) as SettingsAnswer;
    expect(read.settings.metrics_token).toBe('********');
    expect(read.effective.metrics_token).toBe('********');

    const short = await session.patch('settings/', { metrics_token: 'short' });
    expect(short.status).toBe(400);
    expect(((await short.json()) as { fields: unknown }).fields).toEqual({
      metrics_token: 'must be empty or 16 to 1000 characters',
    });

    const replaced = 'replaced-token-fedcba9876543210';
    const changed = await session.patch('settings/', { metrics_token: replaced });
    expect(changed.status).toBe(200);
    expect(((await changed.json()) as SettingsAnswer).settings.metrics_token).toBe('********');
    expect((await metricsRequest({ authorization: `Bearer ${replaced}` })).status).toBe(200);
    expect((await metricsRequest({ authorization: `Bearer ${TOKEN}` })).status).toBe(401);
    await configure({ metrics_token: TOKEN });
  });
});
