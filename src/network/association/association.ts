/**
 * One DICOM association over one TCP connection, in either role, driven by the PS3.8 state
 * machine: bytes in are cut into PDUs and turned into events; each event runs the action that
 * Table 9-10 names and moves to the state it names. Timers belong to states: ARTIM (started and
 * stopped by actions), the ACSE timer while we await an A-ASSOCIATE-AC or A-RELEASE-RP, and the
 * network idle timer while the association is established.
 *
 * Layer: network/association. Sees data sets only as bytes. Never logs: it emits events
 * (`transition`, `closed`, ...) that the server's logging subscriber turns into lines.
 */

import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { DicomServerError } from '../../errors.js';
import { decodePdu } from '../pdu/decode.js';
import { encodePDataHeader, encodePdu } from '../pdu/encode.js';
import { PduFramer } from '../pdu/framer.js';
import {
  type AAssociateAc,
  type AAssociateRj,
  type AAssociateRq,
  AbortReason,
  AbortSource,
  type Pdu,
  PduType,
  PROTOCOL_VERSION,
  PresentationContextResult,
  RejectReason,
  RejectResult,
  RejectSource,
} from '../pdu/types.js';
import {
  describeTlsFailure,
  isTlsFailure,
  type TlsClientOptions,
  type TlsSession,
  tlsSessionOf,
} from '../tls.js';
import {
  ACTIONS,
  type ActionContext,
  type EventInput,
  type Indication,
  type OutgoingPData,
} from './actions.js';
import type { AcceptedContext } from './negotiation.js';
import { readInto } from './read-into.js';
import { type Action, type Event, lookupTransition, type State } from './state-machine.js';

/** The largest A-ASSOCIATE PDU we read: 1 MiB, checked before anything is buffered. */
export const MAX_ASSOCIATE_PDU_LENGTH = 1024 * 1024;

/** Release and abort PDUs have a body of 4 bytes; a little slack lets a wrong length be decoded and named. */
const MAX_SMALL_PDU_LENGTH = 1024;

/** Progress that counts as activity for the network timer while a large PDU trickles in. */
const IDLE_PROGRESS_BYTES = 64 * 1024;

/** Timer settings of an association, in milliseconds. */
export interface AssociationTimeouts {
  /** ARTIM: awaiting an A-ASSOCIATE-RQ after connect, and the transport close after release or abort. */
  readonly artimMs: number;
  /** Awaiting an A-ASSOCIATE-AC/RJ or A-RELEASE-RP from the peer. */
  readonly acseMs: number;
  /** No PDU from the peer for this long while established: abort. */
  readonly networkMs: number;
}

/** The defaults of DESIGN.md: ARTIM and ACSE 30 s, network idle 60 s. */
export const DEFAULT_TIMEOUTS: AssociationTimeouts = {
  artimMs: 30_000,
  acseMs: 30_000,
  networkMs: 60_000,
};

/** The acceptor's answer to an A-ASSOCIATE-RQ. */
export type AssociateResponse =
  | {
      readonly type: 'accept';
      readonly pdu: AAssociateAc;
      readonly accepted: readonly AcceptedContext[];
    }
  | { readonly type: 'reject'; readonly pdu: AAssociateRj };

/** How an association ended. */
export type Outcome =
  | 'released'
  | 'rejected'
  | 'aborted-by-peer'
  | 'aborted-locally'
  | 'connection-lost'
  | 'never-associated';

