/**
 * The REST API, every route, through `app.inject()` on the whole context `serve` builds (SQLite
 * in a temporary directory; a smoke test on PostgreSQL): the public health check; login (the
 * session cookie's attributes, wrong passwords, lockout per name and address with Retry-After),
 * logout and me; status; settings (per-field errors, unknown names, which changes wait for a
 * restart, the live effect of the others); allowed AE titles (CRUD, C-ECHO against our own
 * listening service and a closed port, the calling AE titles seen); the transaction log
 * (filters, pages, totals, CSV with quoting and the formula-injection guard); the audit log;
 * recent studies after a real C-STORE; service stop, start, restart and a start that fails on
 * a taken port; the open associations (list, abort); the server-sent events over a real HTTP
 * connection; users and API tokens (a viewer's own, read-only); the OpenAPI document. For every
 * route that changes something: 401 without a login, 403 for a viewer (but logout and their own
 * tokens), 403 with the cookie but without (or with a wrong) CSRF token, and success with an
 * administrator's bearer token and no CSRF token.
 *
 * Layer: web test. 127.0.0.1, free ports; every wait has a deadline.
 */

import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TransactionRecord } from '../../src/db/repositories/transaction-log-repository.js';
import { TransferSyntax } from '../../src/dicom/transfer-syntax.js';
import { SopClass } from '../../src/dicom/uid.js';
import { requestAssociation } from '../../src/network/association/requestor.js';
import { echo } from '../../src/services/scu/echo.js';
import { inspectFile, sendFiles } from '../../src/services/scu/store.js';
import { RESTART_SETTINGS, SETTING_KEYS } from '../../src/settings/schema.js';
import { SESSION_COOKIE } from '../../src/web/auth.js';
import { accepts, freePort } from '../helpers/net.js';
import { POSTGRES_URL } from '../helpers/postgres.js';
import { TESTDATA_DICOM } from '../helpers/testdata.js';
import { within } from '../helpers/wait.js';
import {
  ADMIN,
  type As,
  apiUrl,
  eventually,
  startWebTest,
  type WebSession,
  type WebTest,
} from '../helpers/web.js';

/**
 * A fresh app for a describe block, closed after it; nothing may have been logged at error level
 * (a 500, a failed audit write) but a start failure a test provoked.
 */
function useWebTest(options?: Parameters<typeof startWebTest>[0]): () => WebTest {
  let web: WebTest | undefined;
  beforeAll(async () => {
    web = await startWebTest(options);
  });
  afterAll(async () => {
    const errors = (web?.logs ?? []).filter(
      (line) => line.level >= 50 && !line.msg.startsWith('DICOM service could not start'),
    );
    await web?.close();
    expect(errors).toEqual([]);
  });
  return () => {
    if (web === undefined) throw new Error('web test not started');
    return web;
  };
}

/** The audit entries, newest first. */
async function auditEntries(web: WebTest, as: As) {
  const response = await web.request({ path: 'audit/', as, query: { limit: '500' } });
  expect(response.statusCode).toBe(200);
  return response.json() as {
    id: number;
    username: string;
    action: string;
    outcome: string;
    remote_address: string;
    detail: string | null;
  }[];
}

/** A C-ECHO to our own service from `callingAeTitle`; the status, or the error's code. */
async function echoOwn(web: WebTest, callingAeTitle: string): Promise<number | string> {
  try {
    const result = await echo({
      host: '127.0.0.1',
      port: web.dicomPort,
      callingAeTitle,
      calledAeTitle: 'DRAW_SCP',
      timeouts: { acseMs: 5_000, dimseMs: 5_000 },
    });
    return result.status;
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  }
}

