/**
 * The DICOM service's lifecycle (the specification's service control and DicomServiceStatus):
 * start, stop (stop accepting, let open associations finish within a grace period, then abort
 * them) and restart (which applies changed network and storage settings), with the status
 * stored for the console and for the next process. The hand-off of completed series (series
 * completion and the delivery worker) starts and stops with the service. At process start a
 * stale "running" status left by a crash is corrected, and the service starts by itself when
 * enabled with auto-start.
 *
 * Layer: server.
 */

import { constants as fsConstants } from 'node:fs';
import { access, mkdir, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { OpenDatabase } from '../db/dialect.js';
import { QueryRepository } from '../db/repositories/query-repository.js';
import {
  type ServiceState,
  ServiceStatusRepository,
  type StoredServiceStatus,
} from '../db/repositories/service-status-repository.js';
import { TransactionLogRepository } from '../db/repositories/transaction-log-repository.js';
import type { OperationRecord } from '../network/dimse/channel.js';
import { CommandField } from '../network/dimse/command.js';
import { statusCategory } from '../network/dimse/status.js';
import type { Settings } from '../settings/schema.js';
import { DicomServer, type LiveAssociation } from './dicom-server.js';
import type { ServerEvents } from './events.js';
import { HandoffService, type HandoffServiceOptions } from './handoff-service.js';
import { FileInstanceStore } from './instance-store.js';
import type { LiveConfig } from './live-config.js';
import { ServiceMetrics } from './metrics.js';
import { indexQuerySource, moveDestinationsOf } from './query-source.js';
import { destinationLookupOf, Routing, type RoutingOptions } from './routing/index.js';
import type { CleanupTiming } from './storage-cleanup.js';
import { StorageLifecycle, type StorageStatus } from './storage-lifecycle.js';
import type { RescanStatus } from './storage-rescan.js';
import { loadTlsSetup, type TlsSetup, type TlsStatus, tlsStatusOf } from './tls-credentials.js';
import { TransactionLog } from './transaction-log.js';

/** How often the totals are stored while they move. */
const STATUS_SAVE_MS = 2_000;

/** pino's level for the specification's logging level. */
export const PINO_LEVELS: Readonly<Record<Settings['logging_level'], string>> = {
  DEBUG: 'debug',
  INFO: 'info',
  WARNING: 'warn',
  ERROR: 'error',
};

/** The status as shown to an operator (with the storage's intake, projection and cleanup). */
export interface ServiceStatus extends StoredServiceStatus, StorageStatus {
  readonly uptimeSeconds: number | null;
  readonly storageUsedBytes: number;
  readonly aeTitle: string;
  readonly host: string;
  readonly port: number | null;
  /** DICOM over TLS: the listener's port, our certificate and its expiry; null without TLS. */
  readonly tls: TlsStatus | null;
}

/** What the controller runs with. */
export interface ServiceControllerOptions {
  readonly database: OpenDatabase;
  readonly config: LiveConfig;
  readonly dataDir: string;
  readonly logger: Logger;
  readonly shutdownGraceMs: number;
  /** The logging level was given on the command line: the settings' level does not apply. */
  readonly isLogLevelFixed?: boolean;
  /** Where status changes and transaction rows are announced (live views). */
  readonly events?: ServerEvents;
  /** The hand-off's actions and retry timing (tests shorten them). */
  readonly handoff?: Pick<HandoffServiceOptions, 'actions' | 'retry'>;
  /** The forwarder's retry timing (tests shorten it). */
  readonly routing?: Pick<RoutingOptions, 'retry'>;
  /** When the storage cleanup job runs, how long the intake rate is cached (tests shorten them). */
  readonly storage?: {
    readonly cleanup?: Partial<CleanupTiming>;
    readonly intakeRefreshMs?: number;
  };
}

/** Runs the DICOM service: start, stop, restart, status. */
export class ServiceController {
  readonly #options: ServiceControllerOptions;
  readonly #statusRepository: ServiceStatusRepository;
  readonly #transactionLog: TransactionLog;
  readonly #logger: Logger;
  /** The Prometheus metrics (GET /metrics), kept across restarts of the service. */
  readonly metrics: ServiceMetrics;
  /** The index, the cleanup job, the intake rate, the rescan. */
  readonly #storage: StorageLifecycle;
  #state: ServiceState = 'stopped';
  #server: DicomServer | undefined;
  #store: FileInstanceStore | undefined;
  #handoff: HandoffService | undefined;
  #routing: Routing | undefined;
  #tls: TlsSetup | undefined;
  #startedAt: string | null = null;
  #stoppedAt: string | null = null;
  #filesReceived = 0;
  #bytesReceived = 0;
  #errors = 0;
  #lastError: string | null = null;
  #lastErrorAt: string | null = null;
  #saveTimer: NodeJS.Timeout | undefined;
  #startErrorCode: string | undefined;
  /** Found another live process running the service on this database at start-up. */
  #isSecondProcess = false;
  /** One lifecycle operation at a time: a start and a stop asked together run in turn. */
  #turn: Promise<unknown> = Promise.resolve();

  constructor(options: ServiceControllerOptions) {
    this.#options = options;
    this.#logger = options.logger;
    this.#statusRepository = new ServiceStatusRepository(options.database);
    this.#transactionLog = new TransactionLog(
      new TransactionLogRepository(options.database),
      options.logger,
      () => options.config.settings.transaction_log_retention_days,
      options.events,
    );
    this.#storage = new StorageLifecycle({
      database: options.database,
      logger: options.logger,
      ...options.storage,
    });
    this.metrics = new ServiceMetrics({
      database: options.database,
      settings: () => options.config.settings,
      logger: options.logger,
      ...(options.events !== undefined && { events: options.events }),
    });
    this.#applyLogLevel(options.config.settings);
    options.config.onChange((settings) => this.#applyLogLevel(settings));
  }

  get state(): ServiceState {
    return this.#state;
  }

  /** The system's code of the last start failure (EADDRINUSE, ...), if it had one. */
  get startErrorCode(): string | undefined {
    return this.#startErrorCode;
  }

  /** The bound port while running. */
  get port(): number | null {
    return this.#server?.address?.port ?? null;
  }

  /**
   * At process start: corrects a stale status (running, starting or stopping in a process that
   * is gone), keeps the totals, and starts the service when enabled with auto-start.
   */
  async initialize(): Promise<void> {
    const stored = await this.#statusRepository.get();
    if (stored !== undefined) {
      this.#filesReceived = stored.filesReceived;
      this.#bytesReceived = stored.bytesReceived;
      this.#errors = stored.errors;
      this.#lastError = stored.lastError;
      this.#lastErrorAt = stored.lastErrorAt;
      const isOtherLiveProcess =
        stored.pid !== null &&
        stored.pid !== process.pid &&
        stored.hostname === hostname() &&
        isAlive(stored.pid);
      if (stored.state === 'running' && isOtherLiveProcess) {
        // Another server on this machine runs on the same database: its status is not stale,
        // and starting here would fight it for the port and the storage.
        this.#logger.error(
          { pid: stored.pid },
          'another dicom-server process on this machine runs the service on this database: not starting',
        );
        this.#isSecondProcess = true;
        return;
      }
      if (stored.state !== 'stopped' && stored.state !== 'error') {
        this.#logger.warn(
          { state: stored.state, pid: stored.pid, since: stored.startedAt },
          'stale service status from a process that did not stop cleanly: now stopped',
        );
        this.#stoppedAt = stored.updatedAt;
      }
    }
    await this.#saveStatus();
    const { service_enabled, auto_start } = this.#options.config.settings;
    if (service_enabled && auto_start) await this.start().catch(() => undefined);
  }

  /** Starts the service; rejects (with the error stored in the status) when it cannot. */
  start(): Promise<void> {
    return this.#inTurn(() => this.#start());
  }

  /** Stops the service: open associations get the grace period, then are aborted. */
  stop(): Promise<void> {
    return this.#inTurn(() => this.#stop());
  }

  /** Stops and starts again with the current settings. */
  restart(): Promise<void> {
    return this.#inTurn(async () => {
      await this.#stop();
      await this.#start();
    });
  }

  /** Stops the service and writes what is pending (process exit). */
  async close(): Promise<void> {
    await this.#storage.close();
    await this.stop();
    await this.#transactionLog.flush();
  }

  /** The storage cleanup job, intake rate and rescan. */
  get storage(): StorageLifecycle {
    return this.#storage;
  }

  /**
   * Starts a storage rescan in the background, on the running service's storage or, stopped,
   * on the configured storage path; throws RescanRunningError while one runs.
   */
  startStorageRescan(startedBy: string): RescanStatus {
    return this.#storage.startRescan(startedBy, this.storageRoot());
  }

  /** The established associations (none while stopped). */
  liveAssociations(): LiveAssociation[] {
    return this.#server?.liveAssociations() ?? [];
  }

  /** Aborts an association by id; false when it is not open. */
  abortAssociation(id: string): boolean {
    return this.#server?.abortAssociation(id) ?? false;
  }

  /** Hand-off jobs may be due now (an operator retried one): the worker looks, if running. */
  wakeHandoff(): void {
    this.#handoff?.notify();
  }

  /**
   * Whether a series being received is still being sent (its association open) rather than
   * waiting for its completion time; undefined when it is not being received here.
   */
  isSeriesSending(seriesInstanceUid: string): boolean | undefined {
    return this.#handoff?.isSending(seriesInstanceUid);
  }

  /** Series being received now (waiting for their completion). */
  get receivingSeries(): number {
    return this.#handoff?.receivingCount ?? 0;
  }

  /** The status now. */
  status(): ServiceStatus {
    const settings = this.#options.config.settings;
    const startedAt = this.#state === 'running' ? this.#startedAt : null;
    return {
      ...this.#snapshot(),
      uptimeSeconds:
        startedAt === null ? null : Math.floor((Date.now() - Date.parse(startedAt)) / 1000),
      storageUsedBytes: this.#store?.usedBytes ?? 0,
      ...this.#storage.status(),
      aeTitle: settings.ae_title,
      host: settings.host,
      port: this.port,
      tls: tlsStatusOf(this.#tls, this.#server?.tlsAddress?.port ?? null),
    };
  }

  /** The storage root the settings name (default: `storage` in the data directory). */
  storageRoot(settings: Settings = this.#options.config.settings): string {
    const configured = settings.storage_path;
    if (configured === '') return join(this.#options.dataDir, 'storage');
    return isAbsolute(configured) ? configured : resolve(this.#options.dataDir, configured);
  }

  #inTurn(work: () => Promise<void>): Promise<void> {
    const run = this.#turn.then(work);
    this.#turn = run.catch(() => undefined);
    return run;
  }

  async #start(): Promise<void> {
    if (this.#state === 'running') return;
    if (this.#isSecondProcess) {
      throw new Error(
        'another dicom-server process on this machine runs the service on this database',
      );
    }
    await this.#setState('starting');
    // A start (or restart) applies what was stored since the settings were last read.
    await this.#options.config
      .refresh()
      .catch((error: unknown) =>
        this.#logger.warn({ err: error }, 'settings not re-read: starting with those loaded'),
      );
    const settings = this.#options.config.settings;
    try {
      // The index's commits follow the files' durability (SQLite: its log fsynced or not).
      this.#options.database.setDurability(settings.durability);
      // Certificate problems (missing, not matching, expired) stop the start, before any file.
      const tls = await loadTlsSetup(settings);
      const root = await this.#checkStorage(settings);
      const handoff = new HandoffService({
        database: this.#options.database,
        settings: () => this.#options.config.settings,
        storageRoot: root,
        dataDir: this.#options.dataDir,
        logger: this.#logger,
        transactionLog: this.#transactionLog,
        ...(this.#options.events !== undefined && { events: this.#options.events }),
        ...this.#options.handoff,
      });
      const timeouts = {
        artimMs: settings.acse_timeout * 1000,
        acseMs: settings.acse_timeout * 1000,
        dimseMs: settings.dimse_timeout * 1000,
        networkMs: settings.network_timeout * 1000,
      };
      const routing = new Routing({
        database: this.#options.database,
        storageRoot: root,
        aeTitle: () => this.#options.config.settings.ae_title,
        lookupDestination: destinationLookupOf(this.#options.config, tls.client),
        timeouts,
        maxPduLength: settings.max_pdu_length,
        logger: this.#logger,
        transactionLog: this.#transactionLog,
        isTransactionLogEnabled: () => this.#options.config.settings.enable_transaction_log,
        ...(this.#options.events !== undefined && { events: this.#options.events }),
        ...this.#options.routing,
      });
      // The server is made after the store, which asks it how many associations are active.
      let activeAssociations = () => 0;
      const store = await FileInstanceStore.open(
        {
          root,
          structure: settings.storage_structure,
          naming: settings.file_naming,
          maxStorageBytes: Math.round(settings.max_storage_size_gb * 1024 ** 3),
          durability: settings.durability,
          duplicatePolicy: settings.duplicate_policy,
          cleanup: this.#storage.cleanupOptions(settings),
          onInstance: (instance) => handoff.instanceReceived(instance),
          onIndexed: (record) => routing.onIndexed(record),
          isAlone: () => activeAssociations() <= 1,
        },
        this.#storage.index,
        this.#logger,
      );
      const server = new DicomServer({
        instanceStore: store,
        querySource: indexQuerySource(new QueryRepository(this.#options.database), root),
        moveDestinations: moveDestinationsOf(() => this.#options.config.policy, tls.client),
        aeTitle: settings.ae_title,
        host: settings.host,
        port: settings.port,
        ...(tls.listener !== undefined && {
          tls: {
            listener: tls.listener,
            port: settings.tls_port,
            isOnlyListener: settings.tls_port === settings.port,
            ...(tls.certificate !== undefined && { certificate: tls.certificate }),
          },
        }),
        maxAssociations: settings.max_associations,
        maxPduLength: settings.max_pdu_length,
        timeouts,
        logger: this.#logger,
        config: this.#options.config,
        transactionLog: this.#transactionLog,
        onOperation: (record) => {
          this.#count(record);
          this.metrics.operationServed(record);
        },
        onAssociation: (association) => this.metrics.followAssociation(association),
        onConnectionRefused: (reason) => this.metrics.connectionRefused(reason),
        onAssociationActivity: (activity) => handoff.associationActivity(activity),
      });
      activeAssociations = () => server.activeAssociations;
      try {
        await server.start();
      } catch (error) {
        await store.close();
        throw error;
      }
      await handoff.start();
      await routing.start();
      this.#server = server;
      this.#store = store;
      this.#handoff = handoff;
      this.#routing = routing;
      this.#tls = tls;
      this.#storage.started(store, root, settings);
      this.metrics.serviceStarted({
        storageRoot: root,
        store,
        receivingSeries: () => handoff.receivingCount,
      });
      this.#startedAt = new Date().toISOString();
      this.#stoppedAt = null;
      this.#startErrorCode = undefined;
      await this.#setState('running');
    } catch (error) {
      const message = startFailure(error, settings, this.storageRoot(settings));
      this.#startErrorCode = (error as NodeJS.ErrnoException).code;
      this.#lastError = message;
      this.#lastErrorAt = new Date().toISOString();
      this.#logger.error({ err: error }, `DICOM service could not start: ${message}`);
      await this.#setState('error');
      throw new Error(message, { cause: error });
    }
  }

  async #stop(): Promise<void> {
    const server = this.#server;
    if (server === undefined) {
      if (this.#state === 'error') await this.#setState('stopped');
      return;
    }
    await this.#setState('stopping');
    try {
      await this.#storage.stopping();
      await server.stop(this.#options.shutdownGraceMs);
      await this.#store?.close();
    } finally {
      this.#storage.stopped();
      this.metrics.serviceStopped();
      await this.#handoff?.stop(this.#options.shutdownGraceMs);
      await this.#routing?.stop(this.#options.shutdownGraceMs);
      this.#server = undefined;
      this.#store = undefined;
      this.#handoff = undefined;
      this.#routing = undefined;
      this.#tls = undefined;
      this.#stoppedAt = new Date().toISOString();
      await this.#transactionLog.flush();
      await this.#setState('stopped');
    }
  }

  /** The storage root, made when it is the default; a configured one must exist and be writable. */
  async #checkStorage(settings: Settings): Promise<string> {
    const root = this.storageRoot(settings);
    if (settings.storage_path === '') {
      await mkdir(root, { recursive: true });
    } else {
      const info = await stat(root).catch(() => undefined);
      if (info === undefined || !info.isDirectory()) {
        throw Object.assign(new Error('storage path missing'), { code: 'ERR_STORAGE_MISSING' });
      }
    }
    await access(root, fsConstants.W_OK);
    return root;
  }

  #count(record: OperationRecord): void {
    const status = record.response.status ?? 0;
    if (record.error !== undefined || statusCategory(status) === 'failure') {
      this.#errors += 1;
      this.#lastError = record.response.errorComment ?? `status 0x${status.toString(16)}`;
      this.#lastErrorAt = new Date().toISOString();
    } else if (record.command.commandField === CommandField.CStoreRq) {
      this.#filesReceived += 1;
      const size = record.note?.fileSize;
      this.#bytesReceived += typeof size === 'number' ? size : record.datasetBytes;
    }
    this.#saveSoon();
  }

  #saveSoon(): void {
    if (this.#saveTimer !== undefined) return;
    this.#saveTimer = setTimeout(() => {
      this.#saveTimer = undefined;
      void this.#saveStatus();
    }, STATUS_SAVE_MS);
    this.#saveTimer.unref();
  }

  async #setState(state: ServiceState): Promise<void> {
    this.#state = state;
    await this.#saveStatus();
  }

  #snapshot(): StoredServiceStatus {
    return {
      state: this.#state,
      pid: process.pid,
      hostname: hostname(),
      startedAt: this.#startedAt,
      stoppedAt: this.#stoppedAt,
      activeAssociations: this.#server?.activeAssociations ?? 0,
      filesReceived: this.#filesReceived,
      bytesReceived: this.#bytesReceived,
      errors: this.#errors,
      lastError: this.#lastError,
      lastErrorAt: this.#lastErrorAt,
      updatedAt: new Date().toISOString(),
    };
  }

  async #saveStatus(): Promise<void> {
    // The row belongs to the other process found at start-up: this one reports, never writes.
    if (this.#isSecondProcess) return;
    clearTimeout(this.#saveTimer);
    this.#saveTimer = undefined;
    try {
      await this.#statusRepository.save(this.#snapshot());
    } catch (error) {
      this.#logger.error({ err: error }, 'service status could not be stored');
    }
    this.#options.events?.emit('status', this.status());
  }

  #applyLogLevel(settings: Settings): void {
    if (this.#options.isLogLevelFixed !== true) {
      this.#logger.level = PINO_LEVELS[settings.logging_level];
    }
  }
}

/** Whether a process with this id exists (signal 0 checks without sending anything). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, as another user's process.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A start failure as an operator reads it. */
function startFailure(error: unknown, settings: Settings, storageRoot: string): string {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case 'EADDRINUSE':
      // The TLS listener's port, or the plain one's.
      return `port ${(error as { port?: number }).port ?? settings.port} is already in use on ${settings.host}`;
    case 'EACCES':
      return `permission denied (port ${settings.port} or storage path ${storageRoot})`;
    case 'EADDRNOTAVAIL':
      return `address ${settings.host} is not available on this machine`;
    case 'ERR_STORAGE_MISSING':
      return `storage path ${storageRoot} does not exist`;
    case 'EROFS':
      return `storage path ${storageRoot} is read-only`;
    default:
      return error instanceof Error ? error.message : String(error);
  }
}