/** A summary of the association when it has ended. */
export interface CloseSummary {
  readonly outcome: Outcome;
  /** The A-ABORT or A-ASSOCIATE-RJ fields, when there was one. */
  readonly abort?: { readonly source: number; readonly reason: number };
  readonly rejection?: AAssociateRj;
  /** Why we aborted or closed: a protocol error, a timeout, a transport error. */
  readonly error?: Error;
  /** The error was a bug in our own code (logged at error level), not the peer's doing. */
  readonly isInternalError: boolean;
  readonly durationMs: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/** One step of the state machine, for the debug log. */
export interface TransitionRecord {
  readonly from: State;
  readonly event: Event;
  readonly action: string;
  readonly to: State;
}

/** Events an association emits. */
export interface AssociationEvents {
  transition: [TransitionRecord];
  pdu: [direction: 'in' | 'out', pdu: Pdu | { readonly type: 'PDataTf'; readonly length: number }];
  established: [];
  /** P-DATA-TF received while data may flow: the DIMSE layer listens. */
  pdata: [pdu: import('../pdu/types.js').PDataTf];
  releaseRequested: [];
  closed: [CloseSummary];
}

/** Options common to both roles. */
export interface AssociationOptions {
  readonly timeouts?: Partial<AssociationTimeouts>;
  /** The Maximum Length Received we announce, and so the largest P-DATA-TF we read. */
  readonly maxPduLength: number;
  /** A short id for logs; random when absent. */
  readonly id?: string;
}

/** Options of an association we accept. */
export interface AcceptorOptions extends AssociationOptions {
  readonly socket: net.Socket;
  /** The service user's decision on a request that the provider found acceptable. */
  readonly onAssociateRequest: (
    request: AAssociateRq,
    association: Association,
  ) => Promise<AssociateResponse>;
  /** Provider-level refusal (e.g. too many associations), checked in AE-6. */
  readonly checkProviderAcceptance?: (request: AAssociateRq) => AAssociateRj | undefined;
}

/** Options of an association we request. */
export interface RequestorOptions extends AssociationOptions {
  readonly host: string;
  readonly port: number;
  readonly request: AAssociateRq;
  readonly connectTimeoutMs?: number;
  /** Connect over TLS (PS3.15 Annex B) with these options; plain TCP without. */
  readonly tls?: TlsClientOptions;
}

/** Rejects requests whose protocol version lacks bit 0 (PS3.8 §9.3.2). */
function checkProtocolVersion(request: AAssociateRq): AAssociateRj | undefined {
  if ((request.protocolVersion & PROTOCOL_VERSION) !== 0) return undefined;
  return {
    type: 'AAssociateRj',
    result: RejectResult.RejectedPermanent,
    source: RejectSource.ServiceProviderAcse,
    reason: RejectReason.ProtocolVersionNotSupported,
  };
}

/** Events of a received, well-formed PDU (PS3.8 Table 9-10); Evt16 (A-ABORT) never aborts. */
const PDU_EVENTS: ReadonlySet<Event> = new Set(['Evt3', 'Evt4', 'Evt6', 'Evt10', 'Evt12', 'Evt13']);

/** The actions with which Table 9-10 answers a PDU that is not valid in the current state. */
const UNEXPECTED_PDU_ACTIONS: ReadonlySet<Action> = new Set(['AA-1', 'AA-7', 'AA-8']);

/** The state-machine event that receiving a PDU is (PS3.8 Table 9-10). */
function eventFor(pdu: Pdu): EventInput {
  switch (pdu.type) {
    case 'AAssociateRq':
      return { event: 'Evt6', pdu };
    case 'AAssociateAc':
      return { event: 'Evt3', pdu };
    case 'AAssociateRj':
      return { event: 'Evt4', pdu };
    case 'PDataTf':
      return { event: 'Evt10', pdu };
    case 'AReleaseRq':
      return { event: 'Evt12' };
    case 'AReleaseRp':
      return { event: 'Evt13' };
    case 'AAbort':
      return { event: 'Evt16', pdu };
    default: {
      const unreachable: never = pdu;
      throw new Error(`unhandled PDU ${String(unreachable)}`);
    }
  }
}

/** A DICOM association: the state machine, its transport and its timers. */
export class Association extends EventEmitter<AssociationEvents> implements ActionContext {
  readonly id: string;
  readonly isRequestor: boolean;
  readonly startedAt = Date.now();
  readonly timeouts: AssociationTimeouts;
  readonly maxPduLength: number;

  #state: State = 'Sta1';
  #socket: net.Socket | undefined;
  readonly #framer: PduFramer;
  readonly #pendingIndications: Indication[] = [];
  #isInternalError = false;
  #releaseGate: (() => Promise<void> | undefined) | undefined;
  #isDiscarding = false;
  #request: AAssociateRq | undefined;
  #acceptance: AAssociateAc | undefined;
  #accepted = new Map<number, AcceptedContext>();
  #readPauses = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  #progressSinceIdleReset = 0;
  #artim: NodeJS.Timeout | undefined;
  #acseTimer: NodeJS.Timeout | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #wasEstablished = false;
  #tlsSession: TlsSession | undefined;
  #isReleased = false;
  #abortSent: { source: number; reason: number } | undefined;
  #abortReceived: { source: number; reason: number } | undefined;
  #closeError: Error | undefined;
  #rejection: AAssociateRj | undefined;
  #releaseWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];
  readonly #acceptor: AcceptorOptions | undefined;
  readonly #requestor: RequestorOptions | undefined;
  readonly closed: Promise<CloseSummary>;
  #resolveClosed!: (summary: CloseSummary) => void;