describe('health, login, logout and me', () => {
  const web = useWebTest();

  it('answers the health check without a login, uncached', async () => {
    const response = await web().request({ path: 'health/' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ok', service: 'stopped' });
    expect(response.headers['cache-control']).toBe('no-store');
  });

  it('logs in: the user, the CSRF token and a strict, HttpOnly session cookie on /dicom-server', async () => {
    const response = await web().request({
      method: 'POST',
      path: 'auth/login',
      body: { username: ADMIN.username, password: ADMIN.password },
    });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body.user).toEqual({ username: 'admin', role: 'admin' });
    expect(body.csrfToken).toMatch(/^[\w-]{20,}$/);
    const cookie = response.cookies.find((c) => c.name === SESSION_COOKIE);
    expect(cookie).toMatchObject({
      httpOnly: true,
      sameSite: 'Strict',
      path: '/dicom-server',
      maxAge: 12 * 60 * 60,
    });
    expect(cookie?.value).toMatch(/^[\w-]{40,}$/);
    // Plain HTTP here: a Secure cookie would never come back.
    expect(cookie?.secure).toBeFalsy();
    const header = String(response.headers['set-cookie']);
    expect(header).toContain('HttpOnly');
    expect(header).toContain('SameSite=Strict');
    expect(header).toContain('Path=/dicom-server');
  });

  it('refuses a wrong password and an unknown user alike, with no cookie', async () => {
    for (const body of [
      { username: ADMIN.username, password: 'wrong-password' },
      { username: 'nobody-at-all', password: 'wrong-password' },
    ]) {
      const response = await web().request({
        method: 'POST',
        path: 'auth/login',
        body,
        remoteAddress: '10.1.0.1',
      });
      expect(response.statusCode).toBe(401);
      expect(response.json()).toEqual({ error: 'invalid username or password' });
      expect(response.headers['set-cookie']).toBeUndefined();
    }
  });

  it('says which login fields are wrong', async () => {
    const response = await web().request({
      method: 'POST',
      path: 'auth/login',
      body: { username: '', password: 42 },
      remoteAddress: '10.1.0.2',
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({
      error: 'invalid request',
      fields: { username: 'must not be empty', password: expect.any(String) },
    });
  });

  it('locks a name out after 5 failures from an address, even for the right password, with Retry-After', async () => {
    const password = await web().addUser('lock-name', 'viewer');
    const attempt = (pass: string, remoteAddress: string, username = 'lock-name') =>
      web().request({
        method: 'POST',
        path: 'auth/login',
        body: { username, password: pass },
        remoteAddress,
      });
    for (let i = 0; i < 5; i++) expect((await attempt('wrong', '10.2.0.1')).statusCode).toBe(401);
    const locked = await attempt(password, '10.2.0.1');
    expect(locked.statusCode).toBe(429);
    const retryAfter = Number(locked.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(15 * 60);
    expect(locked.json()).toMatchObject({ retryAfterSeconds: retryAfter });
    expect(locked.headers['set-cookie']).toBeUndefined();
    // The name from another address, and another name from this address, are not locked.
    expect((await attempt(password, '10.2.0.2')).statusCode).toBe(200);
    expect((await attempt(ADMIN.password, '10.2.0.1', ADMIN.username)).statusCode).toBe(200);
    // The name is taken case-insensitively for the lockout.
    expect((await attempt(password, '10.2.0.1', 'LOCK-NAME')).statusCode).toBe(429);
  });

  it('locks an address out after 20 failures whatever the names', async () => {
    for (let i = 0; i < 20; i++) {
      const response = await web().request({
        method: 'POST',
        path: 'auth/login',
        body: { username: `cycling-${i}`, password: 'guess' },
        remoteAddress: '10.3.0.1',
      });
      expect(response.statusCode).toBe(401);
    }
    const response = await web().request({
      method: 'POST',
      path: 'auth/login',
      body: { username: ADMIN.username, password: ADMIN.password },
      remoteAddress: '10.3.0.1',
    });
    expect(response.statusCode).toBe(429);
    expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
  });

  it("does not reset an address's failures when some account logs in from it", async () => {
    const attempt = (username: string, password: string) =>
      web().request({
        method: 'POST',
        path: 'auth/login',
        body: { username, password },
        remoteAddress: '10.4.0.1',
      });
    for (let i = 0; i < 19; i++)
      expect((await attempt(`cycle-${i}`, 'guess')).statusCode).toBe(401);
    // An attacker holding one account must not be able to clear the address's count with it.
    expect((await attempt(ADMIN.username, ADMIN.password)).statusCode).toBe(200);
    expect((await attempt('cycle-19', 'guess')).statusCode).toBe(401);
    expect((await attempt('cycle-20', 'guess')).statusCode).toBe(429);
  });

  it('tells who is logged in: with the CSRF token for a session, without for a token', async () => {
    const admin = await web().loginAdmin();
    const me = await web().request({ path: 'auth/me', as: { session: admin } });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toEqual({
      user: { username: 'admin', role: 'admin' },
      csrfToken: admin.csrfToken,
    });
    const token = await web().createToken(admin);
    const byToken = await web().request({ path: 'auth/me', as: { token } });
    expect(byToken.json()).toEqual({ user: { username: 'admin', role: 'admin' } });
    expect((await web().request({ path: 'auth/me' })).statusCode).toBe(401);
    const forged = { ...admin, cookie: 'not-a-session' };
    expect((await web().request({ path: 'auth/me', as: { session: forged } })).statusCode).toBe(
      401,
    );
    expect(
      (await web().request({ path: 'auth/me', as: { token: 'not-a-token' } })).statusCode,
    ).toBe(401);
  });

  it('logs out: the cookie is cleared and no longer works; a viewer may log out too', async () => {
    const admin = await web().loginAdmin();
    const withoutCsrf = await web().request({
      method: 'POST',
      path: 'auth/logout',
      as: { session: admin, csrf: false },
    });
    expect(withoutCsrf.statusCode).toBe(403);
    const response = await web().request({
      method: 'POST',
      path: 'auth/logout',
      as: { session: admin },
    });
    expect(response.statusCode).toBe(204);
    const cleared = response.cookies.find((c) => c.name === SESSION_COOKIE);
    expect(cleared).toMatchObject({ value: '', path: '/dicom-server' });
    expect((await web().request({ path: 'auth/me', as: { session: admin } })).statusCode).toBe(401);
    const viewer = await web().viewer();
    expect(
      (await web().request({ method: 'POST', path: 'auth/logout', as: { session: viewer } }))
        .statusCode,
    ).toBe(204);
    expect((await web().request({ path: 'status/', as: { session: viewer } })).statusCode).toBe(
      401,
    );
  });

  it('needs a login for everything else, unknown routes included', async () => {
    for (const path of ['status/', 'settings/', 'users/', 'openapi.json', 'no-such-route']) {
      const response = await web().request({ path });
      expect(response.statusCode, path).toBe(401);
      expect(response.json()).toEqual({ error: 'login required' });
    }
  });
});

/** A changing route, how to call it, and what an administrator's bearer call answers. */
interface ChangingRoute {
  readonly method: 'POST' | 'PATCH' | 'DELETE';
  readonly path: string;
  readonly body?: unknown;
  readonly expected: number;
  /** Any logged-in user may call it (the viewer check is elsewhere). */
  readonly isAnyRole?: boolean;
  readonly prepare?: (web: WebTest, admin: WebSession) => Promise<string>;
}

const CHANGING_ROUTES: readonly ChangingRoute[] = [
  { method: 'PATCH', path: 'settings/', body: { max_associations: 12 }, expected: 200 },
  { method: 'POST', path: 'ae-titles/', body: { ae_title: 'ACL_AE' }, expected: 201 },
  {
    method: 'PATCH',
    path: 'ae-titles/ACL_AE',
    body: { description: 'changed by a token' },
    expected: 200,
  },
  // No host and port: the route's own answer, past the authorisation.
  { method: 'POST', path: 'ae-titles/ACL_AE/echo', expected: 400 },
  { method: 'DELETE', path: 'ae-titles/ACL_AE', expected: 204 },
  { method: 'POST', path: 'service/stop', expected: 200 },
  { method: 'POST', path: 'service/start', expected: 200 },
  { method: 'POST', path: 'service/restart', expected: 200 },
  {
    method: 'POST',
    path: 'users/',
    body: { username: 'acl-user', password: 'acl-password-1' },
    expected: 201,
  },
  { method: 'PATCH', path: 'users/acl-user', body: { role: 'admin' }, expected: 200 },
  { method: 'DELETE', path: 'users/acl-user', expected: 204 },
  { method: 'POST', path: 'tokens/', body: { name: 'acl' }, expected: 201, isAnyRole: true },
  {
    method: 'DELETE',
    path: 'tokens/:id',
    expected: 204,
    prepare: async (web, admin) => {
      const response = await web.request({
        method: 'POST',
        path: 'tokens/',
        as: { session: admin },
        body: { name: 'to revoke' },
      });
      return `tokens/${response.json().id}`;
    },
  },
  // No such association: the route's own answer, past the authorisation.
  { method: 'DELETE', path: 'associations/not-open', expected: 404 },
  { method: 'POST', path: 'auth/logout', expected: 204, isAnyRole: true },
];

describe('who may change what', () => {
  const web = useWebTest();
  let admin: WebSession;
  let otherAdmin: WebSession;
  let viewer: WebSession;
  let adminToken: string;

  beforeAll(async () => {
    admin = await web().loginAdmin();
    otherAdmin = await web().loginAdmin();
    viewer = await web().viewer();
    adminToken = await web().createToken(admin, 'acl admin');
  });

  for (const route of CHANGING_ROUTES) {
    it(`${route.method} ${route.path}: 401, 403 for a viewer, 403 without CSRF, ${route.expected} with a bearer token`, async () => {
      const path = route.prepare === undefined ? route.path : await route.prepare(web(), admin);
      const call = (as: As) =>
        web().request({
          method: route.method,
          path,
          as,
          ...(route.body !== undefined && { body: route.body }),
        });
      const anonymous = await call(undefined);
      expect(anonymous.statusCode).toBe(401);
      expect(anonymous.json()).toEqual({ error: 'login required' });
      if (route.isAnyRole !== true) {
        const byViewer = await call({ session: viewer });
        expect(byViewer.statusCode).toBe(403);
        expect(byViewer.json().error).toEqual(expect.any(String));
      }
      const noCsrf = await call({ session: admin, csrf: false });
      expect(noCsrf.statusCode).toBe(403);
      expect(noCsrf.json().error).toMatch(/CSRF/);
      // Another session's token is not this one's.
      const wrongCsrf = await call({ session: admin, csrf: otherAdmin.csrfToken });
      expect(wrongCsrf.statusCode).toBe(403);
      const byToken = await call({ token: adminToken });
      expect(byToken.statusCode, byToken.body).toBe(route.expected);
    });
  }

  it("keeps a viewer's token read-only", async () => {
    const token = await web().createToken(viewer, 'viewer script');
    expect((await web().request({ path: 'status/', as: { token } })).statusCode).toBe(200);
    const change = await web().request({
      method: 'PATCH',
      path: 'settings/',
      as: { token },
      body: { max_associations: 13 },
    });
    expect(change.statusCode).toBe(403);
  });
});

describe('status and service control', () => {
  const web = useWebTest();
  let admin: WebSession;

  beforeAll(async () => {
    admin = await web().loginAdmin();
    await web().context.controller.start();
  });

  const status = async (as: As = { session: admin }) => {
    const response = await web().request({ path: 'status/', as });
    expect(response.statusCode).toBe(200);
    return response.json();
  };
  const control = (action: string) =>
    web().request({ method: 'POST', path: `service/${action}`, as: { session: admin } });

  it('reports state, uptime, network, associations, totals and storage, to a viewer too', async () => {
    const viewer = await web().viewer();
    const body = await status({ session: viewer });
    expect(body).toMatchObject({
      state: 'running',
      uptimeSeconds: expect.any(Number),
      aeTitle: 'DRAW_SCP',
      host: '127.0.0.1',
      port: web().dicomPort,
      activeAssociations: 0,
      filesReceived: 0,
      storageUsedBytes: 0,
      storageLimitBytes: 100 * 1024 ** 3,
      maxAssociations: 10,
    });
    expect(body.uptimeSeconds).toBeGreaterThanOrEqual(0);
  });

  it('stops, starts and restarts the service', async () => {
    const stopped = await control('stop');
    expect(stopped.statusCode).toBe(200);
    expect(stopped.json()).toMatchObject({ state: 'stopped', port: null, uptimeSeconds: null });
    expect(await accepts(web().dicomPort)).toBe(false);
    // Stopping a stopped service is no error.
    expect((await control('stop')).statusCode).toBe(200);
    const started = await control('start');
    expect(started.statusCode).toBe(200);
    expect(started.json()).toMatchObject({ state: 'running', port: web().dicomPort });
    expect(await echoOwn(web(), 'STATUS_SCU')).toBe(0);
    const before = started.json().startedAt;
    const restarted = await control('restart');
    expect(restarted.statusCode).toBe(200);
    expect(restarted.json().state).toBe('running');
    expect(restarted.json().startedAt).not.toBe(before);
    expect(await echoOwn(web(), 'STATUS_SCU')).toBe(0);
    const entries = await auditEntries(web(), { session: admin });
    for (const action of ['service stop', 'service start', 'service restart']) {
      expect(entries).toContainEqual(
        expect.objectContaining({ action, outcome: 'success', username: 'admin' }),
      );
    }
  });

  it('answers 409 with the reason when the service cannot start (port taken)', async () => {
    expect((await control('stop')).statusCode).toBe(200);
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(web().dicomPort, '127.0.0.1', resolve));
    try {
      const response = await control('start');
      expect(response.statusCode).toBe(409);
      expect(response.json().error).toBe(
        `could not start: port ${web().dicomPort} is already in use on 127.0.0.1`,
      );
      expect(await status()).toMatchObject({
        state: 'error',
        lastError: `port ${web().dicomPort} is already in use on 127.0.0.1`,
      });
      expect(await auditEntries(web(), { session: admin })).toContainEqual(
        expect.objectContaining({ action: 'service start', outcome: 'failure' }),
      );
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
    expect((await control('start')).json()).toMatchObject({ state: 'running' });
  });

  it('applies a new port at the restart, not before', async () => {
    const newPort = await freePort();
    const patched = await web().request({
      method: 'PATCH',
      path: 'settings/',
      as: { session: admin },
      body: { port: newPort, max_storage_size_gb: 0 },
    });
    expect(patched.json().restartRequired).toEqual(['port', 'max_storage_size_gb']);
    expect((await status()).port).toBe(web().dicomPort);
    // The storage limit is read from the settings: 0 is no limit.
    expect((await status()).storageLimitBytes).toBeNull();
    expect((await control('restart')).json()).toMatchObject({ state: 'running', port: newPort });
    expect(await accepts(web().dicomPort)).toBe(false);
    expect(await accepts(newPort)).toBe(true);
  });
});

describe('settings', () => {
  const web = useWebTest();
  let admin: WebSession;

  beforeAll(async () => {
    admin = await web().loginAdmin();
    await web().context.controller.start();
  });

  const getSettings = async () => {
    const response = await web().request({ path: 'settings/', as: { session: admin } });
    expect(response.statusCode).toBe(200);
    return response.json();
  };
  const patch = (body: unknown) =>
    web().request({ method: 'PATCH', path: 'settings/', as: { session: admin }, body });

  it('shows every setting, stored and in effect, the overridden ones and those needing a restart', async () => {
    const body = await getSettings();
    expect(Object.keys(body.settings).sort()).toEqual([...SETTING_KEYS].sort());
    expect(body.settings).toMatchObject({ host: '127.0.0.1', port: web().dicomPort });
    expect(body.version).toEqual(expect.any(Number));
    expect(body.overridden).toEqual([]);
    expect(body.effective).toEqual(body.settings);
    expect([...body.restartSettings].sort()).toEqual([...RESTART_SETTINGS].sort());
  });

  it('answers 400 with a message per invalid field and changes nothing', async () => {
    const before = await getSettings();
    const response = await patch({ port: 80, max_associations: 'many', ae_title: 'lower' });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({
      error: 'invalid settings',
      fields: {
        port: 'must be at least 1024',
        max_associations: 'must be a number',
        ae_title: 'must be uppercase',
      },
    });
    const after = await getSettings();
    expect(after.version).toBe(before.version);
    expect(after.settings).toEqual(before.settings);
  });

  it('names an unknown setting, and refuses a body that is not an object', async () => {
    const unknown = await patch({ no_such_setting: 1, port: 11113 });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().fields).toEqual({ no_such_setting: 'is not a known setting' });
    const list = await patch([{ port: 11113 }]);
    expect(list.statusCode).toBe(400);
    expect(list.json().error).toBe('invalid request');
  });

  it('lists the changed settings and those that wait for a restart', async () => {
    const newPort = await freePort();
    const response = await patch({
      port: newPort,
      logging_level: 'DEBUG',
      ae_title: 'DRAW_SCP',
      acse_timeout: 20,
    });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body.changed).toEqual(['port', 'acse_timeout', 'logging_level']);
    expect(body.restartRequired).toEqual(['port', 'acse_timeout']);
    expect(body.settings).toMatchObject({ port: newPort, logging_level: 'DEBUG' });
    expect((await getSettings()).effective).toMatchObject({ port: newPort, acse_timeout: 20 });
    const entries = await auditEntries(web(), { session: admin });
    expect(entries[0]).toMatchObject({
      username: 'admin',
      action: 'settings change',
      outcome: 'success',
      detail: 'port, acse_timeout, logging_level',
    });
    // Back, so that the next test's service still listens where the settings say.
    expect((await patch({ port: web().dicomPort })).statusCode).toBe(200);
  });

  it('gives the running service a live setting at its next association', async () => {
    expect(await echoOwn(web(), 'UNLISTED_SCU')).toBe(0);
    const on = await patch({ require_calling_ae_validation: true });
    expect(on.json().restartRequired).toEqual([]);
    expect(await echoOwn(web(), 'UNLISTED_SCU')).toBe('ERR_ASSOCIATION_REJECTED');
    expect((await patch({ require_calling_ae_validation: false })).statusCode).toBe(200);
    expect(await echoOwn(web(), 'UNLISTED_SCU')).toBe(0);
  });
});

describe('allowed AE titles', () => {
  const web = useWebTest();
  let admin: WebSession;

  beforeAll(async () => {
    admin = await web().loginAdmin();
    await web().context.controller.start();
  });

  const call = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown) =>
    web().request({ method, path, as: { session: admin }, ...(body !== undefined && { body }) });

  it('adds, lists, reads, changes and removes an AE title', async () => {
    expect((await call('GET', 'ae-titles/')).json()).toEqual([]);
    const created = await call('POST', 'ae-titles/', {
      ae_title: ' MODALITY1 ',
      description: 'CT room 1',
      expected_ip: '10.0.0.1',
    });
    expect(created.statusCode).toBe(201);
    const expected = {
      ae_title: 'MODALITY1',
      description: 'CT room 1',
      expected_ip: '10.0.0.1',
      is_active: true,
      host: '',
      port: null,
      may_store: true,
      may_query: true,
      may_retrieve: true,
      is_move_destination: true,
      use_tls: false,
    };
    expect(created.json()).toEqual(expected);
    expect((await call('GET', 'ae-titles/')).json()).toEqual([expected]);
    expect((await call('GET', 'ae-titles/MODALITY1')).json()).toEqual(expected);
    const changed = await call('PATCH', 'ae-titles/MODALITY1', {
      may_store: false,
      host: 'modality1.example',
      port: 104,
      use_tls: true,
    });
    expect(changed.statusCode).toBe(200);
    expect(changed.json()).toEqual({
      ...expected,
      may_store: false,
      host: 'modality1.example',
      port: 104,
      use_tls: true,
    });
    expect((await call('GET', 'ae-titles/MODALITY1')).json().may_store).toBe(false);
    expect((await call('DELETE', 'ae-titles/MODALITY1')).statusCode).toBe(204);
    expect((await call('GET', 'ae-titles/MODALITY1')).statusCode).toBe(404);
    const entries = await auditEntries(web(), { session: admin });
    expect(entries.map((e) => [e.action, e.outcome, e.username, e.detail]).slice(0, 3)).toEqual([
      ['AE title remove', 'success', 'admin', 'MODALITY1'],
      ['AE title change', 'success', 'admin', 'MODALITY1: may_store, host, port, use_tls'],
      ['AE title add', 'success', 'admin', 'MODALITY1'],
    ]);
  });

  it('answers 409 for a title already listed', async () => {
    expect((await call('POST', 'ae-titles/', { ae_title: 'TWICE' })).statusCode).toBe(201);
    const again = await call('POST', 'ae-titles/', { ae_title: 'TWICE' });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toEqual({
      error: 'invalid AE title',
      fields: { ae_title: 'is already in the list' },
    });
  });

  it('answers 400 with a message per invalid field', async () => {
    const response = await call('POST', 'ae-titles/', {
      ae_title: 'SEVENTEEN_LETTERS',
      expected_ip: 'somewhere',
      is_active: 'yes',
      colour: 'red',
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().fields).toEqual({
      ae_title: 'must be at most 16 characters',
      expected_ip: 'must be an IPv4 or IPv6 address or CIDR range, or empty',
      is_active: 'must be true or false',
      colour: 'is not a known field',
    });
    const hostOnly = await call('POST', 'ae-titles/', { ae_title: 'HOST_ONLY', host: 'pacs' });
    expect(hostOnly.statusCode).toBe(400);
    expect(hostOnly.json().fields).toEqual({
      port: 'host and port go together (a move destination)',
    });
    const badChange = await call('PATCH', 'ae-titles/TWICE', { port: 70_000, host: 'pacs' });
    expect(badChange.statusCode).toBe(400);
    expect(badChange.json().fields.port).toEqual(expect.any(String));
    const longTitle = await call('GET', `ae-titles/${'X'.repeat(17)}`);
    expect(longTitle.statusCode).toBe(400);
    expect(longTitle.json().fields).toHaveProperty('title');
  });

  it('answers 404 for a title not in the list', async () => {
    for (const [method, path, body] of [
      ['GET', 'ae-titles/UNKNOWN', undefined],
      ['PATCH', 'ae-titles/UNKNOWN', { description: 'x' }],
      ['DELETE', 'ae-titles/UNKNOWN', undefined],
      ['POST', 'ae-titles/UNKNOWN/echo', undefined],
    ] as const) {
      const response = await call(method, path, body);
      expect(response.statusCode, `${method} ${path}`).toBe(404);
      expect(response.json()).toEqual({ error: 'AE title UNKNOWN is not in the list' });
    }
  });

  it('echoes an AE title: our own listening service succeeds, a closed port does not', async () => {
    const closedPort = await freePort();
    await call('POST', 'ae-titles/', {
      ae_title: 'DRAW_SCP',
      host: '127.0.0.1',
      port: web().dicomPort,
    });
    await call('POST', 'ae-titles/', { ae_title: 'CLOSED', host: '127.0.0.1', port: closedPort });
    await call('POST', 'ae-titles/', { ae_title: 'NO_ADDRESS' });
    const ok = await call('POST', 'ae-titles/DRAW_SCP/echo');
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ isSuccess: true, status: 0, durationMs: expect.any(Number) });
    const closed = await call('POST', 'ae-titles/CLOSED/echo');
    expect(closed.statusCode).toBe(200);
    expect(closed.json()).toEqual({
      isSuccess: false,
      error: expect.any(String),
      durationMs: expect.any(Number),
    });
    const noAddress = await call('POST', 'ae-titles/NO_ADDRESS/echo');
    expect(noAddress.statusCode).toBe(400);
    expect(noAddress.json()).toEqual({ error: 'AE title NO_ADDRESS has no host and port to echo' });
  });

  it('lists the calling AE titles seen lately, and whether each is listed', async () => {
    expect(await echoOwn(web(), 'STRANGER')).toBe(0);
    expect((await call('POST', 'ae-titles/DRAW_SCP/echo')).json().isSuccess).toBe(true);
    const seen = await eventually(async () => {
      const list = (await call('GET', 'ae-titles/seen')).json() as {
        callingAe: string;
        isListed: boolean;
      }[];
      return list.some((s) => s.callingAe === 'STRANGER') &&
        list.some((s) => s.callingAe === 'DRAW_SCP')
        ? list
        : undefined;
    }, 'both calling AE titles in the seen list');
    expect(seen.find((s) => s.callingAe === 'STRANGER')).toMatchObject({
      isListed: false,
      remoteAddress: '127.0.0.1',
      associations: 1,
      lastStatus: 'success',
    });
    expect(seen.find((s) => s.callingAe === 'DRAW_SCP')).toMatchObject({ isListed: true });
    for (const hours of ['0', '-1', 'abc', String(24 * 365 + 1)]) {
      const response = await web().request({
        path: 'ae-titles/seen',
        as: { session: admin },
        query: { hours },
      });
      expect(response.statusCode, hours).toBe(400);
      expect(response.json().fields).toHaveProperty('hours');
    }
  });
});

