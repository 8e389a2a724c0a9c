/**
 * Delivers a hand-off event to one webhook URL: one POST of the event as JSON, signed with
 * HMAC-SHA256 when a secret is set, bounded by a timeout. One call is one attempt; retries,
 * backoff and the dead-letter state belong to the hand-off worker, which sends the same
 * `Idempotency-Key` on every attempt so that a receiver can drop repeats.
 *
 * Also defines the event's JSON form (`eventPayload`), shared with the processing command.
 *
 * Layer: server; uses Node's fetch; must not import `web` or `cli`.
 */

import { createHmac } from 'node:crypto';
import { DicomServerError, type ErrorDetails } from '../../errors.js';
import type { HandoffEvent, HandoffFile, HandoffSeries } from './types.js';

/** Default bound on one delivery: connect, request and response. */
export const DEFAULT_WEBHOOK_TIMEOUT_MS = 10_000;

/** Characters of a failing receiver's body kept in the error. */
const BODY_EXCERPT_CHARS = 200;

/** The event as JSON: what a webhook receives as its body and a command in DICOM_SERVER_EVENT. */
export type HandoffEventPayload = Pick<HandoffEvent, 'type' | 'idempotencyKey' | 'occurredAt'> &
  Omit<HandoffSeries, 'files'> & {
    readonly instanceCount: number;
    /** The handler-folder copy, or null when none was made. */
    readonly folder: string | null;
    /** The stored files (absolute paths); empty when `filesOmitted`. */
    readonly files: readonly HandoffFile[];
    /** True when the file list was left out for size (see the processing command). */
    readonly filesOmitted?: true;
  };

/** Options of one delivery. */
export interface WebhookOptions {
  /** Bound on the whole attempt (default 10 s). */
  readonly timeoutMs?: number;
  /** Cancels the attempt (shutdown). */
  readonly signal?: AbortSignal;
}

/** The event's JSON form, flat: event, patient, study and series fields, count, folder, files. */
export function eventPayload(event: HandoffEvent): HandoffEventPayload {
  const { files, ...series } = event.series;
  return {
    type: event.type,
    idempotencyKey: event.idempotencyKey,
    occurredAt: event.occurredAt,
    ...series,
    instanceCount: files.length,
    folder: event.folder ?? null,
    files: files.map((file) => ({ ...file })),
  };
}

/** The signature header's value: `sha256=` + hex HMAC-SHA256(secret, timestamp + "." + body). */
export function webhookSignature(secret: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  return `sha256=${mac}`;
}

/**
 * The request headers of one delivery; no signature when the secret is empty. Credentials in
 * the URL become Basic authorization (fetch refuses a URL holding them).
 */
function requestHeaders(event: HandoffEvent, secret: string, body: string, url: URL): Headers {
  const timestamp = Math.floor(Date.now() / 1000);
  const headers = new Headers({
    'Content-Type': 'application/json',
    'User-Agent': 'dicom-server',
    'X-DICOM-Server-Event': event.type,
    'Idempotency-Key': event.idempotencyKey,
    'X-DICOM-Server-Timestamp': String(timestamp),
  });
  if (secret !== '')
    headers.set('X-DICOM-Server-Signature', webhookSignature(secret, timestamp, body));
  if (url.username !== '' || url.password !== '') {
    const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    headers.set('Authorization', `Basic ${Buffer.from(credentials).toString('base64')}`);
  }
  return headers;
}

/**
 * POSTs the event to `url`. Resolves with the status on 2xx; rejects with ERR_HANDOFF_FAILED
 * otherwise (details: `status` and `bodyExcerpt`, or `networkError`, or `timedOut`). Redirects
 * are not followed: a receiver that moved must be reconfigured, not silently re-signed to.
 */
export async function deliverWebhook(
  url: string,
  event: HandoffEvent,
  secret: string,
  options: WebhookOptions = {},
): Promise<{ status: number }> {
  const target = checkedUrl(url);
  const timeoutMs = options.timeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal =
    options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal]);
  const body = JSON.stringify(eventPayload(event));
  const details = { action: 'webhook', url: redactedUrl(target), timeoutMs };
  try {
    const response = await fetch(details.url, {
      method: 'POST',
      headers: requestHeaders(event, secret, body, target),
      body,
      redirect: 'manual',
      signal,
    });
    if (response.ok) {
      await response.body?.cancel();
      return { status: response.status };
    }
    const bodyExcerpt = await readExcerpt(response);
    throw new DicomServerError('ERR_HANDOFF_FAILED', 'webhook receiver answered an error status', {
      ...details,
      status: response.status,
      bodyExcerpt,
    });
  } catch (error) {
    if (error instanceof DicomServerError) throw error;
    throw requestFailure(error, timeout.aborted, details);
  }
}

/** The error for a request that got no response: timed out, cancelled or a network error. */
function requestFailure(
  error: unknown,
  timedOut: boolean,
  details: ErrorDetails,
): DicomServerError {
  const message = timedOut ? 'webhook receiver did not answer in time' : 'webhook request failed';
  const networkError = timedOut ? undefined : errorCode(error);
  return new DicomServerError(
    'ERR_HANDOFF_FAILED',
    message,
    { ...details, timedOut, networkError },
    error,
  );
}

/** `url` parsed; only http and https are delivered to. */
function checkedUrl(url: string): URL {
  const parsed = URL.canParse(url) ? new URL(url) : null;
  if (parsed === null || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw new DicomServerError('ERR_HANDOFF_FAILED', 'webhook URL is not an http(s) URL', {
      action: 'webhook',
    });
  }
  return parsed;
}

/** The URL without user name and password, fit for logs and the transaction log. */
function redactedUrl(url: URL): string {
  const copy = new URL(url);
  copy.username = '';
  copy.password = '';
  return copy.toString();
}

/** The start of a response body, read only as far as needed, then the rest cancelled. */
async function readExcerpt(response: Response): Promise<string> {
  if (response.body === null) return '';
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    while (text.length < BODY_EXCERPT_CHARS) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    await reader.cancel();
  }
  return text.slice(0, BODY_EXCERPT_CHARS);
}

/** The system error code (ECONNREFUSED, ENOTFOUND ...) somewhere in an error's cause chain. */
function errorCode(error: unknown): string | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; depth++) {
    const code = (current as Error & { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = current.cause;
  }
  return error instanceof Error ? error.name : undefined;
}