  private constructor(options: AcceptorOptions | RequestorOptions, role: 'acceptor' | 'requestor') {
    super();
    this.id = options.id ?? randomBytes(4).toString('hex');
    this.isRequestor = role === 'requestor';
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.maxPduLength = options.maxPduLength;
    this.#acceptor = role === 'acceptor' ? (options as AcceptorOptions) : undefined;
    this.#requestor = role === 'requestor' ? (options as RequestorOptions) : undefined;
    this.#framer = new PduFramer((type) => this.#pduLengthLimit(type));
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  /** Takes over an accepted TCP connection (Evt5) and awaits its A-ASSOCIATE-RQ. */
  static accept(options: AcceptorOptions): Association {
    const association = new Association(options, 'acceptor');
    association.#tlsSession = tlsSessionOf(options.socket);
    association.#attach(options.socket);
    association.#dispatch({ event: 'Evt5' });
    return association;
  }

  /**
   * Opens a connection and requests an association (Evt1). Resolves once accepted; rejects with
   * ERR_ASSOCIATION_REJECTED, ERR_CONNECT_FAILED, ERR_TIMEOUT or ERR_ASSOCIATION_ABORTED.
   */
  static request(options: RequestorOptions): {
    association: Association;
    established: Promise<Association>;
  } {
    const association = new Association(options, 'requestor');
    const established = new Promise<Association>((resolve, reject) => {
      association.once('established', () => resolve(association));
      association.closed.then((summary) => reject(association.#failureFor(summary)));
    });
    association.#dispatch({ event: 'Evt1' });
    return { association, established };
  }

  get state(): State {
    return this.#state;
  }
  /** The A-ASSOCIATE-RQ (received as acceptor, sent as requestor). */
  get request(): AAssociateRq | undefined {
    return this.#request ?? this.#requestor?.request;
  }
  get acceptance(): AAssociateAc | undefined {
    return this.#acceptance;
  }
  get callingAeTitle(): string {
    return this.request?.callingAeTitle ?? '';
  }
  get calledAeTitle(): string {
    return this.request?.calledAeTitle ?? '';
  }
  get remoteAddress(): string {
    return this.#socket?.remoteAddress ?? this.#requestor?.host ?? '';
  }
  get remotePort(): number {
    return this.#socket?.remotePort ?? this.#requestor?.port ?? 0;
  }
  /** The TLS protocol, cipher and peer certificate; undefined over plain TCP. */
  get tls(): TlsSession | undefined {
    return this.#tlsSession;
  }
  get bytesIn(): number {
    return this.#bytesIn;
  }
  get bytesOut(): number {
    return this.#bytesOut;
  }
  get isEstablished(): boolean {
    return this.#state === 'Sta6';
  }
  /** The presentation contexts both sides agreed on, by context ID. */
  get acceptedContexts(): ReadonlyMap<number, AcceptedContext> {
    return this.#accepted;
  }
  /** The largest P-DATA-TF variable field the peer takes; 0 means no limit (PS3.8 §D.1). */
  get peerMaxPduLength(): number {
    const info = this.isRequestor
      ? this.#acceptance?.userInformation
      : this.#request?.userInformation;
    return info?.maxPduLength ?? 0;
  }

  /**
   * Sends one PDV as one P-DATA-TF (Evt9). Returns false when the transport's buffer is full:
   * await `drained()` before sending more.
   */
  sendPData(contextId: number, isCommand: boolean, isLast: boolean, data: Buffer): boolean;
  /** ActionContext: writes a P-DATA-TF prepared by the local user (DT-1, AR-7). */
  sendPData(data: OutgoingPData): void;
  sendPData(
    contextOrData: number | OutgoingPData,
    isCommand?: boolean,
    isLast?: boolean,
    data?: Buffer,
  ): boolean | undefined {
    if (typeof contextOrData !== 'number') {
      this.#write(contextOrData.header, contextOrData.data);
      // Events on the data path are built only when someone listens (the debug log).
      if (this.listenerCount('pdu') > 0) {
        this.emit('pdu', 'out', { type: 'PDataTf', length: contextOrData.data.length });
      }
      return undefined;
    }
    const payload = data!;
    const header = encodePDataHeader(contextOrData, isCommand!, isLast!, payload.length);
    this.#dispatch({ event: 'Evt9', data: { header, data: payload } });
    return this.#socket !== undefined && !this.#socket.writableNeedDrain;
  }

  /**
   * Sets what the peer's release request waits for before it is answered: a function returning
   * a promise of the local operations still running, or undefined when none is.
   */
  setReleaseGate(gate: () => Promise<void> | undefined): void {
    this.#releaseGate = gate;
  }

  /** Resolves when the transport can take more data (or has closed). */
  drained(): Promise<void> {
    const socket = this.#socket;
    if (socket === undefined || !socket.writableNeedDrain || socket.destroyed)
      return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        socket.off('drain', done);
        socket.off('close', done);
        resolve();
      };
      socket.on('drain', done);
      socket.on('close', done);
    });
  }