/** A transaction row to insert. */
function record(occurredAt: string, fields: Partial<TransactionRecord> = {}): TransactionRecord {
  return {
    occurredAt,
    type: 'C-ECHO',
    status: 'success',
    associationId: 'a1',
    callingAe: 'SCU_A',
    calledAe: 'DRAW_SCP',
    remoteAddress: '10.9.0.1',
    remotePort: 40_000,
    ...fields,
  };
}

describe('transactions, CSV, audit and recent studies', () => {
  const web = useWebTest();
  let admin: WebSession;
  let viewer: WebSession;

  beforeAll(async () => {
    admin = await web().loginAdmin();
    viewer = await web().viewer();
    await web().context.transactions.insert([
      record('2024-01-01T10:00:00.000Z', { type: 'ASSOCIATE' }),
      record('2024-01-01T11:00:00.000Z', { type: 'C-STORE', bytes: 1234 }),
      record('2024-01-01T12:00:00.000Z', {
        type: 'C-STORE',
        status: 'failure',
        statusCode: 0xa700,
      }),
      record('2024-01-02T10:00:00.000Z', { callingAe: 'SCU_B' }),
      record('2024-01-02T11:00:00.000Z', { callingAe: 'SCU_B', type: 'C-FIND' }),
      record('2024-01-03T10:00:00.000Z', {
        type: 'ASSOCIATE',
        status: 'rejected',
        callingAe: 'EVIL',
        message: '=HYPERLINK("http://x","click"), then "quotes"',
        patientId: '@SUM(A1)',
      }),
      record('2024-01-03T11:00:00.000Z', { type: 'RELEASE', message: '+1\nsecond line' }),
    ]);
  });

  const list = async (query: Record<string, string> = {}, as: As = { session: viewer }) => {
    const response = await web().request({ path: 'transactions/', as, query });
    expect(response.statusCode, response.body).toBe(200);
    return response.json() as {
      rows: { id: number; occurred_at: string; type: string; calling_ae: string }[];
      nextBefore: number | null;
      total: number;
    };
  };

  it('lists the rows newest first, a page at a time, with the total', async () => {
    const all = await list();
    expect(all.total).toBe(7);
    expect(all.nextBefore).toBeNull();
    expect(all.rows.map((r) => r.occurred_at)).toEqual(
      [...all.rows.map((r) => r.occurred_at)].sort().reverse(),
    );
    const ids: number[] = [];
    let before: number | null | undefined;
    let pages = 0;
    do {
      const page = await list({
        limit: '3',
        ...(before !== undefined && before !== null && { before: String(before) }),
      });
      expect(page.total).toBe(7);
      expect(page.rows.length).toBeLessThanOrEqual(3);
      ids.push(...page.rows.map((r) => r.id));
      before = page.nextBefore;
      if (before !== null) expect(before).toBe(page.rows.at(-1)?.id);
      pages += 1;
    } while (before !== null && pages < 10);
    expect(pages).toBe(3);
    expect(ids).toEqual(all.rows.map((r) => r.id));
  });

  it('filters by type, status, AE title (calling or called) and time', async () => {
    const count = async (query: Record<string, string>) => {
      const page = await list(query);
      expect(page.rows).toHaveLength(page.total);
      return page;
    };
    expect((await count({ type: 'C-STORE' })).total).toBe(2);
    expect((await count({ type: 'C-STORE', status: 'failure' })).total).toBe(1);
    expect((await count({ status: 'rejected' })).rows[0]?.calling_ae).toBe('EVIL');
    expect((await count({ ae: 'SCU_B' })).total).toBe(2);
    expect((await count({ ae: 'DRAW_SCP' })).total).toBe(7);
    // since inclusive, until exclusive.
    expect(
      (await count({ since: '2024-01-02T10:00:00Z', until: '2024-01-03T10:00:00Z' })).total,
    ).toBe(2);
    // An offset is converted: 12:00+02:00 is 10:00Z.
    expect((await count({ since: '2024-01-03T12:00:00+02:00' })).total).toBe(2);
    expect((await count({ ae: 'NOBODY' })).total).toBe(0);
  });

  it('names each invalid query value', async () => {
    const cases: [Record<string, string>, string][] = [
      [{ limit: '0' }, 'limit'],
      [{ limit: '501' }, 'limit'],
      [{ limit: 'ten' }, 'limit'],
      [{ limit: '2.5' }, 'limit'],
      [{ before: '0' }, 'before'],
      [{ before: 'x' }, 'before'],
      [{ type: 'C-PUSH' }, 'type'],
      [{ status: 'fine' }, 'status'],
      [{ ae: 'A'.repeat(17) }, 'ae'],
      [{ since: 'yesterday' }, 'since'],
      [{ until: '2024-01-01' }, 'until'],
    ];
    for (const [query, field] of cases) {
      const response = await web().request({
        path: 'transactions/',
        as: { session: viewer },
        query,
      });
      expect(response.statusCode, JSON.stringify(query)).toBe(400);
      expect(response.json().error).toBe('invalid request');
      expect(Object.keys(response.json().fields), JSON.stringify(query)).toEqual([field]);
    }
    expect(
      (
        await web().request({
          path: 'transactions/',
          as: { session: viewer },
          query: { since: 'x' },
        })
      ).json().fields.since,
    ).toBe('must be an ISO 8601 time');
  });

  it('exports CSV: a header, quoted fields, formulas defused, filters applied', async () => {
    const response = await web().request({
      path: 'transactions/export.csv',
      as: { session: viewer },
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(response.headers['content-disposition']).toBe('attachment; filename="transactions.csv"');
    const text = response.body;
    expect(text.endsWith('\r\n')).toBe(true);
    const [header] = text.split('\r\n');
    expect(header).toBe(
      'id,occurred_at,type,status,status_code,calling_ae,called_ae,remote_address,remote_port,' +
        'sop_class_uid,sop_instance_uid,patient_id,study_instance_uid,series_instance_uid,' +
        'file_path,bytes,duration_ms,transfer_rate_mbps,message,association_id',
    );
    // The rejected row: a formula in a quoted message, a formula in the patient ID.
    expect(text).toContain(
      `,'@SUM(A1),,,,,,,"'=HYPERLINK(""http://x"",""click""), then ""quotes""",a1\r\n`,
    );
    // A leading + is defused too, and a line break keeps the field quoted.
    expect(text).toContain(`,"'+1\nsecond line",a1\r\n`);
    // Numbers stay numbers.
    expect(text).toContain(',C-STORE,failure,42752,SCU_A,DRAW_SCP,10.9.0.1,40000,');
    expect(text).toContain(',1234,');
    const filtered = await web().request({
      path: 'transactions/export.csv',
      as: { session: viewer },
      query: { ae: 'SCU_B' },
    });
    const lines = filtered.body.split('\r\n').filter((line) => line !== '');
    expect(lines).toHaveLength(3);
    expect(lines.slice(1).every((line) => line.includes(',SCU_B,'))).toBe(true);
    const invalid = await web().request({
      path: 'transactions/export.csv',
      as: { session: viewer },
      query: { status: 'fine' },
    });
    expect(invalid.statusCode).toBe(400);
    expect(invalid.json().fields).toHaveProperty('status');
  });

  it('records logins, failed logins and changes in the audit log, with who and where', async () => {
    await web().request({
      method: 'POST',
      path: 'auth/login',
      body: { username: 'admin', password: 'not-it' },
      remoteAddress: '10.5.0.1',
    });
    await web().request({
      method: 'POST',
      path: 'ae-titles/',
      as: { session: admin },
      body: { ae_title: 'AUDITED' },
    });
    const entries = await auditEntries(web(), { session: viewer });
    expect(entries[0]).toMatchObject({
      username: 'admin',
      action: 'AE title add',
      outcome: 'success',
      remote_address: '127.0.0.1',
      detail: 'AUDITED',
    });
    expect(entries[1]).toMatchObject({
      username: 'admin',
      action: 'login',
      outcome: 'failure',
      remote_address: '10.5.0.1',
    });
    expect(entries).toContainEqual(
      expect.objectContaining({ username: 'viewer1', action: 'login', outcome: 'success' }),
    );
    // Pages by id, newest first.
    const first = await web().request({
      path: 'audit/',
      as: { session: viewer },
      query: { limit: '2' },
    });
    expect(first.json().map((e: { id: number }) => e.id)).toEqual(
      entries.slice(0, 2).map((e) => e.id),
    );
    const second = await web().request({
      path: 'audit/',
      as: { session: viewer },
      query: { limit: '2', before: String(entries[1]?.id) },
    });
    expect(second.json().map((e: { id: number }) => e.id)).toEqual(
      entries.slice(2, 4).map((e) => e.id),
    );
    for (const query of [{ limit: '0' }, { before: 'x' }] as Record<string, string>[]) {
      const response = await web().request({ path: 'audit/', as: { session: viewer }, query });
      expect(response.statusCode).toBe(400);
    }
  });

  it('lists the studies received lately, after a C-STORE from our own SCU', async () => {
    await web().context.controller.start();
    const file = join(TESTDATA_DICOM, 'CT_small.dcm');
    const sendable = await inspectFile(file);
    const summary = await sendFiles([file], {
      host: '127.0.0.1',
      port: web().dicomPort,
      callingAeTitle: 'STORE_SCU',
      calledAeTitle: 'DRAW_SCP',
    });
    expect(summary.failed).toEqual([]);
    const response = await web().request({ path: 'studies/recent', as: { session: viewer } });
    expect(response.statusCode).toBe(200);
    const studies = response.json();
    expect(studies).toHaveLength(1);
    expect(studies[0]).toMatchObject({
      studyInstanceUid: expect.stringMatching(/^[\d.]+$/),
      modalitiesInStudy: 'CT',
      numberOfSeries: 1,
      numberOfInstances: 1,
    });
    const index = await web().context.index.findInstance(sendable.sopInstanceUid);
    expect(index).toBeDefined();
    const status = (await web().request({ path: 'status/', as: { session: viewer } })).json();
    expect(status.filesReceived).toBe(1);
    expect(status.storageUsedBytes).toBeGreaterThan(0);
    const stored = await eventually(async () => {
      const page = await list({ type: 'C-STORE', ae: 'STORE_SCU' });
      return page.total === 1 ? page : undefined;
    }, 'the C-STORE row');
    expect(stored.rows[0]).toMatchObject({ sop_instance_uid: sendable.sopInstanceUid });
    const limited = await web().request({
      path: 'studies/recent',
      as: { session: viewer },
      query: { limit: '0' },
    });
    expect(limited.statusCode).toBe(400);
  });
});

/** Server-sent events read from a real connection. */
interface EventStream {
  next(event: string, test?: (data: unknown) => boolean): Promise<unknown>;
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
      expect(response.headers['content-type']).toBe('text/event-stream');
      response.setEncoding('utf8');
      const received: { event: string; data: unknown }[] = [];
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
            received.push({ event, data: JSON.parse(data) });
          }
        }
        for (const waiter of waiters.splice(0)) waiter();
      });
      resolve({
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
            5_000,
            `event ${event}`,
          ),
        close: () => request.destroy(),
      });
    });
  });
}

