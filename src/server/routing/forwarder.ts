/**
 * The forwarder: sends the forward queue's jobs to their destinations over C-STORE as they
 * fall due. Due jobs are taken per destination, one association per destination at a time
 * (several destinations at once); the destination's host and port are looked up among the AE
 * titles when its jobs are taken, so an edit applies to the next attempt. Each file goes with
 * the C-STORE SCU of C-MOVE (services/retrieve.ts `storeInstance`: its stored transfer syntax
 * when accepted, else converted), over the destination's link (destination-link.ts: the
 * association services/move.ts `planAssociations` plans, kept open while further due jobs fit
 * it, released when none is left).
 *
 * A failed attempt is retried with exponential backoff (5 s doubling, at most 15 min apart;
 * the hand-off's policy) and the job is dead after 8 attempts, until an operator retries it.
 * An unknown, inactive or hostless destination fails the attempt like an unreachable one; an
 * instance no longer stored kills its job at once. Every attempt is a log line and a FORWARD
 * row of the transaction log (attempt-report.ts) and a `routing` live event, and moves the
 * destination's last success or last error.
 *
 * No polling: one timer is set for the next due job, and the forwarder is woken when jobs are
 * written or retried (the loop is due-job-loop.ts). Jobs are claimed in the database (in
 * progress, by this process), so a process that dies mid-attempt leaves them to be released
 * at the next start.
 *
 * Layer: server.
 */

import type { Logger } from 'pino';
import type {
  ClaimedForwardJob,
  ForwardJob,
  RoutingRepository,
} from '../../db/repositories/routing-repository.js';
import type { RetrievableInstance } from '../../dicom/query/model.js';
import { formatStatus, statusCategory } from '../../network/dimse/status.js';
import { storeInstance } from '../../services/retrieve.js';
import { resolveInside } from '../../storage/layout.js';
import { DueJobLoop } from '../due-job-loop.js';
import type { ServerEvents } from '../events.js';
import { backoffMs, DEFAULT_RETRY, failureText, type RetryPolicy } from '../handoff-worker.js';
import type { TransactionLog } from '../transaction-log.js';
import { type Attempt, type AttemptContext, attemptRow, logAttempt } from './attempt-report.js';
import {
  type DestinationAddress,
  DestinationLink,
  type DestinationLookup,
  type ForwardTimeouts,
  resolveDestination,
} from './destination-link.js';

/** What the forwarder works with. */
export interface ForwarderOptions {
  readonly jobs: RoutingRepository;
  /** Where the index's file paths are relative to. */
  readonly storageRoot: string;
  /** Our AE title: the calling AE title of the associations (read for each one). */
  readonly aeTitle: () => string;
  readonly lookupDestination: DestinationLookup;
  readonly timeouts: ForwardTimeouts;
  /** The Maximum Length Received we announce. */
  readonly maxPduLength?: number;
  readonly logger: Logger;
  readonly transactionLog?: TransactionLog;
  /** Whether attempts are written to the transaction log (default: yes). */
  readonly isTransactionLogEnabled?: () => boolean;
  readonly events?: ServerEvents;
  readonly retry?: Partial<RetryPolicy>;
  /** Destinations served at once (default 4). */
  readonly concurrency?: number;
  /** Jobs claimed at once for a destination (default 100). */
  readonly batchSize?: number;
}

/** Done jobs are kept this long (the queue's history), then pruned. */
const DONE_RETENTION_MS = 7 * 86_400_000;
/** How often done jobs are pruned. */
const PRUNE_EVERY_MS = 60 * 60_000;

/** A claimed job ready to send: the instance with its absolute path. */
interface Sendable {
  readonly job: ClaimedForwardJob;
  readonly instance: RetrievableInstance;
}

/** Sends due forward jobs. */
export class Forwarder {
  readonly #options: ForwarderOptions;
  readonly #jobs: RoutingRepository;
  readonly #logger: Logger;
  readonly #retry: RetryPolicy;
  readonly #batchSize: number;
  readonly #loop: DueJobLoop;
  /** The destinations being served, with their session and open link. */
  readonly #sessions = new Map<string, { done: Promise<void>; link?: DestinationLink }>();
  #lastPrune = 0;