  /** Requests release (Evt11); resolves when the peer confirms. */
  release(): Promise<void> {
    if (this.#state !== 'Sta6') {
      return Promise.reject(
        new DicomServerError('ERR_UNEXPECTED_PDU', `cannot release in state ${this.#state}`, {
          state: this.#state,
        }),
      );
    }
    const confirmed = new Promise<void>((resolve, reject) =>
      this.#releaseWaiters.push({ resolve, reject }),
    );
    this.#dispatch({ event: 'Evt11' });
    return confirmed;
  }

  /**
   * Aborts (Evt15); `cause` says why, for the log. The source is the service user unless the
   * caller detected a fault of the provider's kind (an invalid PDU parameter).
   */
  abort(
    cause?: DicomServerError,
    reason: number = AbortReason.NotSpecified,
    source: AbortSource = AbortSource.ServiceUser,
  ): void {
    if (this.#state === 'Sta1' || this.#state === 'Sta13') return;
    if (this.#state === 'Sta2') {
      // No A-ASSOCIATE-RQ yet: PS3.8 has no abort for this state; closing the connection is
      // the transport event it does have (Evt17, AA-5).
      if (cause !== undefined) this.#closeError ??= cause;
      this.#socket?.destroy();
      return;
    }
    this.#dispatch({
      event: 'Evt15',
      abort: { source, reason },
      ...(cause !== undefined && { cause }),
    });
  }

  /** Closes the transport at once, whatever the state (the last resort of a shutdown). */
  destroy(): void {
    this.#socket?.destroy();
  }

  /** Stops reading from the transport until `resumeReading` (backpressure from a slow consumer). */
  pauseReading(): void {
    this.#readPauses += 1;
    if (this.#readPauses === 1) {
      this.#socket?.pause();
      // The peer is not idle while we hold it back: the network timer waits for the resume.
      if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
      this.#idleTimer = undefined;
    }
  }