describe('server-sent events', () => {
  const web = useWebTest();
  let base: string;

  beforeAll(async () => {
    base = await web().app.listen({ host: '127.0.0.1', port: 0 });
  });

  it('sends the status first, then status changes and transaction rows as they come', async () => {
    const admin = await web().loginAdmin();
    const baseline = web().context.events.listenerCount('status');
    const stream = await openEvents(`${base}${apiUrl('events/')}`, admin.cookie);
    expect(await stream.next('status')).toMatchObject({ state: 'stopped', aeTitle: 'DRAW_SCP' });
    const started = await web().request({
      method: 'POST',
      path: 'service/start',
      as: { session: admin },
    });
    expect(started.statusCode).toBe(200);
    expect(
      await stream.next('status', (data) => (data as { state: string }).state === 'running'),
    ).toMatchObject({ port: web().dicomPort });
    expect(await echoOwn(web(), 'SSE_SCU')).toBe(0);
    const rows = (await stream.next('transactions', (data) =>
      (data as { callingAe: string; type: string }[]).some((row) => row.type === 'C-ECHO'),
    )) as { callingAe: string; type: string }[];
    expect(rows.find((row) => row.type === 'C-ECHO')).toMatchObject({ callingAe: 'SSE_SCU' });
    stream.close();
    // A closed stream stops listening.
    await eventually(
      async () =>
        web().context.events.listenerCount('status') === baseline &&
        web().context.events.listenerCount('transactions') === 0
          ? true
          : undefined,
      'the closed stream to stop listening',
    );
  });

  it('needs a login', async () => {
    const response = await fetch(`${base}${apiUrl('events/')}`);
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: 'login required' });
  });
});

