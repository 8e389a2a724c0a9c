/**
 * What the console's hand-off views rely on, through the API: the webhook secret is never
 * shown (a fixed mask and `webhook_secret_set` instead, to an administrator and a viewer alike,
 * stored and in effect), and sending the mask back keeps it, alone or in a whole settings
 * document, while a new value replaces it and '' clears it; the live event stream forwards the
 * `series` and `handoff` events over a real HTTP connection: a series receiving, complete and
 * handed off, a webhook delivery failing (its URL without credentials or query) and, retried
 * once the receiver is up, done, signed with the stored secret though the mask was saved.
 *
 * Layer: web test. 127.0.0.1, free ports; every wait has a deadline.
 */

import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SESSION_COOKIE } from '../../src/web/auth.js';
import { SECRET_MASK } from '../../src/web/routes/settings.js';
import { sendSeries, writeSeries } from '../helpers/series-files.js';
import { within } from '../helpers/wait.js';
import { apiUrl, eventually, startWebTest, type WebSession, type WebTest } from '../helpers/web.js';

const ROOT = '1.2.826.0.1.3680043.9.7777.81';
const SERIES = `${ROOT}.1.1`;

/** Nothing may have been logged at error level. */
async function closeClean(web: WebTest | undefined): Promise<void> {
  const errors = (web?.logs ?? []).filter((line) => line.level >= 50);
  await web?.close();
  expect(errors).toEqual([]);
}

describe('the webhook secret in the settings', () => {
  let web: WebTest;
  let admin: WebSession;
  let viewer: WebSession;

  beforeAll(async () => {
    web = await startWebTest();
    admin = await web.loginAdmin();
    viewer = await web.viewer();
  });
  afterAll(() => closeClean(web));

  const read = async (session: WebSession) => {
    const response = await web.request({ path: 'settings/', as: { session } });
    expect(response.statusCode).toBe(200);
    return { text: response.body, body: response.json() };
  };
  const patch = (body: unknown) =>
    web.request({ method: 'PATCH', path: 'settings/', as: { session: admin }, body });
  const stored = async () => (await web.context.settings.get()).settings.webhook_secret;

  it('reads as empty, not set, when none is stored', async () => {
    const { body } = await read(viewer);
    expect(body.settings.webhook_secret).toBe('');
    expect(body.effective.webhook_secret).toBe('');
    expect(body.webhook_secret_set).toBe(false);
  });

  it('is shown to nobody once set: the mask, stored and in effect, and in the change answer', async () => {
    const changed = await patch({ webhook_secret: 'top-secret-1' });
    expect(changed.statusCode).toBe(200);
    expect(changed.body).not.toContain('top-secret-1');
    expect(changed.json()).toMatchObject({
      changed: ['webhook_secret'],
      restartRequired: [],
      webhook_secret_set: true,
      settings: { webhook_secret: SECRET_MASK },
    });
    for (const session of [admin, viewer]) {
      const { text, body } = await read(session);
      expect(text).not.toContain('top-secret-1');
      expect(body.settings.webhook_secret).toBe(SECRET_MASK);
      expect(body.effective.webhook_secret).toBe(SECRET_MASK);
      expect(body.webhook_secret_set).toBe(true);
    }
    expect(await stored()).toBe('top-secret-1');
    expect(web.context.config.settings.webhook_secret).toBe('top-secret-1');
  });

  it('keeps the stored secret when the mask comes back, alone or in a whole settings document', async () => {
    const alone = await patch({ webhook_secret: SECRET_MASK });
    expect(alone.statusCode).toBe(200);
    expect(alone.json().changed).toEqual([]);
    expect(await stored()).toBe('top-secret-1');

    // A form sends back everything it read, with one change.
    const { body } = await read(admin);
    const whole = await patch({ ...body.settings, series_completion_seconds: 5 });
    expect(whole.statusCode, whole.body).toBe(200);
    expect(whole.json().changed).toEqual(['series_completion_seconds']);
    expect(await stored()).toBe('top-secret-1');
    expect(web.context.config.settings.webhook_secret).toBe('top-secret-1');
  });

  it('is replaced by a new value and cleared by an empty one; the audit log names only the setting', async () => {
    expect((await patch({ webhook_secret: 'top-secret-2' })).json().changed).toEqual([
      'webhook_secret',
    ]);
    expect(await stored()).toBe('top-secret-2');
    const cleared = await patch({ webhook_secret: '' });
    expect(cleared.json()).toMatchObject({
      changed: ['webhook_secret'],
      webhook_secret_set: false,
      settings: { webhook_secret: '' },
    });
    expect(await stored()).toBe('');
    expect((await read(viewer)).body.webhook_secret_set).toBe(false);
    const audit = await web.request({ path: 'audit/', as: { session: admin } });
    expect(audit.body).toContain('webhook_secret');
    expect(audit.body).not.toContain('top-secret');
  });

  it('lets a viewer change nothing', async () => {
    const response = await web.request({
      method: 'PATCH',
      path: 'settings/',
      as: { session: viewer },
      body: { webhook_secret: 'viewer-secret' },
    });
    expect(response.statusCode).toBe(403);
    expect(await stored()).toBe('');
  });
});