  /** Undoes one `pauseReading`; reading resumes when every pause is undone. */
  resumeReading(): void {
    if (this.#readPauses === 0) return;
    this.#readPauses -= 1;
    if (this.#readPauses === 0) {
      this.#socket?.resume();
      // A cleared timer cannot be refreshed: arm a new one.
      if (this.#state === 'Sta6' && this.#idleTimer === undefined) this.#armIdleTimer();
      setImmediate(() => this.#readPdus());
    }
  }

  // ---- the transport --------------------------------------------------------------------

  #attach(socket: net.Socket): void {
    this.#socket = socket;
    // Nagle's algorithm would hold each small response for the peer's delayed ACK (~40 ms).
    socket.setNoDelay(true);
    // Plain TCP is read into the framer's buffer (see read-into.ts); TLS, whose socket hands
    // on decrypted chunks, and a Node.js where that cannot be done, through 'data' events.
    const framer = this.#framer;
    const isReadingInto =
      this.#tlsSession === undefined &&
      !(socket instanceof tls.TLSSocket) &&
      readInto(
        socket,
        () => framer.readTarget(),
        (bytes) => {
          framer.commitRead(bytes);
          this.#onReceived(bytes);
          return this.#readPauses === 0;
        },
      );
    if (!isReadingInto) {
      socket.on('data', (chunk: Buffer) => {
        if (!this.#isDiscarding) framer.push(chunk);
        this.#onReceived(chunk.length);
      });
    }
    socket.on('error', (error) => {
      this.#closeError ??= error;
    });
    socket.on('close', () => {
      if (this.#state === 'Sta1') return;
      if (this.#framer.bufferedBytes > 0 && this.#closeError === undefined) {
        this.#closeError = new DicomServerError(
          'ERR_PDU_TRUNCATED',
          'connection closed part-way through a PDU',
          {
            bufferedBytes: this.#framer.bufferedBytes,
          },
        );
      }
      this.#guard(() => this.#dispatch({ event: 'Evt17' }));
    });
  }

  /** Bytes arrived (already in the framer, unless discarding): counts them and reads PDUs. */
  #onReceived(bytes: number): void {
    this.#bytesIn += bytes;
    if (this.#isDiscarding) {
      this.#framer.discard();
      return;
    }
    this.#progressSinceIdleReset += bytes;
    if (this.#progressSinceIdleReset >= IDLE_PROGRESS_BYTES) this.#touchIdle();
    this.#readPdus();
  }

  #pduLengthLimit(type: number): number {
    if (type === PduType.AAssociateRq || type === PduType.AAssociateAc)
      return MAX_ASSOCIATE_PDU_LENGTH;
    if (type === PduType.PDataTf) return this.maxPduLength;
    return MAX_SMALL_PDU_LENGTH;
  }

  /** Takes whole PDUs from the framer while reading is not paused. */
  #readPdus(): void {
    while (this.#readPauses === 0 && this.#state !== 'Sta1') {
      let pdu: Pdu;
      try {
        const bytes = this.#framer.next();
        if (bytes === null) return;
        // The framer's buffer is reused: P-DATA is handed on as views, valid while it is being
        // handled (see DimseChannel); the rare other PDUs are decoded from a copy, as their
        // decoded form keeps views of some fields.
        pdu = decodePdu(bytes[0] === PduType.PDataTf ? bytes : Buffer.from(bytes));
      } catch (error) {
        this.#protocolError(error);
        return;
      }
      if (!this.#guard(() => this.#onPdu(pdu))) return;
    }
  }

  /**
   * Runs a step of our own protocol code. An exception there is our bug: this association is
   * aborted and the error kept for the log; the process and the other associations go on.
   */
  #guard(step: () => void): boolean {
    try {
      step();
      return true;
    } catch (error) {
      this.#closeError = error instanceof Error ? error : new Error(String(error));
      this.#isInternalError = true;
      if (this.#state !== 'Sta1' && this.#state !== 'Sta13') {
        try {
          this.abort();
        } catch {
          this.#socket?.destroy();
        }
      }
      return false;
    }
  }

  #protocolError(error: unknown): void {
    const typed =
      error instanceof DicomServerError
        ? error
        : new DicomServerError('ERR_PDU_MALFORMED', 'PDU could not be decoded', {}, error);
    this.#closeError ??= typed;
    // Nothing after a malformed PDU can be trusted: what follows is read and dropped, so
    // that the peer's close is still seen.
    this.#isDiscarding = true;
    this.#guard(() => this.#dispatch({ event: 'Evt19', error: typed }));
  }

