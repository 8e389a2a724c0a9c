/**
 * The DICOM service: the composition root that wires the acceptor, the DIMSE channel of each
 * association, the service handlers and the logging subscriber, and runs them (start, stop).
 *
 * Layer: server.
 */

import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { type StorageGroup, storageSopClasses } from '../dicom/sop-classes.js';
import { KNOWN_TRANSFER_SYNTAXES, TransferSyntax } from '../dicom/transfer-syntax.js';
import { SopClass } from '../dicom/uid.js';
import { AssociationAcceptor, rejection } from '../network/association/acceptor.js';
import type { Association, AssociationTimeouts } from '../network/association/association.js';
import type { ServedSyntaxes } from '../network/association/negotiation.js';
import {
  DimseChannel,
  type IncomingRequest,
  type OperationRecord,
  type RequestHandler,
} from '../network/dimse/channel.js';
import { CommandField } from '../network/dimse/command.js';
import { Status } from '../network/dimse/status.js';
import { RejectReason, RejectResult, RejectSource } from '../network/pdu/types.js';
import type { TlsServerOptions, TlsSession } from '../network/tls.js';
import { createDispatcher, type ServiceRegistration } from '../services/dispatcher.js';
import { handleEcho } from '../services/echo.js';
import type { InstanceStore, MoveDestinations, QuerySource } from '../services/ports.js';
import { createStoreHandler } from '../services/store.js';
import { DEFAULT_SETTINGS, type Settings } from '../settings/schema.js';
import { decideAssociation, isPermitted, type Permission } from './access-control.js';
import { associationLogger, logAssociation, logOperation } from './association-log.js';
import type { LiveConfig } from './live-config.js';
import type { ConnectionRefusal } from './metrics.js';
import { queryRetrieveRegistrations, queryRetrieveServiceOf } from './query-retrieve.js';
import { type CertificateSummary, daysUntil } from './tls-credentials.js';
import type { TransactionLog } from './transaction-log.js';
import { recordAssociation, recordOperation } from './transaction-records.js';

/** A certificate this close to its end of validity is warned about at start. */
const CERTIFICATE_WARNING_DAYS = 30;

/** The TLS listener (PS3.15 Annex B). */
export interface DicomTlsOptions {
  readonly listener: TlsServerOptions;
  /** Its port; ignored when `isOnlyListener`. */
  readonly port: number;
  /** TLS on the main port and no plain listener (tls_port equals port). */
  readonly isOnlyListener: boolean;
  /** Our certificate, for the log. */
  readonly certificate?: CertificateSummary;
}

/** The settings the DICOM service runs with. */
export interface DicomServerOptions {
  readonly aeTitle: string;
  readonly host: string;
  readonly port: number;
  /** A TLS listener beside the plain one, or instead of it; the same limits and access control. */
  readonly tls?: DicomTlsOptions;
  readonly maxAssociations: number;
  /** The Maximum Length Received we announce. */
  readonly maxPduLength: number;
  readonly timeouts: AssociationTimeouts & { readonly dimseMs: number };
  readonly logger: Logger;
  /** Where received instances go; without it C-STORE is not offered. */
  readonly instanceStore?: InstanceStore;
  /** The index as queries see it; without it C-FIND, C-MOVE and C-GET are not offered. */
  readonly querySource?: QuerySource;
  /** Where C-MOVE may send (default: nowhere, every destination unknown). */
  readonly moveDestinations?: MoveDestinations;
  /** Storage SOP Classes accepted (default: all we know). */
  readonly storageSopClasses?: ReadonlySet<string>;
  /** Transfer syntaxes accepted for storage (default: all we know). */
  readonly storageTransferSyntaxes?: readonly string[];
  /**
   * The live settings and allowed peers: access control, what is accepted, which services are
   * on, the logging toggles, refreshed for every association. Without it (tests, benchmarks)
   * every peer is accepted for every service offered.
   */
  readonly config?: LiveConfig;
  /** Where association events and operations are recorded (the audit trail). */
  readonly transactionLog?: TransactionLog;
  /** Called after each operation (the service's totals). */
  readonly onOperation?: (record: OperationRecord) => void;
  /** Told of each instance an association stored, and of its end (series completion). */
  readonly onAssociationActivity?: (activity: AssociationActivity) => void;
  /** Told of each new connection's association, before its request is read (the metrics). */
  readonly onAssociation?: (association: Association) => void;
  /** Told of each connection closed before an association (the metrics). */
  readonly onConnectionRefused?: (reason: ConnectionRefusal) => void;
}