describe('users and API tokens', () => {
  const web = useWebTest();
  let admin: WebSession;

  beforeAll(async () => {
    admin = await web().loginAdmin();
  });

  const call = (
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    path: string,
    body?: unknown,
    as: As = { session: admin },
  ) => web().request({ method, path, as, ...(body !== undefined && { body }) });

  it('lists the users without their password hashes', async () => {
    const response = await call('GET', 'users/');
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual([
      {
        id: expect.any(Number),
        username: 'admin',
        role: 'admin',
        createdAt: expect.any(String),
        lastLoginAt: expect.any(String),
      },
    ]);
    expect(response.body).not.toMatch(/argon2|hash/i);
  });

  it('adds a user (a viewer unless said otherwise) who can then log in', async () => {
    const created = await call('POST', 'users/', {
      username: 'alice',
      password: 'alice-password-1',
    });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ username: 'alice', role: 'viewer', lastLoginAt: null });
    const alice = await web().login('alice', 'alice-password-1');
    const me = await call('GET', 'auth/me', undefined, { session: alice });
    expect(me.json().user).toEqual({ username: 'alice', role: 'viewer' });
    const taken = await call('POST', 'users/', { username: 'alice', password: 'other-password' });
    expect(taken.statusCode).toBe(409);
    expect(taken.json()).toEqual({ error: 'invalid user', fields: { username: 'is taken' } });
    const byViewer = await call(
      'POST',
      'users/',
      { username: 'mallory', password: 'mallory-password', role: 'admin' },
      { session: alice },
    );
    expect(byViewer.statusCode).toBe(403);
    expect(
      (await call('GET', 'users/')).json().map((u: { username: string }) => u.username),
    ).toEqual(['admin', 'alice']);
  });

  it('checks the username, the password rules and the role', async () => {
    const response = await call('POST', 'users/', {
      username: 'bad name!',
      password: 'short',
      role: 'root',
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().fields).toEqual({
      username: 'may hold letters, digits and . _ @ - only',
      password: 'must be at least 10 characters',
      role: expect.any(String),
    });
    const long = await call('POST', 'users/', { username: 'bob', password: 'x'.repeat(1001) });
    expect(long.json().fields).toEqual({ password: 'must be at most 1000 characters' });
    const missing = await call('POST', 'users/', { username: 'bob' });
    expect(missing.json().fields).toHaveProperty('password');
  });

  it("changes a user's role (at once, for an open session) and password (ending its sessions)", async () => {
    const password = await web().addUser('carol', 'viewer');
    const carol = await web().login('carol', password);
    const tryChange = () =>
      call('PATCH', 'settings/', { max_associations: 11 }, { session: carol });
    expect((await tryChange()).statusCode).toBe(403);
    const promoted = await call('PATCH', 'users/carol', { role: 'admin' });
    expect(promoted.statusCode).toBe(200);
    expect(promoted.json()).toMatchObject({ username: 'carol', role: 'admin' });
    expect((await tryChange()).statusCode).toBe(200);
    const newPassword = await call('PATCH', 'users/carol', { password: 'carol-new-password' });
    expect(newPassword.statusCode).toBe(200);
    expect((await call('GET', 'auth/me', undefined, { session: carol })).statusCode).toBe(401);
    await web().login('carol', 'carol-new-password', '10.6.0.1');
    await expect(web().login('carol', password, '10.6.0.2')).rejects.toThrow(/401/);
    expect((await call('PATCH', 'users/nobody', { role: 'admin' })).statusCode).toBe(404);
    const invalid = await call('PATCH', 'users/carol', { password: 'short', role: 'boss' });
    expect(invalid.statusCode).toBe(400);
    expect(Object.keys(invalid.json().fields).sort()).toEqual(['password', 'role']);
  });

  it('does not let an administrator demote or remove themselves', async () => {
    const demote = await call('PATCH', 'users/admin', { role: 'viewer' });
    expect(demote.statusCode).toBe(400);
    expect(demote.json()).toEqual({ error: 'you cannot change your own role' });
    // Another administrator may.
    const password = await web().addUser('erin', 'admin');
    const erin = await web().login('erin', password);
    expect(
      (await call('PATCH', 'users/erin', { role: 'admin' }, { session: erin })).statusCode,
    ).toBe(200);
    expect((await call('PATCH', 'users/erin', { role: 'viewer' })).json().role).toBe('viewer');
    const remove = await call('DELETE', 'users/admin');
    expect(remove.statusCode).toBe(400);
    expect(remove.json()).toEqual({ error: 'you cannot remove yourself' });
    const me = await call('GET', 'auth/me');
    expect(me.json().user.role).toBe('admin');
  });

  it('removes a user, ending their sessions and tokens', async () => {
    const password = await web().addUser('dave', 'admin');
    const dave = await web().login('dave', password);
    const token = await web().createToken(dave, 'dave script');
    expect((await call('DELETE', 'users/dave')).statusCode).toBe(204);
    expect((await call('GET', 'status/', undefined, { session: dave })).statusCode).toBe(401);
    expect((await call('GET', 'status/', undefined, { token })).statusCode).toBe(401);
    expect((await call('DELETE', 'users/dave')).statusCode).toBe(404);
    expect((await call('GET', 'tokens/')).json()).not.toContainEqual(
      expect.objectContaining({ username: 'dave' }),
    );
    expect(await auditEntries(web(), { session: admin })).toContainEqual(
      expect.objectContaining({ action: 'user remove', detail: 'dave', username: 'admin' }),
    );
  });

  it('creates a token whose secret is shown once; it works without CSRF until revoked', async () => {
    const created = await call('POST', 'tokens/', { name: ' nightly export ' });
    expect(created.statusCode).toBe(201);
    const { token, id, name } = created.json();
    expect(name).toBe('nightly export');
    expect(token).toMatch(/^[\w-]{40,}$/);
    const listed = await call('GET', 'tokens/');
    expect(listed.json()).toContainEqual({
      id,
      name: 'nightly export',
      username: 'admin',
      createdAt: expect.any(String),
      lastUsedAt: null,
    });
    expect(listed.body).not.toContain(token);
    expect(listed.body).not.toMatch(/hash|secret|"token"/);
    const change = await web().request({
      method: 'PATCH',
      path: 'settings/',
      as: { token },
      body: { max_associations: 9 },
    });
    expect(change.statusCode).toBe(200);
    const used = (await call('GET', 'tokens/')).json().find((t: { id: number }) => t.id === id);
    expect(used.lastUsedAt).toEqual(expect.any(String));
    expect((await call('DELETE', `tokens/${id}`)).statusCode).toBe(204);
    expect((await web().request({ path: 'status/', as: { token } })).statusCode).toBe(401);
    expect((await call('DELETE', `tokens/${id}`)).statusCode).toBe(404);
    expect((await call('DELETE', 'tokens/abc')).statusCode).toBe(400);
    expect((await call('POST', 'tokens/', { name: '  ' })).json().fields).toEqual({
      name: 'must not be empty',
    });
  });

  it("lets a viewer make and revoke their own read-only token, not another's", async () => {
    const viewer = await web().viewer();
    const created = await call('POST', 'tokens/', { name: 'monitoring' }, { session: viewer });
    expect(created.statusCode).toBe(201);
    const { token, id } = created.json();
    expect((await web().request({ path: 'status/', as: { token } })).statusCode).toBe(200);
    const adminTokenId = (await call('POST', 'tokens/', { name: 'admin only' })).json().id;
    const foreign = await call('DELETE', `tokens/${adminTokenId}`, undefined, { session: viewer });
    expect(foreign.statusCode).toBe(403);
    expect((await call('DELETE', `tokens/${id}`, undefined, { session: viewer })).statusCode).toBe(
      204,
    );
    expect((await call('GET', 'tokens/')).json()).toContainEqual(
      expect.objectContaining({ id: adminTokenId }),
    );
  });
});

