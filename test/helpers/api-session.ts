/**
 * The REST API of a `serve` process over real HTTP: log in as the first administrator
 * (DICOM_SERVER_ADMIN_PASSWORD), then GET, POST and PATCH as that session, the CSRF token sent
 * with every change.
 *
 * Layer: test helper.
 */

import { API_PREFIX } from '../../src/web/app.js';

/** A logged-in session on a server's API; paths are relative to the API's base URL. */
export interface ApiSession {
  /** The session cookie, `name=value`, for a request made by other means. */
  readonly cookie: string;
  readonly csrfToken: string;
  get(path: string): Promise<Response>;
  /** POSTs `body` as JSON (`{}` when absent). */
  post(path: string, body?: unknown): Promise<Response>;
  patch(path: string, body: unknown): Promise<Response>;
}

/** The API's base URL on 127.0.0.1:`httpPort`. */
export function apiBase(httpPort: number): string {
  return `http://127.0.0.1:${httpPort}${API_PREFIX}`;
}

/** Logs `admin` in with `password`; throws with the answer unless it succeeds. */
export async function loginAdmin(httpPort: number, password: string): Promise<ApiSession> {
  const base = apiBase(httpPort);
  const login = await fetch(`${base}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password }),
  });
  if (login.status !== 200) throw new Error(`login failed: ${login.status} ${await login.text()}`);
  const cookie = login.headers.get('set-cookie')?.split(';')[0] ?? '';
  const { csrfToken } = (await login.json()) as { csrfToken: string };
  const change = (method: string, path: string, body: unknown) =>
    fetch(`${base}/${path}`, {
      method,
      headers: { 'content-type': 'application/json', cookie, 'x-csrf-token': csrfToken },
      body: JSON.stringify(body),
    });
  return {
    cookie,
    csrfToken,
    get: (path) => fetch(`${base}/${path}`, { headers: { cookie } }),
    post: (path, body = {}) => change('POST', path, body),
    patch: (path, body) => change('PATCH', path, body),
  };
}