/** What an association did, as series completion follows it. */
export type AssociationActivity =
  | {
      readonly type: 'stored';
      readonly associationId: string;
      readonly seriesInstanceUid: string;
    }
  | { readonly type: 'closed'; readonly associationId: string; readonly isReleased: boolean };

/** Every transfer syntax we store, uncompressed first (the order matters only as a tie-break). */
export const STORAGE_TRANSFER_SYNTAXES: readonly string[] = KNOWN_TRANSFER_SYNTAXES;

/** Every storage SOP class we know: those a C-GET may send back, whatever is accepted now. */
const ALL_STORAGE_CLASSES: ReadonlySet<string> = storageSopClasses();

/** Transfer syntaxes for services without data sets, most preferred first. */
const UNCOMPRESSED_SYNTAXES: readonly string[] = [
  TransferSyntax.ExplicitVRLittleEndian,
  TransferSyntax.ImplicitVRLittleEndian,
  TransferSyntax.ExplicitVRBigEndian,
];

/** A live association as an operator sees it (the console's Active Associations). */
export interface LiveAssociation {
  readonly id: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly callingAeTitle: string;
  readonly calledAeTitle: string;
  readonly acceptedContexts: readonly { abstractSyntax: string; transferSyntax: string }[];
  readonly operations: number;
  readonly instancesStored: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly startedAt: string;
  readonly durationMs: number;
  /** The TLS protocol, cipher and client certificate; null over plain TCP. */
  readonly tls: TlsSession | null;
}

/** The service's state as shown to an operator. */
export type ServiceState = 'stopped' | 'starting' | 'running' | 'stopping';

/** The DICOM listener with its services. */
export class DicomServer {
  readonly #options: DicomServerOptions;
  readonly #logger: Logger;
  #acceptor: AssociationAcceptor | undefined;
  #state: ServiceState = 'stopped';
  /** Why an association was refused, or would have been (observe mode), for its record. */
  readonly #decisions = new WeakMap<Association, string>();
  /** Operations and stored instances of each association, for the live view. */
  readonly #counts = new WeakMap<Association, { operations: number; instancesStored: number }>();
  #storageClassesFor: { groups: readonly StorageGroup[]; classes: ReadonlySet<string> } | undefined;
  #address: AddressInfo | undefined;
  #tlsAddress: AddressInfo | undefined;
  #startedAt: Date | undefined;

  constructor(options: DicomServerOptions) {
    this.#options = options;
    this.#logger = options.logger;
  }

  get state(): ServiceState {
    return this.#state;
  }
  /** The bound address while running (the TLS one when TLS is the only listener). */
  get address(): AddressInfo | undefined {
    return this.#address;
  }
  /** The TLS listener's bound address while running, if it has one. */
  get tlsAddress(): AddressInfo | undefined {
    return this.#tlsAddress;
  }
  get startedAt(): Date | undefined {
    return this.#startedAt;
  }
  /** Open connections in any state, including those still awaiting their A-ASSOCIATE-RQ. */
  get openConnections(): number {
    return this.#acceptor?.associations.size ?? 0;
  }

  /** Associations counted against the limit. */
  get activeAssociations(): number {
    return this.#acceptor?.activeCount ?? 0;
  }

