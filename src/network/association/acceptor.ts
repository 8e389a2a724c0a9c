/**
 * The association acceptor: one or more listeners (plain TCP, TLS: PS3.15 Annex B) whose
 * connections each run one Association, the decision on each A-ASSOCIATE-RQ (called AE title,
 * application context, the server's own checks, presentation context negotiation) and the
 * association limit, shared by every listener. A TLS connection becomes an association only
 * once its handshake is done and its client certificate passed `checkClientCertificate`.
 *
 * Layer: network/association. Sees no data sets; the DIMSE layer attaches to each association
 * it announces. Reads no certificate files: a TLS listener gets its options built.
 */

import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import {
  DICOM_APPLICATION_CONTEXT,
  IMPLEMENTATION_CLASS_UID,
  IMPLEMENTATION_VERSION_NAME,
} from '../../dicom/uid.js';
import {
  type AAssociateAc,
  type AAssociateRj,
  type AAssociateRq,
  RejectReason,
  RejectResult,
  RejectSource,
} from '../pdu/types.js';
import { checkClientCertificate, describeTlsFailure, type TlsServerOptions } from '../tls.js';
import {
  type AssociateResponse,
  Association,
  type AssociationTimeouts,
  DEFAULT_TIMEOUTS,
} from './association.js';
import { negotiate, type ServedSyntaxes } from './negotiation.js';

/** What the acceptor needs to know to answer requests. */
export interface AcceptorConfig {
  /** Our AE title: a request calling any other is rejected (called-AE-title-not-recognized). */
  readonly aeTitle: string;
  readonly served: ServedSyntaxes;
  readonly maxPduLength: number;
  readonly maxAssociations: number;
  /** Connections still awaiting their A-ASSOCIATE-RQ beyond which new ones are closed at once. */
  readonly maxPendingConnections?: number;
  readonly timeouts?: Partial<AssociationTimeouts>;
  /**
   * The server's own decision on a request from a peer (calling AE validation and the like):
   * a rejection, or undefined to go on.
   */
  readonly authorize?: (
    request: AAssociateRq,
    association: Association,
  ) => AAssociateRj | undefined | Promise<AAssociateRj | undefined>;
}

/** Events of the acceptor. */
export interface AcceptorEvents {
  /** A new connection became an Association (in Sta2). */
  association: [Association];
  /** A connection closed at once because too many were awaiting their request. */
  connectionRefused: [{ remoteAddress: string; remotePort: number }];
  /** A TLS connection that failed its handshake or client certificate check: never associated. */
  tlsRefused: [TlsRefusedConnection];
}

/** A TLS connection refused, and why. */
export interface TlsRefusedConnection {
  /** Empty when the peer had gone before its address could be read. */
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** OpenSSL's or Node's code, or NO_CLIENT_CERTIFICATE. */
  readonly code: string;
  readonly reason: string;
}

/** How one listener takes its connections. */
export interface ListenOptions {
  /** TLS on this listener (built by the caller from its certificates); plain TCP without. */
  readonly tls?: TlsServerOptions;
}

/** A rejection with the given result, source and reason. */
export function rejection(
  result: RejectResult,
  source: RejectSource,
  reason: number,
): AAssociateRj {
  return { type: 'AAssociateRj', result, source, reason };
}

/** Builds our A-ASSOCIATE-AC for a request, negotiating its contexts. */
export function buildAcceptance(
  request: AAssociateRq,
  served: ServedSyntaxes,
  maxPduLength: number,
): AssociateResponse & { type: 'accept' } {
  const info = request.userInformation;
  const outcome = negotiate(
    request.presentationContexts,
    info.roleSelections,
    served,
    info.asyncOperationsWindow !== undefined,
    info.sopClassExtendedNegotiations,
  );
  const pdu: AAssociateAc = {
    type: 'AAssociateAc',
    protocolVersion: 1,
    calledAeTitle: request.calledAeTitle,
    callingAeTitle: request.callingAeTitle,
    applicationContextName: DICOM_APPLICATION_CONTEXT,
    presentationContexts: outcome.results,
    userInformation: {
      maxPduLength,
      implementationClassUid: IMPLEMENTATION_CLASS_UID,
      implementationVersionName: IMPLEMENTATION_VERSION_NAME,
      ...(outcome.asyncOperationsWindow !== undefined && {
        asyncOperationsWindow: outcome.asyncOperationsWindow,
      }),
      roleSelections: outcome.roleSelections,
      sopClassExtendedNegotiations: outcome.extendedNegotiations,
      sopClassCommonExtendedNegotiations: [],
      unknownItems: [],
    },
  };
  return { type: 'accept', pdu, accepted: outcome.accepted };
}

/** Listens for DICOM connections and accepts or rejects their associations. */
export class AssociationAcceptor extends EventEmitter<AcceptorEvents> {
  readonly #config: AcceptorConfig;
  readonly #servers: net.Server[] = [];
  readonly #live = new Set<Association>();
  /** Associations past the provider's check (AE-6) and not yet closed: what the limit counts. */
  readonly #admitted = new Set<Association>();

