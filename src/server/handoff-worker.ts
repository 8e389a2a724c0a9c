/**
 * The hand-off worker: runs the outbox's deliveries (folder copy, webhooks, command) of
 * completed series as they fall due. A completion's copy runs first; its webhooks and command
 * follow once it is done, with its folder. A failed attempt is retried with exponential
 * backoff (5 s doubling, at most 15 min apart) and the job is dead after 8 attempts, until an
 * operator retries it. Every attempt is a HANDOFF row of the transaction log and a live event;
 * nothing an action does can stop the worker or the process.
 *
 * No polling: one timer is set for the next due delivery, and the worker is woken when a
 * completion writes jobs or an operator retries one (the loop is due-job-loop.ts). Jobs are
 * claimed in the database (in progress, by this worker), so a process that dies mid-attempt
 * leaves them to be released at the next start, and a receiver gets the same idempotency key
 * on every attempt.
 *
 * Layer: server.
 */

import type { Logger } from 'pino';
import type {
  DeliveryOutcome,
  HandoffJobWithEvent,
  HandoffRepository,
  JobUpdate,
} from '../db/repositories/handoff-repository.js';
import type { TransactionRecord } from '../db/repositories/transaction-log-repository.js';
import { DicomServerError } from '../errors.js';
import type { Settings } from '../settings/schema.js';
import { DueJobLoop } from './due-job-loop.js';
import type { ServerEvents } from './events.js';
import { runProcessingCommand } from './handoff/command.js';
import { copyToHandlerFolder } from './handoff/folder-copy.js';
import type { HandoffEvent } from './handoff/types.js';
import { deliverWebhook } from './handoff/webhook.js';
import type { TransactionLog } from './transaction-log.js';

/** The actions, replaceable in tests. */
export interface HandoffActions {
  copy(event: HandoffEvent, handlerRoot: string): Promise<string>;
  webhook(
    url: string,
    event: HandoffEvent,
    secret: string,
    signal: AbortSignal,
  ): Promise<{ status: number }>;
  command(command: string, event: HandoffEvent, signal: AbortSignal): Promise<void>;
}

/** The real actions (server/handoff/). */
export const HANDOFF_ACTIONS: HandoffActions = {
  copy: copyToHandlerFolder,
  webhook: (url, event, secret, signal) => deliverWebhook(url, event, secret, { signal }),
  command: (command, event, signal) => runProcessingCommand(command, event, { signal }),
};

/** How failed attempts are retried. */
export interface RetryPolicy {
  /** Wait after the first failed attempt; doubled after each further one. */
  readonly baseMs: number;
  readonly maxMs: number;
  /** Attempts before a job is dead. */
  readonly maxAttempts: number;
}

export const DEFAULT_RETRY: RetryPolicy = { baseMs: 5_000, maxMs: 15 * 60_000, maxAttempts: 8 };

/** What the worker works with. */
export interface HandoffWorkerOptions {
  readonly jobs: HandoffRepository;
  readonly settings: () => Settings;
  readonly logger: Logger;
  readonly transactionLog?: TransactionLog;
  readonly events?: ServerEvents;
  readonly actions?: HandoffActions;
  readonly retry?: Partial<RetryPolicy>;
  /** Deliveries run at once (default 4). */
  readonly concurrency?: number;
}

/** Longest message of an attempt's transaction row. */
const MAX_MESSAGE_LENGTH = 1_000;

/** Details of an action's error that the attempt's row says otherwise (or not at all). */
const DETAILS_NOT_SHOWN = new Set(['action', 'url', 'program', 'timeoutMs']);

/** The wait before the next attempt after `attempts` failed ones. */
export function backoffMs(attempts: number, policy: RetryPolicy = DEFAULT_RETRY): number {
  return Math.min(policy.baseMs * 2 ** Math.max(0, attempts - 1), policy.maxMs);
}

/** An action's error as one line: its message and what its details say. */
export function failureText(error: unknown): string {
  if (error instanceof DicomServerError) {
    const details = Object.entries(error.details)
      .filter(([, value]) => value !== undefined && value !== '' && value !== false)
      .filter(([key]) => !DETAILS_NOT_SHOWN.has(key))
      .map(([key, value]) => `${key}: ${String(value).replace(/\s+/g, ' ').trim()}`);
    return details.length === 0 ? error.message : `${error.message} (${details.join(', ')})`;
  }
  return error instanceof Error ? error.message : String(error);
}