  #onPdu(pdu: Pdu): void {
    this.#progressSinceIdleReset = 0;
    this.#touchIdle();
    if (pdu.type !== 'PDataTf') this.emit('pdu', 'in', pdu);
    this.#dispatch(eventFor(pdu));
  }

  #write(first: Buffer, second?: Buffer): void {
    const socket = this.#socket;
    if (socket === undefined || socket.destroyed || !socket.writable) return;
    this.#bytesOut += first.length + (second?.length ?? 0);
    if (second === undefined) {
      socket.write(first);
    } else {
      socket.cork();
      socket.write(first);
      socket.write(second);
      process.nextTick(() => socket.uncork());
    }
    this.#touchIdle();
  }

  // ---- the state machine ----------------------------------------------------------------

  #dispatch(input: EventInput): void {
    const from = this.#state;
    const transition = lookupTransition(from, input.event);
    if (transition === undefined) {
      // Transport events after we closed are expected; anything else is a bug of ours.
      if (from === 'Sta1') return;
      throw new DicomServerError(
        'ERR_UNEXPECTED_PDU',
        `event ${input.event} is not applicable in ${from}`,
        {
          state: from,
          event: input.event,
        },
      );
    }
    const to = ACTIONS[transition.action](this, input);
    if (!transition.next.includes(to)) throw new Error(`${transition.action} led to ${to}`);
    this.#state = to;
    if (input.event === 'Evt15' && input.cause !== undefined) this.#closeError ??= input.cause;
    if (PDU_EVENTS.has(input.event) && UNEXPECTED_PDU_ACTIONS.has(transition.action)) {
      // The abort names no cause otherwise, and the log would not say why we aborted.
      this.#closeError ??= new DicomServerError(
        'ERR_UNEXPECTED_PDU',
        `event ${input.event} is unexpected in ${from}`,
        { state: from, event: input.event, abortReason: AbortReason.UnexpectedPdu },
      );
    }
    if (this.listenerCount('transition') > 0) {
      this.emit('transition', { from, event: input.event, action: transition.action, to });
    }
    this.#armStateTimers(from, to);
    this.#deliverIndications();
    if (to === 'Sta1') this.#finish();
  }

  /** Starts the ACSE timer on entering a state that awaits the peer's ACSE answer, the idle timer in Sta6. */
  #armStateTimers(from: State, to: State): void {
    const awaitsAcse = (state: State) =>
      state === 'Sta5' || state === 'Sta7' || state === 'Sta10' || state === 'Sta11';
    if (awaitsAcse(to) && !awaitsAcse(from)) {
      this.#acseTimer = setTimeout(
        () => this.#guard(() => this.#expire('acse')),
        this.timeouts.acseMs,
      );
    } else if (!awaitsAcse(to) && this.#acseTimer !== undefined) {
      clearTimeout(this.#acseTimer);
      this.#acseTimer = undefined;
    }
    if (to === 'Sta6' && this.#idleTimer === undefined && this.#readPauses === 0) {
      this.#armIdleTimer();
    } else if (to !== 'Sta6' && this.#idleTimer !== undefined) {
      clearTimeout(this.#idleTimer);
      this.#idleTimer = undefined;
    }
  }

  #armIdleTimer(): void {
    this.#idleTimer = setTimeout(
      () => this.#guard(() => this.#expire('network')),
      this.timeouts.networkMs,
    );
  }

  #touchIdle(): void {
    if (this.#idleTimer !== undefined && this.#readPauses === 0) this.#idleTimer.refresh();
  }

  #expire(timer: 'acse' | 'network'): void {
    const ms = timer === 'acse' ? this.timeouts.acseMs : this.timeouts.networkMs;
    const cause = new DicomServerError('ERR_TIMEOUT', `${timer} timer expired after ${ms} ms`, {
      timer,
      timeoutMs: ms,
      state: this.#state,
    });
    if (this.#state === 'Sta4') {
      this.#dispatch({
        event: 'Evt15',
        abort: { source: AbortSource.ServiceUser, reason: 0 },
        cause,
      });
      return;
    }
    this.abort(cause);
  }

  #deliverIndications(): void {
    while (this.#pendingIndications.length > 0) {
      this.#handleIndication(this.#pendingIndications.shift()!);
    }
  }

  #handleIndication(indication: Indication): void {
    switch (indication.type) {
      case 'associate-request':
        this.#onAssociateRequest(indication.pdu);
        return;
      case 'associate-accepted':
        this.#onAccepted(indication.pdu);
        return;
      case 'associate-rejected':
        this.#rejection = indication.pdu;
        return;
      case 'pdata':
        this.emit('pdata', indication.pdu);
        return;
      case 'release-requested': {
        this.emit('releaseRequested');
        // On the acceptor side of a collision we first await the A-RELEASE-RP (AR-10).
        if (this.#state !== 'Sta8' && this.#state !== 'Sta9') return;
        // Operations still running send their responses first: P-DATA may go out in Sta8 (AR-7).
        const pending = this.#releaseGate?.();
        if (pending === undefined) {
          this.#dispatch({ event: 'Evt14' });
          return;
        }
        void pending.then(() =>
          this.#guard(() => {
            if (this.#state === 'Sta8' || this.#state === 'Sta9')
              this.#dispatch({ event: 'Evt14' });
          }),
        );
        return;
      }
      case 'release-confirmed':
        this.#isReleased = true;
        for (const waiter of this.#releaseWaiters.splice(0)) waiter.resolve();
        if (this.#state === 'Sta12') this.#dispatch({ event: 'Evt14' });
        return;
      case 'abort':
        // Our own A-ABORTs are noted when sent; this notes the peer's.
        if (indication.fields !== undefined && this.#abortSent === undefined) {
          this.#abortReceived = indication.fields;
        }
        return;
      default: {
        const unreachable: never = indication;
        throw new Error(`unhandled indication ${String(unreachable)}`);
      }
    }
  }

  #onAssociateRequest(request: AAssociateRq): void {
    this.#request = request;
    const acceptor = this.#acceptor!;
    acceptor.onAssociateRequest(request, this).then(
      (response) =>
        this.#guard(() => {
          if (this.#state !== 'Sta3') return;
          if (response.type === 'accept') {
            this.#acceptance = response.pdu;
            this.#accepted = new Map(response.accepted.map((context) => [context.id, context]));
            this.#wasEstablished = true;
            this.#dispatch({ event: 'Evt7', pdu: response.pdu });
            this.emit('established');
          } else {
            this.#dispatch({ event: 'Evt8', pdu: response.pdu });
          }
        }),
      (error: unknown) =>
        this.#guard(() => {
          throw error;
        }),
    );
  }

  #onAccepted(ac: AAssociateAc): void {
    this.#acceptance = ac;
    const proposed = new Map(this.#requestor!.request.presentationContexts.map((c) => [c.id, c]));
    const roles = new Map(ac.userInformation.roleSelections.map((r) => [r.sopClassUid, r]));
    for (const result of ac.presentationContexts) {
      const context = proposed.get(result.id);
      if (result.result !== PresentationContextResult.Acceptance || context === undefined) continue;
      const role = roles.get(context.abstractSyntax);
      this.#accepted.set(result.id, {
        id: result.id,
        abstractSyntax: context.abstractSyntax,
        transferSyntax: result.transferSyntax,
        requestorIsScu: role === undefined ? true : role.scuRole,
        requestorIsScp: role === undefined ? false : role.scpRole,
      });
    }
    this.#wasEstablished = true;
    this.emit('established');
  }

  #finish(): void {
    for (const timer of [this.#artim, this.#acseTimer, this.#idleTimer])
      if (timer) clearTimeout(timer);
    this.#artim = this.#acseTimer = this.#idleTimer = undefined;
    if (this.#socket !== undefined && !this.#socket.destroyed) this.#socket.destroy();
    const abort = this.#abortSent ?? this.#abortReceived;
    const summary: CloseSummary = {
      outcome: this.#outcome(),
      ...(abort !== undefined && { abort }),
      ...(this.#rejection !== undefined && { rejection: this.#rejection }),
      ...(this.#closeError !== undefined && { error: this.#closeError }),
      isInternalError: this.#isInternalError,
      durationMs: Date.now() - this.startedAt,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
    };
    const failure = this.#failureFor(summary);
    for (const waiter of this.#releaseWaiters.splice(0)) waiter.reject(failure);
    this.emit('closed', summary);
    this.#resolveClosed(summary);
  }

  #outcome(): Outcome {
    if (this.#isReleased) return 'released';
    if (this.#rejection !== undefined) return 'rejected';
    if (this.#abortSent !== undefined) return 'aborted-locally';
    if (this.#abortReceived !== undefined) return 'aborted-by-peer';
    return this.#wasEstablished ? 'connection-lost' : 'never-associated';
  }

  #failureFor(summary: CloseSummary): Error {
    if (summary.rejection !== undefined) {
      const { result, source, reason } = summary.rejection;
      return new DicomServerError('ERR_ASSOCIATION_REJECTED', 'association rejected', {
        result,
        source,
        reason,
      });
    }
    if (summary.error instanceof DicomServerError) return summary.error;
    if (summary.outcome === 'never-associated' && summary.error !== undefined) {
      return new DicomServerError('ERR_CONNECT_FAILED', summary.error.message, {}, summary.error);
    }
    if (summary.abort !== undefined) {
      return new DicomServerError('ERR_ASSOCIATION_ABORTED', 'association aborted', {
        ...summary.abort,
      });
    }
    return new DicomServerError('ERR_CONNECTION_CLOSED', 'connection closed', {}, summary.error);
  }

  // ---- ActionContext ------------------------------------------------------------------

  /** AE-1: open the transport connection to the peer (TCP, or TLS when the options say so). */
  openTransport(): void {
    const options = this.#requestor!;
    const target = { host: options.host, port: options.port };
    const socket =
      options.tls === undefined ? net.connect(target) : tls.connect({ ...options.tls, ...target });
    if (options.tls !== undefined) this.#watchTlsFailures(socket);
    const connectTimer = setTimeout(() => {
      this.#closeError = new DicomServerError('ERR_TIMEOUT', 'TCP connect timed out', {
        timer: 'connect',
        host: options.host,
        port: options.port,
      });
      socket.destroy();
    }, options.connectTimeoutMs ?? this.timeouts.acseMs);
    // Over TLS the transport is open once the handshake is done.
    socket.once(options.tls === undefined ? 'connect' : 'secureConnect', () => {
      clearTimeout(connectTimer);
      this.#tlsSession = tlsSessionOf(socket);
      this.#guard(() => this.#dispatch({ event: 'Evt2' }));
    });
    socket.once('close', () => clearTimeout(connectTimer));
    this.#attach(socket);
  }

  /**
   * Names a TLS failure (handshake, the peer's certificate, an alert such as a client
   * certificate required) as ERR_TLS_HANDSHAKE; listening before `#attach` makes it the close
   * error rather than the bare socket error. A peer that closes right after the handshake,
   * before any answer, is said to have likely refused our certificate: with TLS 1.3 that is
   * how a refused client certificate looks to the client (ours closes so too).
   */
  #watchTlsFailures(socket: net.Socket): void {
    const { host, port } = this.#requestor!;
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (!isTlsFailure(error)) return;
      this.#closeError ??= new DicomServerError(
        'ERR_TLS_HANDSHAKE',
        `TLS with ${host}:${port} failed: ${describeTlsFailure(error)}`,
        { host, port, tlsCode: error.code },
        error,
      );
    });
    socket.once('close', () => {
      // A bare socket error (ECONNRESET) says less than this; our own errors say more.
      if (this.#state !== 'Sta5' || this.#closeError instanceof DicomServerError) return;
      this.#closeError = new DicomServerError(
        'ERR_CONNECTION_CLOSED',
        `${host}:${port} closed the TLS connection without answering the association request (did it refuse our client certificate, or want one?)`,
        { host, port },
      );
    });
  }

  /** AE-2: send our A-ASSOCIATE-RQ. */
  sendAssociateRequest(): void {
    this.send(this.#requestor!.request);
  }

  send(pdu: Pdu): void {
    if (pdu.type === 'AAbort') this.#abortSent = { source: pdu.source, reason: pdu.reason };
    else if (pdu.type === 'AAssociateRj') this.#rejection = pdu;
    else if (pdu.type === 'AReleaseRp') this.#isReleased = true;
    this.emit('pdu', 'out', pdu);
    this.#write(encodePdu(pdu));
  }

  closeTransport(): void {
    const socket = this.#socket;
    if (socket === undefined || socket.destroyed) return;
    // Let what we wrote (a release response, a rejection) reach the peer, then close.
    socket.end(() => socket.destroy());
  }

  startArtim(): void {
    if (this.#artim !== undefined) clearTimeout(this.#artim);
    this.#artim = setTimeout(() => {
      this.#artim = undefined;
      // In Sta13 ARTIM only bounds the wait for the peer's close: no request was awaited.
      if (this.#state === 'Sta2') {
        this.#closeError ??= new DicomServerError('ERR_TIMEOUT', 'ARTIM timer expired', {
          timer: 'artim',
          timeoutMs: this.timeouts.artimMs,
        });
      }
      this.#guard(() => this.#dispatch({ event: 'Evt18' }));
    }, this.timeouts.artimMs);
  }

  stopArtim(): void {
    if (this.#artim !== undefined) clearTimeout(this.#artim);
    this.#artim = undefined;
  }

  checkProviderAcceptance(request: AAssociateRq): AAssociateRj | undefined {
    const rejection =
      checkProtocolVersion(request) ?? this.#acceptor?.checkProviderAcceptance?.(request);
    if (rejection !== undefined) this.#request = request;
    return rejection;
  }

  indicate(indication: Indication): void {
    this.#pendingIndications.push(indication);
  }
}