/** Server-sent events read from a real connection. */
interface EventStream {
  next(event: string, test?: (data: Record<string, unknown>) => boolean): Promise<unknown>;
  /** Every data line received, as sent. */
  readonly raw: string[];
  close(): void;
}

function openEvents(url: string, cookie: string): Promise<EventStream> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { headers: { cookie: `${SESSION_COOKIE}=${cookie}` } });
    request.once('error', reject);
    request.once('response', (response) => {
      if (response.statusCode !== 200) {
        reject(new Error(`events answered ${response.statusCode}`));
        return;
      }
      response.setEncoding('utf8');
      const received: { event: string; data: Record<string, unknown> }[] = [];
      const raw: string[] = [];
      const waiters: (() => void)[] = [];
      let buffer = '';
      response.on('data', (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event !== undefined && data !== undefined) {
            raw.push(data);
            received.push({ event, data: JSON.parse(data) });
          }
        }
        for (const waiter of waiters.splice(0)) waiter();
      });
      resolve({
        raw,
        next: (event, test = () => true) =>
          within(
            new Promise((found) => {
              const look = () => {
                const index = received.findIndex((e) => e.event === event && test(e.data));
                if (index >= 0) found(received.splice(0, index + 1).at(-1)?.data);
                else waiters.push(look);
              };
              look();
            }),
            10_000,
            `event ${event}`,
          ),
        close: () => request.destroy(),
      });
    });
  });
}

/** A webhook receiver: answers `status` (changeable), keeps what it received. */
async function startReceiver() {
  const received: { headers: http.IncomingHttpHeaders; body: string }[] = [];
  const state = { status: 503 };
  const server = http.createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => {
      body += chunk;
    });
    request.on('end', () => {
      received.push({ headers: request.headers, body });
      response.writeHead(state.status, { 'Content-Type': 'text/plain' }).end('receiver says no');
    });
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    received,
    answer: (status: number) => {
      state.status = status;
    },
    close: () => new Promise<void>((closed) => server.close(() => closed())),
  };
}

/** Whether a delivery carries the signature of `secret` over its timestamp and body. */
function isSignedWith(
  delivery: { headers: http.IncomingHttpHeaders; body: string },
  secret: string,
) {
  const timestamp = String(delivery.headers['x-dicom-server-timestamp']);
  const mac = createHmac('sha256', secret).update(`${timestamp}.${delivery.body}`).digest('hex');
  return delivery.headers['x-dicom-server-signature'] === `sha256=${mac}`;
}

