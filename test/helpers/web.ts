/**
 * The web app for tests: the whole context `serve` assembles (database, settings, live config,
 * service controller, users, auth, logs, index, events) on a temporary data directory, SQLite
 * or a fresh PostgreSQL schema, with the DICOM service set to 127.0.0.1 and a free port
 * (durability `os`), and the Fastify app built on it. Helpers log in, send requests through
 * `app.inject()` as a session (with or without its CSRF token) or with a bearer token, make
 * viewers and tokens, wait for a condition, and clean everything up.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import { openDatabase } from '../../src/db/dialect.js';
import { SettingsRepository } from '../../src/db/repositories/settings-repository.js';
import type { Role } from '../../src/db/repositories/user-repository.js';
import { ServerEvents } from '../../src/server/events.js';
import { LiveConfig } from '../../src/server/live-config.js';
import { ServiceController } from '../../src/server/service-controller.js';
import type { Settings } from '../../src/settings/schema.js';
import { API_PREFIX, buildWebApp } from '../../src/web/app.js';
import { hashPassword, SESSION_COOKIE } from '../../src/web/auth.js';
import { createWebContext, type WebContext } from '../../src/web/context.js';
import { freePort } from './net.js';
import { dropSchema, uniqueSchema } from './postgres.js';
import type { LogLine } from './server.js';

/** The first administrator's credentials in every test app. */
export const ADMIN = { username: 'admin', password: 'admin-password-1' } as const;

/** A logged-in session: the cookie's value and the CSRF token that goes with it. */
export interface WebSession {
  readonly username: string;
  readonly cookie: string;
  readonly csrfToken: string;
}

/** How a request authenticates. */
export type As =
  | { readonly session: WebSession; readonly csrf?: boolean | string }
  | { readonly token: string }
  | undefined;

/** One request through `app.inject()`. */
export interface WebRequest {
  readonly method?: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE' | 'HEAD';
  /** Below the API prefix: `status/`, `auth/login`, ... */
  readonly path: string;
  readonly as?: As;
  readonly body?: unknown;
  readonly query?: Record<string, string>;
  readonly remoteAddress?: string;
  readonly headers?: Record<string, string>;
}

/** What a test works with. */
export interface WebTest {
  readonly app: FastifyInstance;
  readonly context: WebContext;
  readonly dataDir: string;
  /** The DICOM service's port in the stored settings. */
  readonly dicomPort: number;
  /** Everything logged, as pino's JSON objects. */
  readonly logs: LogLine[];
  request(request: WebRequest): Promise<LightMyRequestResponse>;
  /** Logs in (127.0.0.1 unless given); throws unless it succeeds. */
  login(username: string, password: string, remoteAddress?: string): Promise<WebSession>;
  /** The first administrator, logged in. */
  loginAdmin(): Promise<WebSession>;
  /** Adds a user directly (no API call, no audit entry); returns its password. */
  addUser(username: string, role: Role): Promise<string>;
  /** Adds a viewer and logs it in. */
  viewer(username?: string): Promise<WebSession>;
  /** Creates an API token for the session's user through the API; returns its secret. */
  createToken(session: WebSession, name?: string): Promise<string>;
  close(): Promise<void>;
}

/** Options of a test app. */
export interface WebTestOptions {
  /** A postgres:// URL: the test gets a fresh schema there, dropped at close. */
  readonly databaseUrl?: string;
  /** Stored settings besides host, port and durability. */
  readonly settings?: Partial<Settings>;
}

/** A URL below the API prefix. */
export function apiUrl(path: string): string {
  return `${API_PREFIX}/${path}`;
}

/** Builds the context and the app (not listening); the DICOM service is stopped. */
export async function startWebTest(options: WebTestOptions = {}): Promise<WebTest> {
  const dataDir = await mkdtemp(join(tmpdir(), 'dicom-server-web-test-'));
  const schema = options.databaseUrl === undefined ? undefined : uniqueSchema('web');
  const database = await openDatabase({
    dataDir,
    durability: 'os',
    ...(options.databaseUrl !== undefined && { url: options.databaseUrl }),
    ...(schema !== undefined && { schema }),
  });
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
  const settings = new SettingsRepository(database);
  const dicomPort = await freePort();
  const stored = await settings.update({
    host: '127.0.0.1',
    port: dicomPort,
    durability: 'os',
    ...options.settings,
  });
  if (!stored.isValid) throw new Error(`test settings invalid: ${JSON.stringify(stored.errors)}`);
  const config = await LiveConfig.load(settings);
  const events = new ServerEvents();
  const controller = new ServiceController({
    database,
    config,
    dataDir,
    logger,
    shutdownGraceMs: 500,
    isLogLevelFixed: true,
    events,
  });
  const context = createWebContext({ database, controller, config, settings, events, logger });
  await context.auth.ensureFirstAdmin(ADMIN.password);
  const app = await buildWebApp(context);
  await app.ready();

  const request = (r: WebRequest) => inject(app, r);
  const login = async (username: string, password: string, remoteAddress = '127.0.0.1') => {
    const response = await request({
      method: 'POST',
      path: 'auth/login',
      body: { username, password },
      remoteAddress,
    });
    if (response.statusCode !== 200) {
      throw new Error(`login of ${username} failed: ${response.statusCode} ${response.body}`);
    }
    const cookie = response.cookies.find((c) => c.name === SESSION_COOKIE);
    if (cookie === undefined) throw new Error('login set no session cookie');
    return { username, cookie: cookie.value, csrfToken: response.json().csrfToken as string };
  };
  const addUser = async (username: string, role: Role) => {
    const password = `${username}-password-1`;
    await context.users.add(username, await hashPassword(password), role);
    return password;
  };
  let viewers = 0;
  return {
    app,
    context,
    dataDir,
    dicomPort,
    logs,
    request,
    login,
    loginAdmin: () => login(ADMIN.username, ADMIN.password),
    addUser,
    viewer: async (username = `viewer${++viewers}`) =>
      login(username, await addUser(username, 'viewer')),
    createToken: async (session, name = 'test token') => {
      const response = await request({
        method: 'POST',
        path: 'tokens/',
        as: { session },
        body: { name },
      });
      if (response.statusCode !== 201) {
        throw new Error(`token not created: ${response.statusCode} ${response.body}`);
      }
      return response.json().token as string;
    },
    close: async () => {
      await app.close();
      await controller.close();
      await database.close();
      await rm(dataDir, { recursive: true, force: true });
      if (schema !== undefined && options.databaseUrl !== undefined) {
        await dropSchema(schema, options.databaseUrl);
      }
    },
  };
}

/** Sends a request as a session (with its CSRF token unless `csrf` is false), a token or nobody. */
function inject(app: FastifyInstance, r: WebRequest): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = { ...r.headers };
  const cookies: Record<string, string> = {};
  const as = r.as;
  if (as !== undefined && 'session' in as) {
    cookies[SESSION_COOKIE] = as.session.cookie;
    if (as.csrf !== false) {
      headers['x-csrf-token'] = typeof as.csrf === 'string' ? as.csrf : as.session.csrfToken;
    }
  } else if (as !== undefined) {
    headers.authorization = `Bearer ${as.token}`;
  }
  return app.inject({
    method: r.method ?? 'GET',
    url: apiUrl(r.path),
    headers,
    cookies,
    ...(r.query !== undefined && { query: r.query }),
    ...(r.body !== undefined && { payload: r.body as object }),
    ...(r.remoteAddress !== undefined && { remoteAddress: r.remoteAddress }),
  });
}

/** Polls `check` until it returns something other than undefined; rejects after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 5_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
