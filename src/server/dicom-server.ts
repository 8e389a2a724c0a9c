/**
 * The DICOM service: the composition root that wires the acceptor, the DIMSE channel of each
 * association, the service handlers and the logging subscriber, and runs them (start, stop).
 *
 * Layer: server.
 */

import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { storageSopClasses } from '../dicom/sop-classes.js';
import { KNOWN_TRANSFER_SYNTAXES, TransferSyntax } from '../dicom/transfer-syntax.js';
import { SopClass } from '../dicom/uid.js';
import { AssociationAcceptor } from '../network/association/acceptor.js';
import type { Association, AssociationTimeouts } from '../network/association/association.js';
import type { ServedSyntaxes } from '../network/association/negotiation.js';
import { DimseChannel } from '../network/dimse/channel.js';
import { CommandField } from '../network/dimse/command.js';
import { createDispatcher, type ServiceRegistration } from '../services/dispatcher.js';
import { handleEcho } from '../services/echo.js';
import type { InstanceStore } from '../services/ports.js';
import { createStoreHandler } from '../services/store.js';
import { associationLogger, logAssociation, logOperation } from './association-log.js';

/** The settings the DICOM service runs with. */
export interface DicomServerOptions {
  readonly aeTitle: string;
  readonly host: string;
  readonly port: number;
  readonly maxAssociations: number;
  /** The Maximum Length Received we announce. */
  readonly maxPduLength: number;
  readonly timeouts: AssociationTimeouts & { readonly dimseMs: number };
  readonly logger: Logger;
  /** Where received instances go; without it C-STORE is not offered. */
  readonly instanceStore?: InstanceStore;
  /** Storage SOP Classes accepted (default: all we know). */
  readonly storageSopClasses?: ReadonlySet<string>;
  /** Transfer syntaxes accepted for storage (default: all we know). */
  readonly storageTransferSyntaxes?: readonly string[];
}

/** Every transfer syntax we store, uncompressed first (the order matters only as a tie-break). */
export const STORAGE_TRANSFER_SYNTAXES: readonly string[] = KNOWN_TRANSFER_SYNTAXES;

/** Transfer syntaxes for services without data sets, most preferred first. */
const UNCOMPRESSED_SYNTAXES: readonly string[] = [
  TransferSyntax.ExplicitVRLittleEndian,
  TransferSyntax.ImplicitVRLittleEndian,
  TransferSyntax.ExplicitVRBigEndian,
];

/** The service's state as shown to an operator. */
export type ServiceState = 'stopped' | 'starting' | 'running' | 'stopping';

/** The DICOM listener with its services. */
export class DicomServer {
  readonly #options: DicomServerOptions;
  readonly #logger: Logger;
  #acceptor: AssociationAcceptor | undefined;
  #state: ServiceState = 'stopped';
  #address: AddressInfo | undefined;
  #startedAt: Date | undefined;

  constructor(options: DicomServerOptions) {
    this.#options = options;
    this.#logger = options.logger;
  }

  get state(): ServiceState {
    return this.#state;
  }
  /** The bound address while running. */
  get address(): AddressInfo | undefined {
    return this.#address;
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
    });
    acceptor.on('association', (association) => {
      const logger = associationLogger(this.#logger, association);
      logAssociation(logger, association);
      const channel = new DimseChannel(association, {
        onRequest: createDispatcher(this.#registrations(association)),
        dimseTimeoutMs: this.#options.timeouts.dimseMs,
      });
      channel.onOperation((record) => logOperation(logger, record));
    });
    acceptor.on('connectionRefused', (peer) =>
      this.#logger.warn(
        { peer: `${peer.remoteAddress}:${peer.remotePort}` },
        'connection refused: too many pending',
      ),
    );
    try {
      this.#address = await acceptor.listen(this.#options.host, this.#options.port);
    } catch (error) {
      this.#state = 'stopped';
      throw error;
    }
    this.#acceptor = acceptor;
    this.#state = 'running';
    this.#startedAt = new Date();
    this.#logger.info(
      { aeTitle: this.#options.aeTitle, host: this.#address.address, port: this.#address.port },
      'DICOM service listening',
    );
    return this.#address;
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
      this.#startedAt = undefined;
      this.#state = 'stopped';
    }
    this.#logger.info('DICOM service stopped');
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
        handle: (request) => handleStore(request, association.callingAeTitle),
      });
    }
    return registrations;
  }

  #storageClasses(): ReadonlySet<string> {
    return this.#options.storageSopClasses ?? storageSopClasses();
  }

  /** What the acceptor may negotiate: Verification, and storage when a store is configured. */
  #servedSyntaxes(): ServedSyntaxes {
    const storage =
      this.#options.instanceStore === undefined ? new Set<string>() : this.#storageClasses();
    const storageSyntaxes = this.#options.storageTransferSyntaxes ?? STORAGE_TRANSFER_SYNTAXES;
    return {
      transferSyntaxesFor: (abstractSyntax) => {
        if (abstractSyntax === SopClass.Verification) return UNCOMPRESSED_SYNTAXES;
        return storage.has(abstractSyntax) ? storageSyntaxes : undefined;
      },
      canActAsScuFor: () => false,
      prefersRequestorOrder: (abstractSyntax) => storage.has(abstractSyntax),
    };
  }
}