describe('the live event stream', () => {
  let web: WebTest;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let base: string;

  beforeAll(async () => {
    receiver = await startReceiver();
    web = await startWebTest({
      settings: {
        series_completion_seconds: 1,
        trigger_processing_chain: true,
        webhook_urls: `http://hook:hook-password@127.0.0.1:${receiver.port}/hooks/dicom?token=abc`,
        webhook_secret: 'stream-secret',
      },
    });
    base = await web.app.listen({ host: '127.0.0.1', port: 0 });
    await web.context.controller.start();
  });
  afterAll(async () => {
    await closeClean(web);
    await receiver?.close();
  });

  it('forwards series states and hand-off jobs as they change; a webhook URL without credentials or query', async () => {
    const admin = await web.loginAdmin();
    // The form's way of saving: the mask sent back keeps the secret the deliveries are signed with.
    const saved = await web.request({
      method: 'PATCH',
      path: 'settings/',
      as: { session: admin },
      body: { webhook_secret: SECRET_MASK },
    });
    expect(saved.json().changed).toEqual([]);
    const baseline = {
      series: web.context.events.listenerCount('series'),
      handoff: web.context.events.listenerCount('handoff'),
    };
    const stream = await openEvents(`${base}${apiUrl('events/')}`, admin.cookie);
    expect(await stream.next('status')).toMatchObject({ state: 'running' });
    expect(web.context.events.listenerCount('series')).toBe(baseline.series + 1);
    expect(web.context.events.listenerCount('handoff')).toBe(baseline.handoff + 1);

    const files = await writeSeries(join(web.dataDir, 'outgoing'), {
      studyInstanceUid: `${ROOT}.1`,
      seriesInstanceUid: SERIES,
      count: 2,
    });
    await sendSeries(web.dicomPort, files);
    const ofSeries = (data: Record<string, unknown>) => data.seriesInstanceUid === SERIES;
    expect(
      await stream.next('series', (data) => ofSeries(data) && data.state === 'receiving'),
    ).toMatchObject({ seriesInstanceUid: SERIES, lastError: null });
    expect(
      await stream.next('series', (data) => ofSeries(data) && data.state === 'complete'),
    ).toEqual({ seriesInstanceUid: SERIES, completion: 1, state: 'complete', lastError: null });

    // The receiver is down: the delivery fails, to be tried again later.
    const failed = (await stream.next(
      'handoff',
      (data) => ofSeries(data) && data.kind === 'webhook' && data.state === 'failed',
    )) as { id: number; target: string; attempts: number; lastError: string };
    expect(failed).toMatchObject({
      target: `http://127.0.0.1:${receiver.port}/hooks/dicom?…`,
      attempts: 1,
      nextAttemptAt: expect.any(String),
    });
    expect(failed.lastError).toMatch(/503/);
    expect(stream.raw.join('\n')).not.toMatch(/hook-password|token=abc/);
    expect(receiver.received).toHaveLength(1);
    expect(isSignedWith(receiver.received[0]!, 'stream-secret')).toBe(true);

    // Up again, and retried by an administrator: pending at once, then done, the series handed off.
    receiver.answer(200);
    const retried = await web.request({
      method: 'POST',
      path: `processing/${failed.id}/retry`,
      as: { session: admin },
    });
    expect(retried.statusCode, retried.body).toBe(200);
    expect(
      await stream.next('handoff', (data) => data.id === failed.id && data.state === 'pending'),
    ).toMatchObject({ attempts: 0, lastError: null });
    expect(
      await stream.next('handoff', (data) => data.id === failed.id && data.state === 'done'),
    ).toMatchObject({ attempts: 1, target: failed.target });
    expect(
      await stream.next('series', (data) => ofSeries(data) && data.state === 'handed_off'),
    ).toEqual({ seriesInstanceUid: SERIES, completion: 1, state: 'handed_off', lastError: null });
    expect(receiver.received).toHaveLength(2);
    const [first, second] = receiver.received;
    expect(second!.headers['idempotency-key']).toBe(first!.headers['idempotency-key']);
    expect(isSignedWith(second!, 'stream-secret')).toBe(true);

    stream.close();
    await eventually(
      async () =>
        web.context.events.listenerCount('series') === baseline.series &&
        web.context.events.listenerCount('handoff') === baseline.handoff
          ? true
          : undefined,
      'the closed stream to stop listening',
    );
  });
});