/** A URL as logged and listed: without credentials, query or fragment. */
export function redactedUrl(text: string): string {
  try {
    const url = new URL(text);
    const query = url.search === '' ? '' : '?…';
    return `${url.protocol}//${url.host}${url.pathname}${query}`;
  } catch {
    return '(invalid URL)';
  }
}

/** Runs due deliveries. */
export class HandoffWorker {
  readonly #options: HandoffWorkerOptions;
  readonly #logger: Logger;
  readonly #actions: HandoffActions;
  readonly #retry: RetryPolicy;
  readonly #loop: DueJobLoop;
  readonly #abort = new AbortController();
  readonly #attempts = new Set<Promise<void>>();

  constructor(options: HandoffWorkerOptions) {
    this.#options = options;
    this.#logger = options.logger;
    this.#actions = options.actions ?? HANDOFF_ACTIONS;
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    this.#loop = new DueJobLoop({
      logger: options.logger,
      concurrency: options.concurrency ?? 4,
      activeCount: () => this.#attempts.size,
      startDue: (free, now) => this.#startDue(free, now),
      nextDueAt: () => options.jobs.nextDueAt(),
      claimers: () => options.jobs.deliveryClaimers(),
      releaseClaims: (claimers, now) => options.jobs.releaseDeliveries(claimers, now),
      messages: {
        readFailed: 'hand-off worker could not read its jobs: trying again',
        releaseFailed: 'abandoned hand-off deliveries not released',
        released: 'hand-off deliveries interrupted by a stop taken back',
      },
    });
  }

  /** The worker's claim name. */
  get id(): string {
    return this.#loop.id;
  }

  /** Deliveries under way. */
  get activeCount(): number {
    return this.#attempts.size;
  }

  /** Takes back the deliveries of processes that are gone, then runs what is due. */
  async start(): Promise<void> {
    await this.#loop.start();
  }

  /**
   * Stops: no new attempt; those under way are cancelled (a command is terminated, a request
   * aborted; each is recorded as failed and retried at the next start) and waited for, up to
   * `graceMs`.
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.#loop.stop();
    this.#abort.abort();
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([Promise.allSettled([...this.#attempts]), grace]);
    clearTimeout(timer);
  }

  /** Something may be due now (jobs written, a job retried): runs what is. */
  notify(): void {
    this.#loop.notify();
  }

  /** Claims up to `free` due deliveries and runs them; true when more may be due (all fitted). */
  async #startDue(free: number, now: string): Promise<boolean> {
    const claimed = await this.#options.jobs.claimDueDeliveries(this.#loop.id, now, free);
    for (const job of claimed) this.#run(job);
    return claimed.length === free;
  }

  #run(job: HandoffJobWithEvent): void {
    const attempt = this.#attempt(job).catch((error: unknown) => {
      this.#logger.error({ err: error, job: job.id }, 'hand-off attempt failed unexpectedly');
    });
    this.#attempts.add(attempt);
    void attempt.then(() => {
      this.#attempts.delete(attempt);
      // A place is free, and a done copy lets its completion's deliveries run.
      this.#loop.placeFreed();
    });
  }

  /** One attempt of one delivery: run, record the outcome, log, announce. */
  async #attempt(job: HandoffJobWithEvent): Promise<void> {
    const startedAt = new Date();
    const started = performance.now();
    let outcome: DeliveryOutcome;
    let note: string;
    try {
      const done = await this.#deliver(job);
      outcome = { isDone: true, ...(done.result !== undefined && { result: done.result }) };
      note = done.note;
    } catch (error) {
      const text = failureText(error);
      const isLast = job.attempts >= this.#retry.maxAttempts;
      // Cancelled by a stop: due again at once at the next start.
      const waitMs = this.#abort.signal.aborted ? 0 : backoffMs(job.attempts, this.#retry);
      outcome = {
        isDone: false,
        error: text,
        nextAttemptAt: isLast ? undefined : new Date(Date.now() + waitMs).toISOString(),
      };
      note = text;
    }
    const durationMs = performance.now() - started;
    let update: JobUpdate | undefined;
    try {
      update = await this.#options.jobs.finishDelivery(job.id, outcome, new Date().toISOString());
    } catch (error) {
      this.#logger.error({ err: error, job: job.id }, 'hand-off attempt not recorded');
    }
    this.#report(job, outcome, note, startedAt, durationMs);
    if (update !== undefined) this.#announce(update);
  }

  /** The live views' events of a job's change; a failing listener is logged, not thrown. */
  #announce(update: JobUpdate): void {
    try {
      this.#options.events?.emit('handoff', update.job);
      if (update.series !== undefined) this.#options.events?.emit('series', update.series);
    } catch (error) {
      this.#logger.error({ err: error }, 'hand-off event listener failed');
    }
  }

  /** Runs the job's action; what it produced and a note for the log. */
  async #deliver(job: HandoffJobWithEvent): Promise<{ result?: string; note: string }> {
    const event: HandoffEvent = job.event;
    const signal = this.#abort.signal;
    switch (job.kind) {
      case 'copy': {
        const folder = await this.#actions.copy(event, job.target);
        return { result: folder, note: `copied to ${folder}` };
      }
      case 'webhook': {
        const secret = this.#options.settings().webhook_secret;
        const { status } = await this.#actions.webhook(job.target, event, secret, signal);
        return { note: `HTTP ${status}` };
      }
      case 'command':
        await this.#actions.command(job.target, event, signal);
        return { note: 'exit code 0' };
      case 'queue':
        // Never claimed here (see HandoffRepository.claimDueDeliveries).
        throw new Error(`queue item ${job.id} claimed as a delivery`);
      default: {
        const never: never = job.kind;
        throw new Error(`unknown hand-off job kind ${String(never)}`);
      }
    }
  }

  /** The attempt's log line and transaction row. */
  #report(
    job: HandoffJobWithEvent,
    outcome: DeliveryOutcome,
    note: string,
    startedAt: Date,
    durationMs: number,
  ): void {
    const target = job.kind === 'webhook' ? redactedUrl(job.target) : job.target;
    const state = outcome.isDone ? 'done' : outcome.nextAttemptAt === undefined ? 'dead' : 'failed';
    const fields = {
      job: job.id,
      kind: job.kind,
      target: job.kind === 'command' ? undefined : target,
      seriesInstanceUid: job.seriesInstanceUid,
      attempt: job.attempts,
      state,
      durationMs: Math.round(durationMs),
    };
    // A receiver's or a command's failure is theirs, not ours: warn, even when it is dead.
    if (outcome.isDone) this.#logger.info(fields, 'hand-off delivered');
    else if (state === 'dead') this.#logger.warn({ ...fields, error: note }, 'hand-off dead');
    else {
      this.#logger.warn(
        { ...fields, error: note, retryAt: outcome.nextAttemptAt },
        'hand-off failed: retried later',
      );
    }
    const settings = this.#options.settings();
    if (this.#options.transactionLog === undefined || !settings.enable_transaction_log) return;
    const { series } = job.event;
    const url = job.kind === 'webhook' ? safeUrl(job.target) : undefined;
    const row: TransactionRecord = {
      occurredAt: startedAt.toISOString(),
      type: 'HANDOFF',
      status: outcome.isDone ? 'success' : 'failure',
      associationId: `handoff-${job.id}`,
      callingAe: settings.ae_title,
      calledAe: '',
      remoteAddress: url?.hostname ?? '',
      remotePort:
        url === undefined ? 0 : Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
      patientId: series.patientId,
      studyInstanceUid: series.studyInstanceUid,
      seriesInstanceUid: series.seriesInstanceUid,
      ...(outcome.isDone && job.kind === 'copy' && { filePath: outcome.result }),
      durationMs,
      message: this.#attemptMessage(job, target, state, note),
    };
    this.#options.transactionLog.record(row);
  }

  /** The attempt's transaction row message: `webhook <url> attempt 2 of 8: failed, <why>`. */
  #attemptMessage(job: HandoffJobWithEvent, target: string, state: string, note: string): string {
    const what = job.kind === 'command' ? job.kind : `${job.kind} ${target}`;
    const attempt = `attempt ${job.attempts} of ${this.#retry.maxAttempts}`;
    return `${what} ${attempt}: ${state}, ${note}`.slice(0, MAX_MESSAGE_LENGTH);
  }
}

/** A webhook target parsed, or undefined. */
function safeUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}