describe('active associations', () => {
  const web = useWebTest();

  it('lists the open associations and aborts one, audited', async () => {
    const admin = await web().loginAdmin();
    const viewer = await web().viewer();
    const list = async () => {
      const response = await web().request({ path: 'associations/', as: { session: viewer } });
      expect(response.statusCode).toBe(200);
      return response.json() as { id: string }[];
    };
    expect(await list()).toEqual([]);
    await web().context.controller.start();
    const association = await requestAssociation({
      host: '127.0.0.1',
      port: web().dicomPort,
      callingAeTitle: 'LIVE_SCU',
      calledAeTitle: 'DRAW_SCP',
      contexts: [
        {
          abstractSyntax: SopClass.Verification,
          transferSyntaxes: [TransferSyntax.ImplicitVRLittleEndian],
        },
      ],
    });
    const [live] = await eventually(async () => {
      const open = await list();
      return open.length === 1 ? open : undefined;
    }, 'the association in the list');
    expect(live).toMatchObject({
      id: expect.any(String),
      remoteAddress: '127.0.0.1',
      callingAeTitle: 'LIVE_SCU',
      calledAeTitle: 'DRAW_SCP',
      acceptedContexts: [
        {
          abstractSyntax: SopClass.Verification,
          transferSyntax: TransferSyntax.ImplicitVRLittleEndian,
        },
      ],
      operations: 0,
      instancesStored: 0,
    });
    const id = live!.id;
    const byViewer = await web().request({
      method: 'DELETE',
      path: `associations/${id}`,
      as: { session: viewer },
    });
    expect(byViewer.statusCode).toBe(403);
    const aborted = await web().request({
      method: 'DELETE',
      path: `associations/${id}`,
      as: { session: admin },
    });
    expect(aborted.statusCode).toBe(204);
    expect((await within(association.closed, 5_000, 'the abort')).outcome).toBe('aborted-by-peer');
    await eventually(async () => ((await list()).length === 0 ? true : undefined), 'an empty list');
    const again = await web().request({
      method: 'DELETE',
      path: `associations/${id}`,
      as: { session: admin },
    });
    expect(again.statusCode).toBe(404);
    expect(again.json()).toEqual({ error: `no open association ${id}` });
    expect((await auditEntries(web(), { session: admin }))[0]).toMatchObject({
      username: 'admin',
      action: 'association abort',
      outcome: 'success',
      detail: `${id} LIVE_SCU from 127.0.0.1`,
    });
  });
});

