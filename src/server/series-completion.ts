/**
 * Series completion: a series is complete when none of its instances has arrived for
 * `series_completion_seconds`, or (with `complete_series_on_release`) when the associations
 * that sent it were released. Completing writes the series' event and the jobs of the hand-off
 * actions switched on (see handoff-worker.ts) in one transaction.
 *
 * The receive path pays no database statement per instance: a series being received is kept
 * in memory with the time of its newest instance and one timer, which checks that time when it
 * fires (and sleeps again for the rest) rather than being reset by every instance. Only the
 * first instance of a series, or the first after a completion (which reopens it: its next
 * completion is a `series.updated` event), writes the series' state, and that instance's
 * C-STORE waits for the write: a series acknowledged to a sender is never forgotten. After a
 * restart, the series still receiving get their timers back from their newest instance.
 *
 * Layer: server.
 */

import { isAbsolute, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { SeriesStateChange } from '../db/repositories/handoff-repository.js';
import type {
  Completion,
  PlannedJob,
  SeriesStateRepository,
} from '../db/repositories/series-state-repository.js';
import { type Settings, webhookUrlEntries } from '../settings/schema.js';
import type { ServerEvents } from './events.js';

/** An instance about to be indexed, as completion needs it. */
export interface ReceivedInstance {
  readonly seriesInstanceUid: string;
  readonly studyInstanceUid: string;
  readonly patientId: string;
  readonly receivedAt: Date;
}

/** What the tracker works with. */
export interface SeriesCompletionOptions {
  readonly states: SeriesStateRepository;
  /** The live settings (completion time, release, which actions). */
  readonly settings: () => Settings;
  /** The storage root: the event's file paths are under it. */
  readonly storageRoot: string;
  /** A relative handler folder is taken from here. */
  readonly dataDir: string;
  readonly logger: Logger;
  readonly events?: ServerEvents;
  /** After a completion wrote its jobs (the worker runs them). */
  readonly onCompleted?: (completion: Completion) => void;
}

/** A series being received. */
interface Receiving {
  readonly seriesInstanceUid: string;
  /** Time (ms) of its newest instance. */
  lastAt: number;
  timer: NodeJS.Timeout | undefined;
  /** Its state row being written (the first instance); instances meanwhile wait for it too. */
  starting: Promise<void> | undefined;
  /** Its completion being written: instances meanwhile reopen it once that is done. */
  completing: Promise<void> | undefined;
  /** Those instances wait for the reopening. */
  reopening: Promise<void> | undefined;
  /** The open associations that stored instances of it. */
  readonly associations: Set<string>;
  /** Its completions so far (0 until the first; more when a late instance reopened it). */
  completion: number;
  /** Whether live views were last told it is being sent (undefined: not told yet). */
  toldSending: boolean | undefined;
}

/** When a completion failed (the database), how long before it is tried again. */
const RETRY_COMPLETION_MS = 5_000;

/** Longest a timer may be set for (Node's limit). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The folder completed series are copied to (a relative one under the data directory), when
 * copying is on and a folder is set.
 */
export function handlerFolderOf(settings: Settings, dataDir: string): string | undefined {
  if (!settings.copy_to_handler_folder || settings.handler_folder_path === '') return undefined;
  const folder = settings.handler_folder_path;
  return isAbsolute(folder) ? folder : resolve(dataDir, folder);
}

/**
 * The jobs a completion writes with these settings: a queue item (auto import), a copy to the
 * handler folder, and, when the processing chain is triggered, a webhook per URL and the
 * command.
 */
export function plannedJobs(settings: Settings, dataDir: string): PlannedJob[] {
  const jobs: PlannedJob[] = [];
  if (settings.auto_import_to_handler) jobs.push({ kind: 'queue', target: '' });
  const handlerFolder = handlerFolderOf(settings, dataDir);
  if (handlerFolder !== undefined) jobs.push({ kind: 'copy', target: handlerFolder });
  if (settings.trigger_processing_chain) {
    for (const url of webhookUrlEntries(settings.webhook_urls)) {
      jobs.push({ kind: 'webhook', target: url });
    }
    if (settings.processing_command !== '') {
      jobs.push({ kind: 'command', target: settings.processing_command });
    }
  }
  return jobs;
}

/** Tracks the series being received and completes them. */
export class SeriesCompletionTracker {
  readonly #options: SeriesCompletionOptions;
  readonly #logger: Logger;
  readonly #series = new Map<string, Receiving>();
  /** The series each open association stored instances of. */
  readonly #byAssociation = new Map<string, Set<string>>();
  /** Completions and state writes under way, which `stop` waits for. */
  readonly #inFlight = new Set<Promise<unknown>>();
  #isStopped = false;

  constructor(options: SeriesCompletionOptions) {
    this.#options = options;
    this.#logger = options.logger;
  }

  /** Series being received now. */
  get receivingCount(): number {
    return this.#series.size;
  }

  /**
   * Whether a series being received is still being sent (an association that stored instances
   * of it is open) rather than waiting for its completion time; undefined when it is not being
   * received.
   */
  isSending(seriesInstanceUid: string): boolean | undefined {
    const entry = this.#series.get(seriesInstanceUid);
    return entry === undefined ? undefined : entry.associations.size > 0;
  }

  /** Takes back the series left receiving (a restart): each completes on its own time. */
  async start(): Promise<void> {
    const left = await this.#options.states.receivingSeries();
    for (const { seriesInstanceUid, lastReceivedAt, completion } of left) {
      if (this.#series.has(seriesInstanceUid)) continue;
      const entry = this.#entry(seriesInstanceUid, Date.parse(lastReceivedAt) || Date.now());
      entry.completion = completion;
      this.#arm(entry);
    }
    if (left.length > 0) {
      this.#logger.info({ series: left.length }, 'series still receiving taken back');
    }
  }

  /** Stops the timers and waits for completions under way; receiving series stay stored. */
  async stop(): Promise<void> {
    this.#isStopped = true;
    for (const entry of this.#series.values()) clearTimeout(entry.timer);
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
    this.#series.clear();
    this.#byAssociation.clear();
  }

  /**
   * An instance is about to be indexed. Undefined (nothing to wait for) unless its series
   * starts or reopens: then a promise of its state being stored, which rejects when it could
   * not be (the instance must then fail).
   */
  instanceReceived(instance: ReceivedInstance): Promise<void> | undefined {
    const now = instance.receivedAt.getTime();
    const entry = this.#series.get(instance.seriesInstanceUid);
    if (entry === undefined) return this.#begin(instance, now);
    entry.lastAt = Math.max(entry.lastAt, now);
    if (entry.completing === undefined) return entry.starting;
    // Arrived while the completion is written: it reopens the series once that is done.
    entry.reopening ??= entry.completing.then(() => {
      const current = this.#series.get(instance.seriesInstanceUid);
      // Still this entry: the completion failed, the series is still receiving.
      if (current === entry) return undefined;
      if (current !== undefined) {
        current.lastAt = Math.max(current.lastAt, entry.lastAt);
        return current.starting;
      }
      return this.#begin(instance, entry.lastAt);
    });
    return entry.reopening;
  }

  /**
   * An association stored an instance of a series (complete_series_on_release, and whether it
   * is being sent: a live view is told when that starts).
   */
  associationStored(associationId: string, seriesInstanceUid: string): void {
    const entry = this.#series.get(seriesInstanceUid);
    if (entry === undefined) return;
    entry.associations.add(associationId);
    if (entry.starting === undefined) this.#emitReceiving(entry, true);
    let series = this.#byAssociation.get(associationId);
    if (series === undefined) {
      series = new Set();
      this.#byAssociation.set(associationId, series);
    }
    series.add(seriesInstanceUid);
  }

  /**
   * An association ended. Released, with complete_series_on_release, its series complete now
   * unless another open association is sending them too; aborted, they wait for their timer.
   */
  associationClosed(associationId: string, isReleased: boolean): void {
    const series = this.#byAssociation.get(associationId);
    if (series === undefined) return;
    this.#byAssociation.delete(associationId);
    const isOnRelease = isReleased && this.#options.settings().complete_series_on_release;
    for (const uid of series) {
      const entry = this.#series.get(uid);
      if (entry === undefined) continue;
      entry.associations.delete(associationId);
      if (entry.associations.size > 0 || entry.starting !== undefined) continue;
      if (isOnRelease) this.#complete(entry, 'association released');
      else this.#emitReceiving(entry, false);
    }
  }

  #entry(seriesInstanceUid: string, lastAt: number): Receiving {
    const entry: Receiving = {
      seriesInstanceUid,
      lastAt,
      timer: undefined,
      starting: undefined,
      completing: undefined,
      reopening: undefined,
      associations: new Set(),
      completion: 0,
      toldSending: undefined,
    };
    this.#series.set(seriesInstanceUid, entry);
    return entry;
  }

  /** A series starts (or starts again) receiving: its state is stored, then its timer set. */
  #begin(instance: ReceivedInstance, lastAt: number): Promise<void> {
    const entry = this.#entry(instance.seriesInstanceUid, lastAt);
    const starting = this.#options.states
      .startReceiving({
        seriesInstanceUid: instance.seriesInstanceUid,
        studyInstanceUid: instance.studyInstanceUid,
        patientId: instance.patientId,
        receivedAt: new Date(lastAt).toISOString(),
      })
      .then(
        (completion) => {
          entry.starting = undefined;
          entry.completion = completion;
          // Its first instance is being stored by an association: it is being sent.
          this.#emitReceiving(entry, true);
          if (completion > 0) {
            this.#logger.info(
              { seriesInstanceUid: entry.seriesInstanceUid, completions: completion },
              'late instance: series reopened',
            );
          }
          this.#arm(entry);
        },
        (error: unknown) => {
          // The next instance tries again; this one fails (its sender may send it again).
          if (this.#series.get(entry.seriesInstanceUid) === entry) {
            this.#series.delete(entry.seriesInstanceUid);
          }
          this.#logger.error(
            { err: error, seriesInstanceUid: entry.seriesInstanceUid },
            'series state not stored',
          );
          throw error;
        },
      );
    entry.starting = starting;
    this.#track(starting);
    return starting;
  }

  /** Sets the series' timer for its completion time (from its newest instance). */
  #arm(entry: Receiving, delayMs?: number): void {
    if (this.#isStopped) return;
    clearTimeout(entry.timer);
    const completionMs = this.#options.settings().series_completion_seconds * 1000;
    const wait = delayMs ?? entry.lastAt + completionMs - Date.now();
    entry.timer = setTimeout(() => this.#onTimer(entry), Math.min(Math.max(0, wait), MAX_TIMER_MS));
    entry.timer.unref();
  }

  #onTimer(entry: Receiving): void {
    entry.timer = undefined;
    if (this.#isStopped || this.#series.get(entry.seriesInstanceUid) !== entry) return;
    const completionMs = this.#options.settings().series_completion_seconds * 1000;
    const rest = entry.lastAt + completionMs - Date.now();
    // Instances arrived since the timer was set: sleep for the rest.
    if (rest > 0) this.#arm(entry, rest);
    else this.#complete(entry, 'no instance for the completion time');
  }

  /** Completes a series: its event and jobs are written; it leaves the receiving ones. */
  #complete(entry: Receiving, reason: string): void {
    if (this.#isStopped || entry.completing !== undefined) return;
    clearTimeout(entry.timer);
    entry.timer = undefined;
    const uid = entry.seriesInstanceUid;
    const settings = this.#options.settings();
    if (settings.copy_to_handler_folder && settings.handler_folder_path === '') {
      this.#logger.warn(
        { seriesInstanceUid: uid },
        'copy to the handler folder is on but no folder is set: not copied',
      );
    }
    const completing = this.#options.states
      .completeSeries(uid, {
        storageRoot: this.#options.storageRoot,
        jobs: plannedJobs(settings, this.#options.dataDir),
        now: new Date().toISOString(),
      })
      .then(
        (completion) => {
          if (this.#series.get(uid) === entry) this.#series.delete(uid);
          if (completion === undefined) return;
          this.#logger.info(
            {
              seriesInstanceUid: uid,
              type: completion.event.type,
              instances: completion.event.series.files.length,
              jobs: completion.jobs,
              reason,
            },
            'series complete',
          );
          this.#emit(completion.series);
          this.#options.onCompleted?.(completion);
        },
        (error: unknown) => {
          this.#logger.error({ err: error, seriesInstanceUid: uid }, 'series completion failed');
          entry.completing = undefined;
          entry.reopening = undefined;
          this.#arm(entry, RETRY_COMPLETION_MS);
        },
      );
    entry.completing = completing;
    this.#track(completing);
  }

  #track(work: Promise<unknown>): void {
    const settled = work.then(
      () => undefined,
      () => undefined,
    );
    this.#inFlight.add(settled);
    void settled.then(() => this.#inFlight.delete(settled));
  }

  /**
   * Tells live views that a series is receiving: being sent, or waiting for its completion
   * time; only when that changed since they were last told.
   */
  #emitReceiving(entry: Receiving, isSending: boolean): void {
    if (entry.toldSending === isSending) return;
    entry.toldSending = isSending;
    this.#emit({
      seriesInstanceUid: entry.seriesInstanceUid,
      completion: entry.completion,
      state: 'receiving',
      lastError: null,
      isSending,
    });
  }

  #emit(change: SeriesStateChange): void {
    try {
      this.#options.events?.emit('series', change);
    } catch (error) {
      // A live view's listener failing must not undo a completion.
      this.#logger.error({ err: error }, 'series event listener failed');
    }
  }
}
