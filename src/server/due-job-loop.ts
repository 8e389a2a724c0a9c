/**
 * The due-job loop of a durable queue's runner (the hand-off worker, the forwarder): takes
 * what is due into free places, then sets one timer for the earliest next attempt. No
 * polling: the runner notifies the loop when jobs are written or retried, and when one of its
 * places is freed. At start the claims of processes that are gone are released first
 * (job-claims.ts decides which). What a place holds (an attempt, a destination's session) and
 * what is claimed stay with the runner.
 *
 * Layer: server.
 */

import type { Logger } from 'pino';
import type { ClaimHolder } from '../db/repositories/queue-claims.js';
import { abandonedClaimers, claimerName } from './job-claims.js';

/** The log lines of a loop, fixed phrases naming its queue. */
export interface DueJobLoopMessages {
  /** `error`: the due jobs could not be read; tried again after a pause. */
  readonly readFailed: string;
  /** `error`: the abandoned claims could not be released at start. */
  readonly releaseFailed: string;
  /** `warn`, with `released`: jobs of processes that are gone were put back. */
  readonly released: string;
}

/** What a loop works with: the runner's places and its queue. */
export interface DueJobLoopOptions {
  readonly logger: Logger;
  /** Places: what the runner serves at once. */
  readonly concurrency: number;
  /** Places taken now. */
  readonly activeCount: () => number;
  /**
   * Claims and starts what is due at `now` in at most `free` places; true when more may be due
   * than fitted (the loop then takes again as places allow).
   */
  readonly startDue: (free: number, now: string) => Promise<boolean>;
  /** When the next job the runner is not serving falls due (ISO time); undefined when none. */
  readonly nextDueAt: () => Promise<string | undefined>;
  /** The holders of the queue's claims. */
  readonly claimers: () => Promise<readonly ClaimHolder[]>;
  /** Puts back the jobs these claimers hold, due at `now`; how many. */
  readonly releaseClaims: (claimers: readonly string[], now: string) => Promise<number>;
  readonly messages: DueJobLoopMessages;
}

/** When the database failed the loop, how long before it tries again. */
const RETRY_DATABASE_MS = 5_000;
/** Longest a timer may be set for (Node's limit). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Takes due jobs into free places, woken by notifications and one timer. */
export class DueJobLoop {
  readonly #options: DueJobLoopOptions;
  /** Who claims: this host and process. */
  readonly #id = claimerName();
  #timer: NodeJS.Timeout | undefined;
  #isPumping = false;
  #isAgain = false;
  #isStarted = false;
  #isStopped = false;

  constructor(options: DueJobLoopOptions) {
    this.#options = options;
  }

  /** The claim name of this process. */
  get id(): string {
    return this.#id;
  }

  /** Whether the loop was stopped: no new job is taken. */
  get isStopped(): boolean {
    return this.#isStopped;
  }

  /**
   * Releases the claims of processes that are gone, runs `prepare` (the runner's own start-up
   * work), then takes what is due.
   */
  async start(prepare?: () => Promise<void>): Promise<void> {
    this.#isStarted = true;
    try {
      await this.#releaseAbandoned();
    } catch (error) {
      this.#options.logger.error({ err: error }, this.#options.messages.releaseFailed);
    }
    await prepare?.();
    this.notify();
  }

  /** Stops: no new job is taken, the timer is cleared. The places' work is the runner's. */
  stop(): void {
    this.#isStopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Something may be due now (jobs written, a job retried): takes what is. */
  notify(): void {
    if (!this.#isStarted || this.#isStopped) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    void this.#pump();
  }

  /** A place was freed (its work ended): takes what is due, the timer left as it is. */
  placeFreed(): void {
    if (!this.#isStopped) void this.#pump();
  }

  /** Takes what is due, as many as free places allow; then sets the timer for the next. */
  async #pump(): Promise<void> {
    if (this.#isPumping) {
      this.#isAgain = true;
      return;
    }
    this.#isPumping = true;
    try {
      do {
        this.#isAgain = false;
        const free = this.#options.concurrency - this.#options.activeCount();
        // All places taken: the next place freed pumps again.
        if (free <= 0) return;
        if (await this.#options.startDue(free, new Date().toISOString())) this.#isAgain = true;
      } while (this.#isAgain && !this.#isStopped);
      if (!this.#isStopped) await this.#armForNext();
    } catch (error) {
      this.#options.logger.error({ err: error }, this.#options.messages.readFailed);
      this.#arm(RETRY_DATABASE_MS);
    } finally {
      this.#isPumping = false;
    }
  }

  async #armForNext(): Promise<void> {
    const due = await this.#options.nextDueAt();
    if (due !== undefined) this.#arm(Date.parse(due) - Date.now());
  }

  #arm(delayMs: number): void {
    if (this.#isStopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        void this.#pump();
      },
      Math.min(Math.max(0, delayMs), MAX_TIMER_MS),
    );
    this.#timer.unref();
  }

  /**
   * Puts back the jobs left in progress by processes that are gone: an earlier life of this
   * process id on this host (a restart), a process of this host no longer running, or a claim
   * older than any attempt can last.
   */
  async #releaseAbandoned(): Promise<void> {
    const abandoned = abandonedClaimers(await this.#options.claimers());
    const released = await this.#options.releaseClaims(abandoned, new Date().toISOString());
    if (released > 0) this.#options.logger.warn({ released }, this.#options.messages.released);
  }
}