describe('the OpenAPI document', () => {
  const web = useWebTest();

  it('needs a login and lists every route', async () => {
    expect((await web().request({ path: 'openapi.json' })).statusCode).toBe(401);
    const admin = await web().loginAdmin();
    const response = await web().request({ path: 'openapi.json', as: { session: admin } });
    expect(response.statusCode).toBe(200);
    const document = response.json();
    expect(document.openapi).toMatch(/^3\./);
    const paths = Object.keys(document.paths).map((path) => path.replace(apiUrl(''), ''));
    expect(paths.sort()).toEqual(
      [
        'health/',
        'auth/login',
        'auth/logout',
        'auth/me',
        'status/',
        'service/start',
        'service/stop',
        'service/restart',
        'events/',
        'settings/',
        'ae-titles/',
        'ae-titles/seen',
        'ae-titles/{title}',
        'ae-titles/{title}/echo',
        'transactions/',
        'transactions/export.csv',
        'audit/',
        'studies/recent',
        'users/',
        'users/{username}',
        'tokens/',
        'tokens/{id}',
        'associations/',
        'associations/{id}',
        'processing/',
        'processing/{id}',
        'processing/claim',
        'processing/{id}/acknowledge',
        'processing/{id}/fail',
        'processing/{id}/retry',
        'series/',
        'series/{uid}',
        'storage/rescan',
        'routing/rules',
        'routing/rules/{id}',
        'routing/destinations',
        'routing/queue',
        'routing/queue/{id}/retry',
      ].sort(),
    );
    expect(Object.keys(document.paths[apiUrl('ae-titles/{title}')]).sort()).toEqual([
      'delete',
      'get',
      'patch',
    ]);
    expect(document.components.securitySchemes).toHaveProperty('bearer');
  });
});

