/**
 * The processing queue and series states over the REST API, after real C-STOREs completed two
 * series (auto import on, completion on release): lists with filters, pages and totals, one
 * item with its event, a series with its jobs, for a viewer too; claim (oldest first, once),
 * acknowledge (by its claimer only), fail with a message, retry (failed items back, done ones
 * refused) by an administrator's bearer token, each audited; 403 for a viewer or without CSRF;
 * 400 with a message per field for bad filters and bodies, 404 and 409 with what was wrong.
 *
 * Layer: web test. 127.0.0.1, free ports; every wait has a deadline.
 */

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendSeries, writeSeries } from '../helpers/series-files.js';
import {
  type As,
  eventually,
  startWebTest,
  type WebSession,
  type WebTest,
} from '../helpers/web.js';

const ROOT = '1.2.826.0.1.3680043.9.7777.80';
const SERIES_A = `${ROOT}.1.1`;
const SERIES_B = `${ROOT}.2.1`;

describe('the processing queue', () => {
  let web: WebTest;
  let admin: WebSession;
  let viewer: WebSession;
  let token: string;
  const asAdmin = (): As => ({ token });
  const asViewer = (): As => ({ session: viewer });

  beforeAll(async () => {
    web = await startWebTest({
      settings: {
        auto_import_to_handler: true,
        series_completion_seconds: 1,
        complete_series_on_release: true,
      },
    });
    admin = await web.loginAdmin();
    viewer = await web.viewer();
    token = await web.createToken(admin, 'pipeline');
    await web.context.controller.start();
    for (const [n, series] of [
      [1, SERIES_A],
      [2, SERIES_B],
    ] as const) {
      const files = await writeSeries(join(web.dataDir, 'outgoing', String(n)), {
        studyInstanceUid: `${ROOT}.${n}`,
        seriesInstanceUid: series,
        count: 2,
      });
      await sendSeries(web.dicomPort, files);
      await eventually(async () => {
        const response = await web.request({ path: `series/${series}`, as: asViewer() });
        return response.statusCode === 200 && response.json().state === 'handed_off'
          ? true
          : undefined;
      }, `series ${n} handed off`);
    }
  });

  afterAll(async () => {
    const errors = web.logs.filter((line) => line.level >= 50);
    await web.close();
    expect(errors).toEqual([]);
  });

  async function items(query: Record<string, string> = {}, as: As = asViewer()) {
    const response = await web.request({ path: 'processing/', as, query });
    expect(response.statusCode, response.body).toBe(200);
    return response.json() as {
      items: { id: number; kind: string; state: string; seriesInstanceUid: string }[];
      nextBefore: number | null;
      total: number;
    };
  }

  async function auditActions() {
    const response = await web.request({ path: 'audit/', as: asAdmin(), query: { limit: '500' } });
    return (response.json() as { action: string; outcome: string; detail: string | null }[])
      .filter((entry) => entry.action.startsWith('processing'))
      .map(({ action, outcome, detail }) => ({ action, outcome, detail }));
  }

  const post = (path: string, body: unknown, as: As = asAdmin()) =>
    web.request({ method: 'POST', path, as, ...(body !== undefined && { body }) });

  it('lists the queue items to a viewer, filtered, paged, with totals', async () => {
    const all = await items();
    expect(all.total).toBe(2);
    expect(all.items.map((item) => [item.kind, item.state, item.seriesInstanceUid])).toEqual([
      ['queue', 'pending', SERIES_B],
      ['queue', 'pending', SERIES_A],
    ]);
    const first = await items({ limit: '1' });
    expect(first.items).toHaveLength(1);
    const second = await items({ limit: '1', before: String(first.nextBefore) });
    expect(second.items.map((item) => item.seriesInstanceUid)).toEqual([SERIES_A]);
    expect((await items({ series: SERIES_A })).total).toBe(1);
    expect((await items({ kind: 'webhook' })).total).toBe(0);
    expect((await items({ state: 'pending', kind: 'queue' })).total).toBe(2);
  });

  it('shows one item with its event, and a series with its jobs', async () => {
    const [item] = (await items({ series: SERIES_A })).items;
    const one = await web.request({ path: `processing/${item!.id}`, as: asViewer() });
    expect(one.statusCode).toBe(200);
    expect(one.json()).toMatchObject({
      id: item!.id,
      kind: 'queue',
      event: {
        type: 'series.completed',
        idempotencyKey: `${SERIES_A}:1`,
        series: { seriesInstanceUid: SERIES_A, patientId: 'PID-7', modality: 'MR' },
      },
    });
    expect(one.json().event.series.files).toHaveLength(2);
    const series = await web.request({ path: `series/${SERIES_A}`, as: asViewer() });
    expect(series.json()).toMatchObject({
      seriesInstanceUid: SERIES_A,
      state: 'handed_off',
      completion: 1,
      jobs: [{ id: item!.id, kind: 'queue' }],
    });
    const list = await web.request({
      path: 'series/',
      as: asViewer(),
      query: { state: 'handed_off' },
    });
    expect(list.json()).toMatchObject({ total: 2, receiving: 0 });
    expect((await web.request({ path: 'processing/424242', as: asViewer() })).statusCode).toBe(404);
    expect((await web.request({ path: `series/${ROOT}.9.9`, as: asViewer() })).statusCode).toBe(
      404,
    );
  });

  it('answers 400 with a message per field for bad filters, ids and bodies', async () => {
    const bad = await web.request({
      path: 'processing/',
      as: asViewer(),
      query: { state: 'lost', series: 'not-a-uid' },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().fields).toEqual({
      state: 'must be one of: pending, in_progress, processing, done, failed, dead',
      series: 'must be a UID (digits and dots)',
    });
    expect((await web.request({ path: 'processing/abc', as: asViewer() })).statusCode).toBe(400);
    const noWorker = await post('processing/claim', { limit: 1 });
    expect(noWorker.statusCode).toBe(400);
    expect(noWorker.json().fields.worker).toBe('must be text');
    const tooMany = await post('processing/claim', { worker: 'w', limit: 1000 });
    expect(tooMany.json().fields.limit).toBe('must be at most 100');
    const unknown = await post('processing/claim', { worker: 'w', colour: 'blue' });
    expect(unknown.statusCode).toBe(400);
    const noError = await post('processing/1/fail', { error: '   ' });
    expect(noError.json().fields.error).toBe('must say what failed');
  });

  it('lets only an administrator claim, acknowledge, fail or retry', async () => {
    for (const path of ['processing/claim', 'processing/1/acknowledge', 'processing/1/fail']) {
      const body = path.endsWith('claim') ? { worker: 'w' } : { error: 'x' };
      const anonymous = await web.request({ method: 'POST', path, body });
      expect(anonymous.statusCode).toBe(401);
      const asViewerCall = await post(path, body, asViewer());
      expect(asViewerCall.statusCode).toBe(403);
      expect(asViewerCall.json().error).toBe('read-only user: an administrator may change this');
      expect((await post(path, body, { session: admin, csrf: false })).statusCode).toBe(403);
    }
    expect((await post('processing/1/retry', undefined, asViewer())).statusCode).toBe(403);
  });

  it('claims oldest first and once, acknowledges by the claimer, fails and retries', async () => {
    const claimed = await post('processing/claim', { worker: 'seg-1' });
    expect(claimed.statusCode).toBe(200);
    const [itemA, ...none] = claimed.json().items;
    expect(none).toEqual([]);
    expect(itemA).toMatchObject({
      kind: 'queue',
      state: 'processing',
      claimedBy: 'seg-1',
      attempts: 1,
      seriesInstanceUid: SERIES_A,
      event: { series: { seriesInstanceUid: SERIES_A } },
    });
    expect(itemA.event.series.files.map((f: { path: string }) => f.path.startsWith('/'))).toEqual([
      true,
      true,
    ]);
    const [itemB] = (await post('processing/claim', { worker: 'seg-2', limit: 5 })).json().items;
    expect(itemB).toMatchObject({ seriesInstanceUid: SERIES_B, claimedBy: 'seg-2' });
    expect((await post('processing/claim', { worker: 'seg-3', limit: 5 })).json()).toEqual({
      items: [],
    });

    const wrong = await post(`processing/${itemA.id}/acknowledge`, { worker: 'seg-2' });
    expect(wrong.statusCode).toBe(409);
    expect(wrong.json().error).toBe(`queue item ${itemA.id} is claimed by another worker`);
    const acked = await post(`processing/${itemA.id}/acknowledge`, { worker: 'seg-1' });
    expect(acked.statusCode).toBe(200);
    expect(acked.json()).toMatchObject({ id: itemA.id, state: 'done' });
    const seriesA = await web.request({ path: `series/${SERIES_A}`, as: asViewer() });
    expect(seriesA.json().state).toBe('acknowledged');

    const failed = await post(`processing/${itemB.id}/fail`, { error: 'model crashed' });
    expect(failed.json()).toMatchObject({ state: 'failed', lastError: 'model crashed' });
    const seriesB = await web.request({ path: `series/${SERIES_B}`, as: asViewer() });
    expect(seriesB.json()).toMatchObject({ state: 'failed', lastError: 'model crashed' });
    expect((await items({ state: 'failed' })).items.map((item) => item.id)).toEqual([itemB.id]);
    const again = await post(`processing/${itemB.id}/acknowledge`, undefined);
    expect(again.statusCode).toBe(409);
    expect(again.json().error).toBe(
      `queue item ${itemB.id} is failed, not processing (claim it first)`,
    );

    const retried = await post(`processing/${itemB.id}/retry`, undefined);
    expect(retried.statusCode).toBe(200);
    expect(retried.json()).toMatchObject({ state: 'pending', attempts: 0, lastError: null });
    expect((await web.request({ path: `series/${SERIES_B}`, as: asViewer() })).json().state).toBe(
      'handed_off',
    );
    const [reclaimed] = (await post('processing/claim', { worker: 'seg-3' })).json().items;
    expect(reclaimed).toMatchObject({ id: itemB.id, claimedBy: 'seg-3' });

    const done = await post(`processing/${itemA.id}/retry`, undefined);
    expect(done.statusCode).toBe(409);
    expect(done.json().error).toBe(
      `queue item ${itemA.id} is done: only failed or processing ones are retried`,
    );
    expect((await post('processing/424242/retry', undefined)).statusCode).toBe(404);

    expect(await auditActions()).toEqual(
      [
        { action: 'processing claim', outcome: 'success', detail: `seg-1: ${itemA.id}` },
        { action: 'processing claim', outcome: 'success', detail: `seg-2: ${itemB.id}` },
        {
          action: 'processing acknowledge',
          outcome: 'failure',
          detail: `queue item ${itemA.id} is claimed by another worker`,
        },
        {
          action: 'processing acknowledge',
          outcome: 'success',
          detail: `queue ${itemA.id} of series ${SERIES_A}`,
        },
        {
          action: 'processing fail',
          outcome: 'success',
          detail: `queue ${itemB.id} of series ${SERIES_B}`,
        },
        {
          action: 'processing acknowledge',
          outcome: 'failure',
          detail: `queue item ${itemB.id} is failed, not processing (claim it first)`,
        },
        {
          action: 'processing retry',
          outcome: 'success',
          detail: `queue ${itemB.id} of series ${SERIES_B}`,
        },
        { action: 'processing claim', outcome: 'success', detail: `seg-3: ${itemB.id}` },
        {
          action: 'processing retry',
          outcome: 'failure',
          detail: `queue item ${itemA.id} is done: only failed or processing ones are retried`,
        },
        { action: 'processing retry', outcome: 'failure', detail: 'no hand-off job 424242' },
      ].reverse(),
    );
  });
});