  /** The established associations, oldest first. */
  liveAssociations(): LiveAssociation[] {
    const now = Date.now();
    return [...(this.#acceptor?.associations ?? [])]
      .filter((association) => association.isEstablished)
      .map((association) => {
        const counts = this.#counts.get(association);
        return {
          id: association.id,
          remoteAddress: association.remoteAddress,
          remotePort: association.remotePort,
          callingAeTitle: association.callingAeTitle.trim(),
          calledAeTitle: association.calledAeTitle.trim(),
          acceptedContexts: [...association.acceptedContexts.values()].map((context) => ({
            abstractSyntax: context.abstractSyntax,
            transferSyntax: context.transferSyntax,
          })),
          operations: counts?.operations ?? 0,
          instancesStored: counts?.instancesStored ?? 0,
          bytesIn: association.bytesIn,
          bytesOut: association.bytesOut,
          startedAt: new Date(association.startedAt).toISOString(),
          durationMs: now - association.startedAt,
          tls: association.tls ?? null,
        };
      })
      .sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  }

  /** Aborts an association (A-ABORT, service-user); false when no such association is open. */
  abortAssociation(id: string): boolean {
    const association = [...(this.#acceptor?.associations ?? [])].find((a) => a.id === id);
    if (association === undefined) return false;
    this.#logger.warn({ assoc: id }, 'association aborted by an administrator');
    association.abort();
    return true;
  }

  /** Starts listening; rejects (e.g. EADDRINUSE) with the service left stopped. */
  async start(): Promise<AddressInfo> {
    if (this.#state !== 'stopped') throw new Error(`cannot start while ${this.#state}`);
    this.#state = 'starting';
    const served = this.#servedSyntaxes();
    const acceptor = new AssociationAcceptor({
      aeTitle: this.#options.aeTitle,
      served,
      maxPduLength: this.#options.maxPduLength,
      maxAssociations: this.#options.maxAssociations,
      maxPendingConnections: Math.max(32, this.#options.maxAssociations * 4),
      timeouts: this.#options.timeouts,
      authorize: (request, association) => this.#authorize(request.callingAeTitle, association),
    });
    acceptor.on('association', (association) => {
      this.#options.onAssociation?.(association);
      const logger = associationLogger(this.#logger, association);
      // Asked as each line is due: the association's request refreshes the settings first.
      logAssociation(
        logger,
        association,
        () => this.#options.config?.settings.log_connection_attempts ?? true,
      );
      const log = this.#options.transactionLog;
      // The switch is read as each row is made: at connection time the settings are not yet
      // refreshed for this association, and the first one after a change went the old way.
      const isLogOn = () => this.#options.config?.settings.enable_transaction_log ?? true;
      if (log !== undefined) {
        recordAssociation(log, association, () => this.#decisions.get(association), isLogOn);
      }
      // What the association serves is read when it is established, with the settings its
      // request refreshed (#authorize) and was negotiated with. Read at connection time, before
      // that refresh, it missed a SOP class group switched on since the previous association:
      // the class was negotiated, then its requests refused (0x0211).
      let dispatch: RequestHandler | undefined;
      association.once('established', () => {
        dispatch = createDispatcher(this.#registrations(association));
      });
      const channel = new DimseChannel(association, {
        // Requests come only on an established association.
        onRequest: (request, signal, dimse) => dispatch!(request, signal, dimse),
        dimseTimeoutMs: this.#options.timeouts.dimseMs,
      });
      const counts = { operations: 0, instancesStored: 0 };
      this.#counts.set(association, counts);
      const onActivity = this.#options.onAssociationActivity;
      if (onActivity !== undefined) {
        association.once('closed', (summary) =>
          onActivity({
            type: 'closed',
            associationId: association.id,
            isReleased: summary.outcome === 'released',
          }),
        );
      }
      channel.onOperation((record) => {
        counts.operations += 1;
        if (
          record.command.commandField === CommandField.CStoreRq &&
          typeof record.note?.filePath === 'string'
        ) {
          counts.instancesStored += 1;
          const seriesInstanceUid = record.note.seriesInstanceUid;
          if (onActivity !== undefined && typeof seriesInstanceUid === 'string') {
            onActivity({ type: 'stored', associationId: association.id, seriesInstanceUid });
          }
        }
        const current = this.#options.config?.settings;
        logOperation(logger, record, current?.log_received_files ?? true);
        if (log !== undefined && isLogOn()) {
          recordOperation(
            log,
            association,
            record,
            this.#options.config?.settings.enable_performance_metrics ?? true,
          );
        }
        this.#options.onOperation?.(record);
      });
    });
    acceptor.on('connectionRefused', (peer) => {
      this.#options.onConnectionRefused?.('too-many-pending');
      this.#logger.warn(
        { peer: `${peer.remoteAddress}:${peer.remotePort}` },
        'connection refused: too many pending',
      );
    });
    acceptor.on('tlsRefused', (refused) => {
      this.#options.onConnectionRefused?.('tls');
      this.#logger.warn(
        {
          peer:
            refused.remoteAddress === ''
              ? undefined
              : `${refused.remoteAddress}:${refused.remotePort}`,
          code: refused.code,
          reason: refused.reason,
        },
        `TLS connection rejected: ${refused.reason}`,
      );
    });
    try {
      await this.#listen(acceptor);
    } catch (error) {
      await acceptor.stopListening();
      this.#address = this.#tlsAddress = undefined;
      this.#state = 'stopped';
      throw error;
    }
    const address = this.#address!;
    this.#acceptor = acceptor;
    this.#state = 'running';
    this.#startedAt = new Date();
    this.#logger.info(
      {
        aeTitle: this.#options.aeTitle,
        host: address.address,
        port: address.port,
        tlsPort: this.#tlsAddress?.port,
      },
      'DICOM service listening',
    );
    this.#logTls();
    return address;
  }

  /** Opens the plain listener, the TLS one, or both (one acceptor: one limit, one set). */
  async #listen(acceptor: AssociationAcceptor): Promise<void> {
    const { host, port, tls } = this.#options;
    if (tls?.isOnlyListener !== true) this.#address = await acceptor.listen(host, port);
    if (tls === undefined) return;
    const tlsPort = tls.isOnlyListener ? port : tls.port;
    this.#tlsAddress = await acceptor.listen(host, tlsPort, { tls: tls.listener });
    if (tls.isOnlyListener) this.#address = this.#tlsAddress;
  }

  /** The TLS listener's certificate in the log; a warning when it ends within 30 days. */
  #logTls(): void {
    const tls = this.#options.tls;
    if (tls === undefined || this.#tlsAddress === undefined) return;
    const certificate = tls.certificate;
    const fields = {
      tlsPort: this.#tlsAddress.port,
      requireClientCertificate: tls.listener.requireClientCertificate,
      subject: certificate?.subject,
      validTo: certificate?.validTo,
    };
    this.#logger.info(fields, 'DICOM TLS listening');
    if (certificate === undefined) return;
    const daysLeft = daysUntil(certificate.validTo);
    if (daysLeft < CERTIFICATE_WARNING_DAYS) {
      this.#logger.warn({ ...fields, daysLeft }, 'TLS certificate expires soon: renew it');
    }
  }

  /**
   * Stops accepting, lets open associations finish for up to `graceMs`, then aborts those
   * still open.
   */
  async stop(graceMs = 10_000): Promise<void> {
    const acceptor = this.#acceptor;
    if (acceptor === undefined || this.#state !== 'running') return;
    this.#state = 'stopping';
    try {
      await acceptor.stopListening();
      const open = [...acceptor.associations];
      if (open.length > 0) {
        this.#logger.info({ open: open.length, graceMs }, 'waiting for open associations');
        let timer: NodeJS.Timeout | undefined;
        const grace = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, graceMs);
        });
        await Promise.race([Promise.all(open.map((a) => a.closed)), grace]);
        clearTimeout(timer);
        await acceptor.abortAll();
      }
    } finally {
      // Whatever happened above, the service is stopped and can be started again.
      this.#acceptor = undefined;
      this.#address = undefined;
      this.#tlsAddress = undefined;
      this.#startedAt = undefined;
      this.#state = 'stopped';
    }
    this.#logger.info('DICOM service stopped');
  }

  /**
   * Access control when a peer requests an association (see access-control.ts): refreshes the
   * live settings, then refuses, lets through, or lets through and reports (observe mode).
   */
  async #authorize(callingAeTitle: string, association: Association) {
    const config = this.#options.config;
    if (config === undefined) return undefined;
    await config.refresh();
    const decision = decideAssociation(
      config.policy,
      association.remoteAddress,
      callingAeTitle.trim(),
    );
    const fields = {
      callingAe: callingAeTitle.trim(),
      peer: `${association.remoteAddress}:${association.remotePort}`,
    };
    if (decision.isAllowed) {
      if (decision.observed !== undefined) {
        const message = `observe mode, would be rejected: ${decision.observed.message}`;
        this.#decisions.set(association, message);
        this.#logger.warn({ ...fields, reason: decision.observed.reason }, message);
      }
      return undefined;
    }
    this.#decisions.set(association, decision.message);
    this.#logger.warn(
      { ...fields, reason: decision.reason },
      `association refused: ${decision.message}`,
    );
    return rejection(
      RejectResult.RejectedPermanent,
      RejectSource.ServiceUser,
      decision.reason === 'address-not-allowed'
        ? RejectReason.NoReasonGiven
        : RejectReason.CallingAeTitleNotRecognized,
    );
  }

  /** The services offered on one association. */
  #registrations(association: Association): ServiceRegistration[] {
    const registrations: ServiceRegistration[] = [
      {
        commandField: CommandField.CEchoRq,
        abstractSyntaxes: new Set([SopClass.Verification]),
        handle: (request) => handleEcho(request),
      },
    ];
    const store = this.#options.instanceStore;
    if (store !== undefined) {
      const handleStore = createStoreHandler(store);
      registrations.push({
        commandField: CommandField.CStoreRq,
        abstractSyntaxes: this.#storageClasses(),
        handle: (request) =>
          this.#ifPermitted(association, 'store', request) ??
          handleStore(request, association.callingAeTitle),
      });
    }
    const source = this.#options.querySource;
    if (source !== undefined) {
      registrations.push(
        ...queryRetrieveRegistrations({
          source,
          association,
          settings: () => this.#options.config?.settings ?? DEFAULT_SETTINGS,
          aeTitle: this.#options.aeTitle,
          timeouts: this.#options.timeouts,
          maxPduLength: this.#options.maxPduLength,
          destinations: this.#options.moveDestinations ?? { lookup: () => undefined },
          logger: associationLogger(this.#logger, association),
          ifPermitted: (permission, request) => this.#ifPermitted(association, permission, request),
        }),
      );
    }
    return registrations;
  }

  /**
   * A refusal (0x0124, not authorized; PS3.7 §C.5.15) when the calling peer may not request
   * operations of this kind, else undefined. The data set, if any, is read and dropped by the
   * channel before the response goes out.
   */
  #ifPermitted(
    association: Association,
    permission: Permission,
    request: IncomingRequest,
  ): Promise<{ status: number; fields: { errorComment: string } }> | undefined {
    const config = this.#options.config;
    const callingAe = association.callingAeTitle.trim();
    if (config === undefined || isPermitted(config.policy, callingAe, permission)) return undefined;
    this.#logger.warn(
      {
        assoc: association.id,
        callingAe,
        permission,
        sopInstanceUid: request.command.affectedSopInstanceUid,
      },
      `operation refused: ${callingAe} may not ${permission}`,
    );
    return Promise.resolve({
      status: Status.NotAuthorized,
      fields: { errorComment: `${callingAe} may not ${permission}` },
    });
  }

  /** Storage SOP Classes accepted now: the settings' groups, or the options' fixed set. */
  #storageClasses(): ReadonlySet<string> {
    const settings = this.#options.config?.settings;
    if (settings === undefined) return this.#options.storageSopClasses ?? storageSopClasses();
    const groups = settings.accepted_sop_class_groups;
    if (this.#storageClassesFor?.groups !== groups) {
      this.#storageClassesFor = { groups, classes: storageSopClasses(groups) };
    }
    return this.#storageClassesFor.classes;
  }

  /** Transfer syntaxes accepted for storage now, in our order of preference. */
  #storageSyntaxes(settings: Settings | undefined): readonly string[] {
    const fixed = this.#options.storageTransferSyntaxes ?? STORAGE_TRANSFER_SYNTAXES;
    if (settings === undefined) return fixed;
    const accepted = new Set(settings.accepted_transfer_syntaxes);
    return fixed.filter((uid) => accepted.has(uid));
  }

  /**
   * What the acceptor may negotiate, read afresh for each association: Verification when
   * C-ECHO is on, the accepted storage classes when a store is configured and C-STORE is on.
   * A service switched off has its contexts rejected (abstract syntax not supported).
   */
  #servedSyntaxes(): ServedSyntaxes {
    const isOn = (service: keyof Settings) =>
      (this.#options.config?.settings[service] ?? true) === true;
    const isStorage = (abstractSyntax: string) =>
      this.#options.instanceStore !== undefined &&
      isOn('enable_c_store') &&
      this.#storageClasses().has(abstractSyntax);
    const isQueryRetrieve = (abstractSyntax: string) => {
      const service = queryRetrieveServiceOf(abstractSyntax);
      return service !== undefined && this.#options.querySource !== undefined && isOn(service);
    };
    return {
      transferSyntaxesFor: (abstractSyntax) => {
        if (abstractSyntax === SopClass.Verification) {
          return isOn('enable_c_echo') ? UNCOMPRESSED_SYNTAXES : undefined;
        }
        if (isQueryRetrieve(abstractSyntax)) return UNCOMPRESSED_SYNTAXES;
        return isStorage(abstractSyntax)
          ? this.#storageSyntaxes(this.#options.config?.settings)
          : undefined;
      },
      // C-GET sends its sub-operations on the requestor's association: we are then the
      // storage SCU, for any storage SOP class we may hold.
      canActAsScuFor: (sopClassUid) =>
        this.#options.querySource !== undefined &&
        isOn('enable_c_get') &&
        ALL_STORAGE_CLASSES.has(sopClassUid),
      // With C-STORE off, or a class or syntax not accepted for storage, a C-GET requestor's
      // storage contexts are still accepted for the SCP role it takes: we send what we hold.
      transferSyntaxesAsScuFor: () => STORAGE_TRANSFER_SYNTAXES,
      prefersRequestorOrder: (abstractSyntax) => isStorage(abstractSyntax),
      // Relational queries and retrievals are granted when asked for; the other options
      // (combined date-time matching, fuzzy names, time zones, enhanced conversion) are not.
      answerExtendedNegotiation: (sopClassUid, proposed) =>
        isQueryRetrieve(sopClassUid)
          ? Uint8Array.from(proposed, (byte, i) => (i === 0 ? byte & 1 : 0))
          : undefined,
    };
  }
}