describe('on PostgreSQL', () => {
  const web = useWebTest({ databaseUrl: POSTGRES_URL });

  it('logs in, reads and changes settings, AE titles, users, tokens, transactions and the audit log', async () => {
    const admin = await web().loginAdmin();
    const as = { session: admin };
    expect((await web().request({ path: 'status/', as })).json().state).toBe('stopped');
    const patched = await web().request({
      method: 'PATCH',
      path: 'settings/',
      as,
      body: { max_associations: 20, port: 80 },
    });
    expect(patched.statusCode).toBe(400);
    expect(patched.json().fields).toEqual({ port: 'must be at least 1024' });
    const ok = await web().request({
      method: 'PATCH',
      path: 'settings/',
      as,
      body: { max_associations: 20 },
    });
    expect(ok.json()).toMatchObject({
      changed: ['max_associations'],
      restartRequired: ['max_associations'],
    });
    expect(
      (await web().request({ method: 'POST', path: 'ae-titles/', as, body: { ae_title: 'PG_AE' } }))
        .statusCode,
    ).toBe(201);
    expect(
      (await web().request({ method: 'POST', path: 'ae-titles/', as, body: { ae_title: 'PG_AE' } }))
        .statusCode,
    ).toBe(409);
    const viewer = await web().viewer();
    const token = await web().createToken(viewer, 'pg');
    expect((await web().request({ path: 'ae-titles/', as: { token } })).json()).toHaveLength(1);
    await web().context.transactions.insert([
      record('2024-02-01T10:00:00.000Z', { bytes: 10 }),
      record('2024-02-01T11:00:00.000Z', { type: 'C-STORE', bytes: 20 }),
    ]);
    const page = (await web().request({ path: 'transactions/', as, query: { limit: '1' } })).json();
    expect(page).toMatchObject({ total: 2, rows: [{ type: 'C-STORE', bytes: 20 }] });
    const next = (
      await web().request({
        path: 'transactions/',
        as,
        query: { limit: '1', before: String(page.nextBefore) },
      })
    ).json();
    expect(next).toMatchObject({ nextBefore: null, rows: [{ type: 'C-ECHO', bytes: 10 }] });
    const csv = await web().request({ path: 'transactions/export.csv', as });
    expect(csv.body.split('\r\n').filter((line) => line !== '')).toHaveLength(3);
    const entries = await auditEntries(web(), as);
    expect(entries.map((e) => e.action)).toEqual(
      expect.arrayContaining(['login', 'settings change', 'AE title add', 'token create']),
    );
  });
});
