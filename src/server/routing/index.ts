/**
 * Forwarding as one unit that starts and stops with the DICOM service: the enabled rules kept
 * in memory (compiled; reloaded when they change), matched against each instance the store
 * indexes (`onIndexed`, the instance store's hook), the jobs of a match written to the forward
 * queue before the instance's success is answered, and the forwarder that sends them.
 *
 * The receive path pays nothing for an instance no rule matches: no I/O, `onIndexed` returns
 * undefined. The rules reload when `rulesChanged` is called or a `{ type: 'rules' }` routing
 * event is emitted (the API does, after an edit), and when their fingerprint in the database
 * moved (checked every few seconds: another server sharing a PostgreSQL index edited them); a
 * `routing` event of a job back to pending (an operator's retry) wakes the forwarder.
 *
 * Layer: server.
 */

import type { Logger } from 'pino';
import type { OpenDatabase } from '../../db/dialect.js';
import type { InstanceRecord } from '../../db/repositories/index-repository.js';
import { type ForwardEntry, RoutingRepository } from '../../db/repositories/routing-repository.js';
import { RoutingRulesRepository } from '../../db/repositories/routing-rules-repository.js';
import type { TlsClientOptions } from '../../network/tls.js';
import type { RoutingEvent, ServerEvents } from '../events.js';
import type { RetryPolicy } from '../handoff-worker.js';
import type { LiveConfig } from '../live-config.js';
import type { TransactionLog } from '../transaction-log.js';
import type { DestinationLookup, ForwardTimeouts } from './destination-link.js';
import { Forwarder } from './forwarder.js';
import { type CompiledRules, compileRules, matchRules, type RouteMatch } from './rules.js';

export type { DestinationAe, DestinationLookup, ForwardTimeouts } from './destination-link.js';

/** What forwarding runs with. */
export interface RoutingOptions {
  readonly database: OpenDatabase;
  /** Where the index's file paths are relative to. */
  readonly storageRoot: string;
  /** Our AE title, the calling AE title of the forwarder's associations (read for each). */
  readonly aeTitle: () => string;
  /** Destination AE titles to host and port, looked up at send time. */
  readonly lookupDestination: DestinationLookup;
  readonly timeouts: ForwardTimeouts;
  readonly maxPduLength?: number;
  readonly logger: Logger;
  readonly events?: ServerEvents;
  readonly transactionLog?: TransactionLog;
  /** Whether attempts are written to the transaction log (default: yes). */
  readonly isTransactionLogEnabled?: () => boolean;
  /** The retry timing (tests shorten it). */
  readonly retry?: Partial<RetryPolicy>;
  /** Destinations served at once (default 4). */
  readonly concurrency?: number;
  /** How often the rules are checked for changes made elsewhere (default 10 s; tests shorten it). */
  readonly rulesCheckMs?: number;
}

/** How often the rules are checked for changes another server made, by default. */
const RULES_CHECK_MS = 10_000;

/**
 * Destinations from the live settings' AE titles: refreshed (one indexed read; a reload only
 * when they changed), then looked up by title; one marked use_tls is reached with `clientTls`.
 */
export function destinationLookupOf(
  config: LiveConfig,
  clientTls?: TlsClientOptions,
): DestinationLookup {
  return async (aeTitle) => {
    await config.refresh();
    const peer = config.policy.allowedAes.get(aeTitle);
    if (peer === undefined) return undefined;
    return {
      host: peer.host,
      port: peer.port,
      isActive: peer.is_active,
      ...(peer.use_tls && clientTls !== undefined && { tls: clientTls }),
    };
  };
}

/** The forwarding rules and the forwarder. */
export class Routing {
  readonly #options: RoutingOptions;
  readonly #repository: RoutingRepository;
  readonly #rulesRepository: RoutingRulesRepository;
  readonly #forwarder: Forwarder;
  readonly #logger: Logger;
  #rules: CompiledRules | undefined;
  /** The rules' fingerprint when they were last loaded. */
  #fingerprint: string | undefined;
  #checkTimer: NodeJS.Timeout | undefined;
  #loading: Promise<void> | undefined;
  /** Counts loads started, so that a slow load never overwrites the rules of a later one. */
  #generation = 0;
  readonly #onEvent = (event: RoutingEvent) => this.#handleEvent(event);

