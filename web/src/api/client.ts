/**
 * The console's way to the REST API under /dicom-server/api/: JSON in and out, the session
 * cookie sent by the browser, and the CSRF token (from the login or `auth/me`, held in memory
 * only) sent in X-CSRF-Token with every change. A 401 on any call but the login means the
 * session ended: the app is told, and shows the login again.
 */

/** Where the API lives (the server's API_PREFIX). */
export const API_BASE = '/dicom-server/api';

/** An error answer of the API: its status, message and a message per invalid field. */
export class ApiError extends Error {
  readonly status: number;
  readonly fields: Readonly<Record<string, string>>;
  readonly retryAfterSeconds: number | undefined;

  constructor(
    status: number,
    message: string,
    fields: Readonly<Record<string, string>> = {},
    retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.fields = fields;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

interface ErrorBody {
  readonly error?: unknown;
  readonly fields?: unknown;
  readonly retryAfterSeconds?: unknown;
}

function errorOf(status: number, statusText: string, body: ErrorBody | undefined): ApiError {
  const message = typeof body?.error === 'string' ? body.error : statusText || `HTTP ${status}`;
  const fields =
    typeof body?.fields === 'object' && body.fields !== null
      ? (body.fields as Record<string, string>)
      : {};
  const retry = typeof body?.retryAfterSeconds === 'number' ? body.retryAfterSeconds : undefined;
  return new ApiError(status, message, fields, retry);
}

/** Calls the API with the session; one per console. */
export class ApiClient {
  #csrfToken: string | undefined;
  #onSessionLost: (() => void) | undefined;

  /** Keeps the CSRF token of the session (undefined after a logout). */
  setCsrfToken(token: string | undefined): void {
    this.#csrfToken = token;
  }

  /** Called when a request answers 401: the session expired or was ended elsewhere. */
  onSessionLost(handler: (() => void) | undefined): void {
    this.#onSessionLost = handler;
  }

  get<T>(path: string): Promise<T> {
    return this.#request<T>('GET', path);
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.#request<T>('POST', path, body);
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.#request<T>('PUT', path, body);
  }

  patch<T>(path: string, body: unknown): Promise<T> {
    return this.#request<T>('PATCH', path, body);
  }

  delete(path: string): Promise<void> {
    return this.#request<void>('DELETE', path);
  }

  async #request<T>(method: Method, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    // Fastify refuses an empty body declared as JSON: a body-less POST sends no Content-Type.
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET' && this.#csrfToken !== undefined) {
      headers['X-CSRF-Token'] = this.#csrfToken;
    }
    let response: Response;
    try {
      response = await fetch(`${API_BASE}/${path}`, {
        method,
        headers,
        credentials: 'same-origin',
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
    } catch {
      throw new ApiError(0, 'the server did not answer (is it running?)');
    }
    if (response.status === 204) return undefined as T;
    const data: unknown = await response.json().catch(() => undefined);
    if (!response.ok) {
      if (response.status === 401 && path !== 'auth/login') this.#onSessionLost?.();
      throw errorOf(response.status, response.statusText, data as ErrorBody | undefined);
    }
    return data as T;
  }
}

/** A query string from the defined values (leading `?`, or empty). */
export function queryString(values: Readonly<Record<string, string | number | undefined>>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) {
    if (value !== undefined && value !== '') params.set(key, String(value));
  }
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

/** The message of any error, for a notice. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