  constructor(config: AcceptorConfig) {
    super();
    this.#config = config;
  }

  /** Associations currently open in any state. */
  get associations(): ReadonlySet<Association> {
    return this.#live;
  }

  /** Associations counted against the limit (requested and not yet closed). */
  get activeCount(): number {
    return this.#admitted.size;
  }

  /**
   * Starts a listener (another one each call: plain and TLS side by side, one set of
   * associations and one limit); resolves with the bound address (port 0 picks a free port).
   */
  listen(host: string, port: number, options: ListenOptions = {}): Promise<net.AddressInfo> {
    const server = options.tls === undefined ? this.#plainServer() : this.#tlsServer(options.tls);
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      server.once('error', onError);
      server.listen({ host, port }, () => {
        server.off('error', onError);
        this.#servers.push(server);
        resolve(server.address() as net.AddressInfo);
      });
    });
  }

  /** Stops accepting connections on every listener; associations already open go on. */
  stopListening(): Promise<void> {
    // close() stops accepting at once; its callback would wait for every open connection,
    // which is what the caller's grace period decides about, not this.
    for (const server of this.#servers.splice(0)) {
      if (server.listening) server.close();
    }
    return Promise.resolve();
  }

  /** Aborts every open association and resolves when all have closed. */
  async abortAll(): Promise<void> {
    const open = [...this.#live];
    for (const association of open) {
      try {
        association.abort();
      } catch {
        // A bug aborting one association must not keep the others open: close its transport.
        association.destroy();
      }
    }
    await Promise.all(open.map((association) => association.closed));
  }

  #plainServer(): net.Server {
    return net.createServer((socket) => this.#onConnection(socket));
  }

  /**
   * A TLS listener: a connection becomes an association once its handshake is done and its
   * client certificate checked; a handshake that fails, or a refused certificate, is announced
   * (`tlsRefused`) and the connection closed.
   */
  #tlsServer(settings: TlsServerOptions): tls.Server {
    // The handshake is bounded as the wait for an A-ASSOCIATE-RQ is: by ARTIM.
    const handshakeTimeout = this.#config.timeouts?.artimMs ?? DEFAULT_TIMEOUTS.artimMs;
    const server = tls.createServer({ ...settings.options, handshakeTimeout }, (socket) => {
      const refusal = checkClientCertificate(socket, settings.requireClientCertificate);
      if (refusal === undefined) {
        this.#onConnection(socket);
        return;
      }
      this.emit('tlsRefused', {
        remoteAddress: socket.remoteAddress ?? '',
        remotePort: socket.remotePort ?? 0,
        ...refusal,
      });
      socket.destroy();
    });
    server.on('tlsClientError', (error, socket) => {
      this.emit('tlsRefused', {
        remoteAddress: socket.remoteAddress ?? '',
        remotePort: socket.remotePort ?? 0,
        code: String((error as NodeJS.ErrnoException).code ?? 'UNKNOWN'),
        reason: describeTlsFailure(error),
      });
    });
    return server;
  }

  #onConnection(socket: net.Socket): void {
    const pending = this.#live.size - this.#admitted.size;
    if (pending >= (this.#config.maxPendingConnections ?? 100)) {
      this.emit('connectionRefused', {
        remoteAddress: socket.remoteAddress ?? '',
        remotePort: socket.remotePort ?? 0,
      });
      socket.destroy();
      return;
    }
    const association = Association.accept({
      socket,
      maxPduLength: this.#config.maxPduLength,
      ...(this.#config.timeouts !== undefined && { timeouts: this.#config.timeouts }),
      checkProviderAcceptance: () => this.#checkLimit(association),
      onAssociateRequest: (request) => this.#decide(request, association),
    });
    this.#live.add(association);
    association.once('closed', () => {
      this.#live.delete(association);
      this.#admitted.delete(association);
    });
    this.emit('association', association);
  }

  /** AE-6: the association limit is the provider's (rejected-transient, local-limit-exceeded). */
  #checkLimit(association: Association): AAssociateRj | undefined {
    if (this.#admitted.size >= this.#config.maxAssociations) {
      return rejection(
        RejectResult.RejectedTransient,
        RejectSource.ServiceProviderPresentation,
        RejectReason.LocalLimitExceeded,
      );
    }
    this.#admitted.add(association);
    return undefined;
  }

  async #decide(request: AAssociateRq, association: Association): Promise<AssociateResponse> {
    const refuse = (reason: number): AssociateResponse => ({
      type: 'reject',
      pdu: rejection(RejectResult.RejectedPermanent, RejectSource.ServiceUser, reason),
    });
    if (request.calledAeTitle !== this.#config.aeTitle) {
      return refuse(RejectReason.CalledAeTitleNotRecognized);
    }
    if (request.applicationContextName !== DICOM_APPLICATION_CONTEXT) {
      return refuse(RejectReason.ApplicationContextNameNotSupported);
    }
    const refusal = await this.#config.authorize?.(request, association);
    if (refusal !== undefined) return { type: 'reject', pdu: refusal };
    return buildAcceptance(request, this.#config.served, this.#config.maxPduLength);
  }
}
