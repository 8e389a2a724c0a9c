/**
 * Forwarding over the REST API: the rules (list with the attributes they match, create,
 * read, replace, delete), each change audited and announced as a `routing` event; the
 * destinations with their counts, last success and error and AE title entry; the forward
 * queue filtered and paged, a failed or dead job retried (and announced), a done one refused.
 * A viewer reads, only an administrator changes; 400 with a message per field for bad bodies
 * and filters, 404 and 409 with what was wrong.
 *
 * Layer: web test. The queue's jobs are written through the repository (the forwarder's
 * end-to-end run is test/integration/routing.test.ts).
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ForwardEntry,
  RoutingRepository,
} from '../../src/db/repositories/routing-repository.js';
import type { RoutingEvent } from '../../src/server/events.js';
import { type As, startWebTest, type WebSession, type WebTest } from '../helpers/web.js';

const ROOT = '1.2.826.0.1.3680043.9.7777.72';

function entry(n: number, destination: string): ForwardEntry {
  return {
    ruleId: 1,
    ruleName: 'CT to AI',
    destination,
    sopInstanceUid: `${ROOT}.1.1.${n}`,
    sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    filePath: `p/s/${n}.dcm`,
    fileSize: 1_000,
    patientId: 'PID-72',
    studyInstanceUid: `${ROOT}.1`,
    seriesInstanceUid: `${ROOT}.1.1`,
  };
}

const RULE = {
  name: 'CT to AI',
  description: 'chest CTs to the AI node',
  conditions: { modality: 'CT', bodyPartExamined: 'CHEST\\THORAX', callingAe: 'CT_*' },
  destinations: ['AI_NODE'],
};

describe('the routing API', () => {
  let web: WebTest;
  let admin: WebSession;
  let viewer: WebSession;
  const events: RoutingEvent[] = [];
  const asAdmin = (): As => ({ session: admin });
  const asViewer = (): As => ({ session: viewer });

  beforeAll(async () => {
    web = await startWebTest();
    admin = await web.loginAdmin();
    viewer = await web.viewer();
    web.context.events.on('routing', (event) => events.push(event));
  });

  afterAll(async () => {
    const errors = web.logs.filter((line) => line.level >= 50);
    await web.close();
    expect(errors).toEqual([]);
  });

  async function auditActions() {
    const response = await web.request({ path: 'audit/', as: asAdmin(), query: { limit: '500' } });
    return (response.json() as { action: string; outcome: string; detail: string | null }[])
      .filter((entry) => entry.action.startsWith('routing'))
      .map(({ action, outcome, detail }) => ({ action, outcome, detail }))
      .reverse();
  }

  const send = (method: 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown, as = asAdmin()) =>
    web.request({ method, path, as, ...(body !== undefined && { body }) });

  it('creates, reads, replaces and deletes rules; a viewer reads; each change audited and announced', async () => {
    const empty = await web.request({ path: 'routing/rules', as: asViewer() });
    expect(empty.statusCode).toBe(200);
    expect(empty.json().items).toEqual([]);
    expect(empty.json().attributes).toEqual(
      expect.arrayContaining([
        'callingAe',
        'modality',
        'sopClassUid',
        'patientId',
        'bodyPartExamined',
      ]),
    );

    events.length = 0;
    const created = await send('POST', 'routing/rules', RULE);
    expect(created.statusCode, created.body).toBe(201);
    const rule = created.json();
    expect(rule).toEqual({
      id: expect.any(Number),
      ...RULE,
      isEnabled: true,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    expect(events).toEqual([{ type: 'rules' }]);

    const read = await web.request({ path: `routing/rules/${rule.id}`, as: asViewer() });
    expect(read.json()).toEqual(rule);

    const replaced = await send('PUT', `routing/rules/${rule.id}`, {
      ...RULE,
      isEnabled: false,
      destinations: ['AI_NODE', 'ARCHIVE'],
    });
    expect(replaced.statusCode, replaced.body).toBe(200);
    expect(replaced.json()).toMatchObject({
      isEnabled: false,
      destinations: ['AI_NODE', 'ARCHIVE'],
    });
    const listed = await web.request({ path: 'routing/rules', as: asViewer() });
    expect(listed.json().items).toEqual([replaced.json()]);

    const other = await send('POST', 'routing/rules', { ...RULE, name: 'MR' });
    expect(other.statusCode).toBe(201);
    expect((await send('DELETE', `routing/rules/${other.json().id}`)).statusCode).toBe(204);
    expect(
      (await web.request({ path: `routing/rules/${other.json().id}`, as: asViewer() })).statusCode,
    ).toBe(404);
    expect(events).toHaveLength(4);

    expect(await auditActions()).toEqual([
      { action: 'routing rule add', outcome: 'success', detail: `${rule.id} CT to AI to AI_NODE` },
      {
        action: 'routing rule change',
        outcome: 'success',
        detail: `${rule.id} CT to AI to AI_NODE, ARCHIVE`,
      },
      {
        action: 'routing rule add',
        outcome: 'success',
        detail: `${other.json().id} MR to AI_NODE`,
      },
      {
        action: 'routing rule remove',
        outcome: 'success',
        detail: `${other.json().id} MR to AI_NODE`,
      },
    ]);
  });

  it('lets only an administrator change rules, with the CSRF token', async () => {
    expect((await send('POST', 'routing/rules', RULE, asViewer())).statusCode).toBe(403);
    const noCsrf = await send('POST', 'routing/rules', RULE, { session: admin, csrf: false });
    expect(noCsrf.statusCode).toBe(403);
    expect((await send('DELETE', 'routing/rules/1', undefined, asViewer())).statusCode).toBe(403);
    expect((await web.request({ method: 'GET', path: 'routing/rules' })).statusCode).toBe(401);
  });

  it('answers 400 with a message per field, 404 and 409 with what was wrong', async () => {
    const unknown = await send('POST', 'routing/rules', {
      ...RULE,
      name: 'bad',
      conditions: { institutionName: 'X' },
    });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().fields.conditions).toMatch(/^institutionName is not an attribute/);
    const empty = await send('POST', 'routing/rules', {
      ...RULE,
      name: 'bad',
      conditions: { modality: ' ' },
    });
    expect(empty.json().fields.conditions).toMatch(/^modality must not be empty/);
    const noDestination = await send('POST', 'routing/rules', { ...RULE, destinations: [] });
    expect(noDestination.json().fields.destinations).toBe(
      'must name at least one destination AE title',
    );
    const badAe = await send('POST', 'routing/rules', { ...RULE, destinations: ['A\\B'] });
    expect(badAe.statusCode).toBe(400);
    expect(badAe.json().fields.destinations).toMatch(/without backslash/);
    const twice = await send('POST', 'routing/rules', { ...RULE, destinations: ['A', 'A'] });
    expect(twice.json().fields.destinations).toBe('must not name an AE title twice');
    const noName = await send('POST', 'routing/rules', { ...RULE, name: '' });
    expect(noName.json().fields.name).toBe('must not be empty');
    const extra = await send('POST', 'routing/rules', { ...RULE, name: 'x', priority: 1 });
    expect(extra.statusCode).toBe(400);

    const taken = await send('POST', 'routing/rules', RULE);
    expect(taken.statusCode).toBe(409);
    expect(taken.json().error).toBe('a routing rule named "CT to AI" exists already');
    expect((await send('PUT', 'routing/rules/9999', RULE)).statusCode).toBe(404);
    expect((await send('DELETE', 'routing/rules/9999')).statusCode).toBe(404);
    expect((await web.request({ path: 'routing/rules/abc', as: asViewer() })).statusCode).toBe(400);
    const badState = await web.request({
      path: 'routing/queue',
      as: asViewer(),
      query: { state: 'lost' },
    });
    expect(badState.statusCode).toBe(400);
    expect(badState.json().fields.state).toMatch(/^must be one of: pending, in_progress/);
  });

  it('lists the destinations and the queue, and retries failed and dead jobs', async () => {
    await web.context.settings.addAllowedAe({ ae_title: 'AI_NODE', host: '10.0.0.5', port: 104 });
    const repository = new RoutingRepository(web.context.database);
    await repository.enqueue(
      [entry(1, 'AI_NODE'), entry(2, 'AI_NODE'), entry(3, 'AI_NODE'), entry(4, 'OTHER')],
      '2026-01-02T10:00:00.000Z',
    );
    const [a, b, c] = await repository.claimDue('AI_NODE', 'test:1', '2026-01-02T10:00:01.000Z', 3);
    if (a === undefined || b === undefined || c === undefined) throw new Error('not claimed');
    await repository.finish(a.id, { isDone: true }, '2026-01-02T10:00:02.000Z');
    await repository.finish(
      b.id,
      {
        isDone: false,
        error: 'destination unreachable',
        nextAttemptAt: '2026-01-02T10:00:07.000Z',
      },
      '2026-01-02T10:00:02.000Z',
    );
    await repository.finish(
      c.id,
      { isDone: false, error: 'instance no longer stored', nextAttemptAt: undefined },
      '2026-01-02T10:00:03.000Z',
    );

    const destinations = await web.request({ path: 'routing/destinations', as: asViewer() });
    expect(destinations.statusCode).toBe(200);
    expect(destinations.json().items).toEqual([
      {
        aeTitle: 'AI_NODE',
        queued: 0,
        failed: 1,
        dead: 1,
        nextAttemptAt: '2026-01-02T10:00:07.000Z',
        lastSuccessAt: '2026-01-02T10:00:02.000Z',
        lastError: 'instance no longer stored',
        lastErrorAt: '2026-01-02T10:00:03.000Z',
        isInRules: true,
        ae: { host: '10.0.0.5', port: 104, isActive: true },
      },
      expect.objectContaining({ aeTitle: 'ARCHIVE', queued: 0, isInRules: true, ae: null }),
      expect.objectContaining({ aeTitle: 'OTHER', queued: 1, isInRules: false, ae: null }),
    ]);

    const all = await web.request({ path: 'routing/queue', as: asViewer() });
    expect(all.json().total).toBe(4);
    expect(all.json().items.map((job: { state: string }) => job.state)).toEqual([
      'pending',
      'dead',
      'failed',
      'done',
    ]);
    const page = await web.request({
      path: 'routing/queue',
      as: asViewer(),
      query: { destination: 'AI_NODE', limit: '2' },
    });
    expect(page.json()).toMatchObject({ total: 3, nextBefore: b.id });
    const next = await web.request({
      path: 'routing/queue',
      as: asViewer(),
      query: { destination: 'AI_NODE', limit: '2', before: String(page.json().nextBefore) },
    });
    expect(next.json().items.map((job: { id: number }) => job.id)).toEqual([a.id]);
    const failed = await web.request({
      path: 'routing/queue',
      as: asViewer(),
      query: { state: 'failed' },
    });
    expect(failed.json().items).toEqual([
      expect.objectContaining({ id: b.id, lastError: 'destination unreachable', attempts: 1 }),
    ]);

    events.length = 0;
    expect(
      (await send('POST', `routing/queue/${c.id}/retry`, undefined, asViewer())).statusCode,
    ).toBe(403);
    const retried = await send('POST', `routing/queue/${c.id}/retry`);
    expect(retried.statusCode, retried.body).toBe(200);
    expect(retried.json()).toMatchObject({
      id: c.id,
      state: 'pending',
      attempts: 0,
      lastError: null,
    });
    expect(events).toEqual([
      { type: 'job', job: expect.objectContaining({ id: c.id, state: 'pending' }) },
    ]);
    const done = await send('POST', `routing/queue/${a.id}/retry`);
    expect(done.statusCode).toBe(409);
    expect(done.json().error).toBe(
      `forward job ${a.id} is done: only failed or dead ones are retried`,
    );
    expect((await send('POST', 'routing/queue/9999/retry')).statusCode).toBe(404);
    expect((await auditActions()).slice(-3)).toEqual([
      {
        action: 'routing retry',
        outcome: 'success',
        detail: `${c.id} ${ROOT}.1.1.3 to AI_NODE`,
      },
      { action: 'routing retry', outcome: 'failure', detail: done.json().error },
      { action: 'routing retry', outcome: 'failure', detail: 'no forward job 9999' },
    ]);
  });
});