  constructor(options: RoutingOptions) {
    this.#options = options;
    this.#logger = options.logger.child({ component: 'routing' });
    this.#repository = new RoutingRepository(options.database);
    this.#rulesRepository = new RoutingRulesRepository(options.database);
    this.#forwarder = new Forwarder({
      jobs: this.#repository,
      storageRoot: options.storageRoot,
      aeTitle: options.aeTitle,
      lookupDestination: options.lookupDestination,
      timeouts: options.timeouts,
      logger: this.#logger,
      ...(options.maxPduLength !== undefined && { maxPduLength: options.maxPduLength }),
      ...(options.events !== undefined && { events: options.events }),
      ...(options.transactionLog !== undefined && { transactionLog: options.transactionLog }),
      ...(options.isTransactionLogEnabled !== undefined && {
        isTransactionLogEnabled: options.isTransactionLogEnabled,
      }),
      ...(options.retry !== undefined && { retry: options.retry }),
      ...(options.concurrency !== undefined && { concurrency: options.concurrency }),
    });
  }

  /** Destinations being served now. */
  get activeCount(): number {
    return this.#forwarder.activeCount;
  }

  /**
   * An instance was stored and indexed (the instance store's `onIndexed`): undefined when no
   * rule matches it, else a promise resolved once its jobs are written (then the forwarder is
   * woken). Before the rules are first loaded, the promise waits for them.
   */
  onIndexed(record: InstanceRecord): Promise<void> | undefined {
    const rules = this.#rules;
    if (rules === undefined) {
      return this.#loaded().then(async () => {
        await this.onIndexed(record);
      });
    }
    const matches = matchRules(rules, record);
    if (matches.length === 0) return undefined;
    return this.#enqueue(record, matches);
  }

  /** Loads the rules, then takes back interrupted jobs and sends what is due. */
  async start(): Promise<void> {
    this.#options.events?.on('routing', this.#onEvent);
    try {
      await this.#loaded();
    } catch (error) {
      // Tried again by the first instance received.
      this.#logger.error({ err: error }, 'routing rules not loaded');
    }
    this.#checkTimer = setInterval(() => {
      this.#reloadIfChanged().catch((error: unknown) =>
        this.#logger.warn({ err: error }, 'routing rules not checked for changes'),
      );
    }, this.#options.rulesCheckMs ?? RULES_CHECK_MS);
    this.#checkTimer.unref();
    await this.#forwarder.start();
  }

  /**
   * Stops the forwarder (see Forwarder.stop: `graceMs` for the files being sent); never throws.
   * Jobs written meanwhile wait in the queue for the next start.
   */
  async stop(graceMs: number): Promise<void> {
    this.#options.events?.off('routing', this.#onEvent);
    clearInterval(this.#checkTimer);
    this.#checkTimer = undefined;
    try {
      await this.#forwarder.stop(graceMs);
    } catch (error) {
      this.#logger.error({ err: error }, 'forwarder did not stop cleanly');
    }
  }

  /** The rules were edited: reloads them (instances indexed meanwhile match the old ones). */
  async rulesChanged(): Promise<void> {
    await this.#load();
  }

  /** Jobs may be due now (an operator retried one): the forwarder looks. */
  notify(): void {
    this.#forwarder.notify();
  }

  /** The rules loaded once: the first load, shared by whoever waits for it. */
  #loaded(): Promise<void> {
    if (this.#rules !== undefined) return Promise.resolve();
    this.#loading ??= this.#load().finally(() => {
      this.#loading = undefined;
    });
    return this.#loading;
  }

  /** Reloads the rules when their fingerprint moved since they were loaded (another server). */
  async #reloadIfChanged(): Promise<void> {
    if (this.#rules === undefined || this.#loading !== undefined) return;
    const fingerprint = await this.#rulesRepository.fingerprint();
    if (fingerprint === this.#fingerprint) return;
    await this.#load();
    this.#logger.info('routing rules changed in the database: reloaded');
  }

  async #load(): Promise<void> {
    const generation = ++this.#generation;
    // Read first: a change made between the two reads is seen again at the next check.
    const fingerprint = await this.#rulesRepository.fingerprint();
    const rules = await this.#rulesRepository.listRules();
    if (generation !== this.#generation) return;
    this.#fingerprint = fingerprint;
    this.#rules = compileRules(rules);
    const enabled = this.#rules.rules.length;
    this.#logger.debug({ rules: rules.length, enabled }, 'routing rules loaded');
  }

  async #enqueue(record: InstanceRecord, matches: readonly RouteMatch[]): Promise<void> {
    const entries: ForwardEntry[] = matches.map((match) => ({
      ruleId: match.ruleId,
      ruleName: match.ruleName,
      destination: match.destination,
      sopInstanceUid: record.sopInstanceUid,
      sopClassUid: record.sopClassUid,
      transferSyntaxUid: record.transferSyntaxUid,
      filePath: record.filePath,
      fileSize: record.fileSize,
      patientId: record.patientId,
      studyInstanceUid: record.studyInstanceUid,
      seriesInstanceUid: record.seriesInstanceUid,
    }));
    const jobs = await this.#repository.enqueue(entries, new Date().toISOString());
    for (const job of jobs) this.#emit({ type: 'job', job });
    this.#forwarder.notify();
  }

  #handleEvent(event: RoutingEvent): void {
    switch (event.type) {
      case 'rules':
        this.rulesChanged().catch((error: unknown) =>
          this.#logger.error({ err: error }, 'routing rules not reloaded'),
        );
        return;
      case 'job':
        // Ours when just written (woken already), else an operator's retry.
        if (event.job.state === 'pending') this.#forwarder.notify();
        return;
      default: {
        const never: never = event;
        throw new Error(`unknown routing event ${String(never)}`);
      }
    }
  }

  #emit(event: RoutingEvent): void {
    try {
      this.#options.events?.emit('routing', event);
    } catch (error) {
      this.#logger.error({ err: error }, 'routing event listener failed');
    }
  }
}