  constructor(options: ForwarderOptions) {
    this.#options = options;
    this.#jobs = options.jobs;
    this.#logger = options.logger;
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    this.#batchSize = options.batchSize ?? 100;
    this.#loop = new DueJobLoop({
      logger: options.logger,
      concurrency: options.concurrency ?? 4,
      activeCount: () => this.#sessions.size,
      startDue: (free, now) => this.#startDue(free, now),
      nextDueAt: () => this.#jobs.nextDueAt([...this.#sessions.keys()]),
      claimers: () => this.#jobs.claimers(),
      releaseClaims: (claimers, now) => this.#jobs.releaseClaims(claimers, now),
      messages: {
        readFailed: 'forwarder could not read its jobs: trying again',
        releaseFailed: 'abandoned forward jobs not released',
        released: 'forward jobs interrupted by a stop taken back',
      },
    });
  }

  /** The forwarder's claim name. */
  get id(): string {
    return this.#loop.id;
  }

  /** Destinations being served now. */
  get activeCount(): number {
    return this.#sessions.size;
  }

  /** Takes back the jobs of processes that are gone, prunes old done jobs, runs what is due. */
  async start(): Promise<void> {
    await this.#loop.start(() => this.#pruneSometimes());
  }

  /**
   * Stops: no new job is taken; the files being sent get `graceMs` to finish, then their
   * associations are aborted (those attempts fail and are due again at the next start). Jobs
   * claimed but not yet tried go back to pending, their attempt not counted.
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.#loop.stop();
    const sessions = () => Promise.allSettled([...this.#sessions.values()].map((s) => s.done));
    if (!(await settlesWithin(sessions(), graceMs))) {
      for (const session of this.#sessions.values()) session.link?.abort();
      await settlesWithin(sessions(), 5_000);
    }
  }

  /** Jobs may be due now (written, retried): serves what is. */
  notify(): void {
    this.#loop.notify();
  }

  /**
   * Starts a session for each destination with jobs due at `now`, in at most `free` places;
   * true when more destinations were due than fitted.
   */
  async #startDue(free: number, now: string): Promise<boolean> {
    const due = await this.#jobs.dueDestinations(now, [...this.#sessions.keys()]);
    for (const destination of due.slice(0, free)) this.#serve(destination);
    return due.length > free;
  }

  #serve(destination: string): void {
    const session: { done: Promise<void>; link?: DestinationLink } = { done: Promise.resolve() };
    session.done = this.#runSession(destination, session)
      .catch((error: unknown) => {
        this.#logger.error({ err: error, destination }, 'forward session failed unexpectedly');
      })
      .finally(() => {
        this.#sessions.delete(destination);
        this.#loop.placeFreed();
        void this.#pruneSometimes();
      });
    this.#sessions.set(destination, session);
  }

  /** Sends a destination's due jobs, a claim at a time, until none is left or a stop. */
  async #runSession(destination: string, session: { link?: DestinationLink }): Promise<void> {
    try {
      while (!this.#loop.isStopped) {
        const claimed = await this.#jobs.claimDue(
          destination,
          this.#loop.id,
          new Date().toISOString(),
          this.#batchSize,
        );
        if (claimed.length === 0) return;
        const target = await resolveDestination(this.#options.lookupDestination, destination);
        if (!target.isKnown) {
          for (const job of claimed) await this.#finish(job, this.#failure(job, target.error));
          continue;
        }
        if (session.link?.isFor(target) !== true) {
          // The AE title's host or port changed since the last claim.
          await session.link?.close();
          session.link = new DestinationLink({
            destination,
            address: target,
            aeTitle: this.#options.aeTitle,
            timeouts: this.#options.timeouts,
            logger: this.#logger,
            ...(this.#options.maxPduLength !== undefined && {
              maxPduLength: this.#options.maxPduLength,
            }),
          });
        }
        await this.#sendAll(claimed, target, session.link);
      }
    } finally {
      await session.link?.close();
    }
  }

  /** Sends the claimed jobs' files in order; a stop puts the untried ones back. */
  async #sendAll(
    claimed: readonly ClaimedForwardJob[],
    address: DestinationAddress,
    link: DestinationLink,
  ): Promise<void> {
    const sendable: Sendable[] = [];
    for (const job of claimed) {
      const instance = this.#instanceOf(job);
      if (typeof instance === 'string') await this.#finish(job, this.#dead(instance));
      else sendable.push({ job, instance });
    }
    let openError: string | undefined;
    for (const [index, { job, instance }] of sendable.entries()) {
      if (this.#loop.isStopped) {
        const untried = sendable.slice(index).map((entry) => entry.job.id);
        await this.#jobs.unclaim(untried, new Date().toISOString());
        return;
      }
      const startedAt = new Date();
      const started = performance.now();
      let attempt: Attempt;
      if (openError !== undefined) {
        // The destination could not be reached for an earlier file: not tried again now.
        attempt = this.#failure(job, openError);
      } else {
        const upcoming = sendable.slice(index + 1).map((entry) => entry.instance);
        attempt = await this.#sendOne(job, instance, upcoming, link).catch((error: unknown) => {
          openError = failureText(error);
          return this.#failure(job, openError);
        });
      }
      await this.#finish(job, attempt, {
        startedAt,
        durationMs: performance.now() - started,
        address,
        associationId: link.associationId,
      });
    }
  }

  /**
   * One file: its association (rejects only when that cannot be opened), then the C-STORE;
   * a failure to send is the attempt's outcome.
   */
  async #sendOne(
    job: ClaimedForwardJob,
    instance: RetrievableInstance,
    upcoming: readonly RetrievableInstance[],
    link: DestinationLink,
  ): Promise<Attempt> {
    const channel = await link.channelFor(instance, upcoming);
    try {
      const contexts = channel.association.acceptedContexts.values();
      const status = await storeInstance(channel, contexts, instance);
      const category = statusCategory(status);
      if (category === 'success' || category === 'warning') {
        const note = category === 'success' ? 'sent' : `sent, warning ${formatStatus(status)}`;
        return { outcome: { isDone: true }, status, note, isSent: true };
      }
      return { ...this.#failure(job, `C-STORE status ${formatStatus(status)}`), status };
    } catch (error) {
      return this.#failure(job, failureText(error));
    }
  }

  /** The job's instance with its absolute path, or why there is nothing to send. */
  #instanceOf(job: ClaimedForwardJob): RetrievableInstance | string {
    if (job.storedFilePath === null) return 'instance no longer stored';
    try {
      return {
        sopClassUid: job.sopClassUid,
        sopInstanceUid: job.sopInstanceUid,
        transferSyntaxUid: job.transferSyntaxUid,
        filePath: resolveInside(this.#options.storageRoot, job.storedFilePath),
        fileSize: job.fileSize,
      };
    } catch {
      return 'file path outside the storage root';
    }
  }

  /** A failed attempt: retried after its backoff, or dead after the last one. */
  #failure(job: ForwardJob, error: string): Attempt {
    const isLast = job.attempts >= this.#retry.maxAttempts;
    // Cut short by a stop: due again at once at the next start.
    const waitMs = this.#loop.isStopped ? 0 : backoffMs(job.attempts, this.#retry);
    return {
      outcome: {
        isDone: false,
        error,
        nextAttemptAt: isLast ? undefined : new Date(Date.now() + waitMs).toISOString(),
      },
      note: error,
      isSent: false,
    };
  }

  /** An attempt that cannot succeed however often it is made. */
  #dead(error: string): Attempt {
    return {
      outcome: { isDone: false, error, nextAttemptAt: undefined },
      note: error,
      isSent: false,
    };
  }

  /** Records an attempt: the job, the log line, the transaction row, the live event. */
  async #finish(job: ClaimedForwardJob, attempt: Attempt, context: AttemptContext = {}) {
    let finished: ForwardJob | undefined;
    try {
      finished = await this.#jobs.finish(job.id, attempt.outcome, new Date().toISOString());
    } catch (error) {
      this.#logger.error({ err: error, job: job.id }, 'forward attempt not recorded');
    }
    logAttempt(this.#logger, job, attempt, context.durationMs ?? 0);
    const log = this.#options.transactionLog;
    if (log !== undefined && this.#options.isTransactionLogEnabled?.() !== false) {
      const ours = { aeTitle: this.#options.aeTitle(), maxAttempts: this.#retry.maxAttempts };
      log.record(attemptRow(job, attempt, context, ours));
    }
    if (finished === undefined) return;
    try {
      this.#options.events?.emit('routing', { type: 'job', job: finished });
    } catch (error) {
      this.#logger.error({ err: error }, 'routing event listener failed');
    }
  }

  /** Removes done jobs past their retention, at most once an hour; never throws. */
  async #pruneSometimes(): Promise<void> {
    if (Date.now() - this.#lastPrune < PRUNE_EVERY_MS) return;
    this.#lastPrune = Date.now();
    try {
      const before = new Date(Date.now() - DONE_RETENTION_MS).toISOString();
      const removed = await this.#jobs.pruneDone(before);
      if (removed > 0) this.#logger.info({ removed }, 'pruned forward jobs done long ago');
    } catch (error) {
      this.#logger.error({ err: error }, 'done forward jobs not pruned');
    }
  }
}

/** True when `promise` settles within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const settled = promise.then(
    () => true,
    () => true,
  );
  try {
    return await Promise.race([settled, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
