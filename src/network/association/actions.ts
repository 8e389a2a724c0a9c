/**
 * The actions of the upper-layer state machine (PS3.8 §9.2.2, Tables 9-6 to 9-9), one small
 * function each. An action acts through an ActionContext (the association) and returns the
 * state it leads to, which must be one of those the table allows for it.
 *
 * Layer: network/association. No I/O of its own: sockets and timers are behind the context.
 */

import type { DicomServerError } from '../../errors.js';
import {
  type AAbort,
  type AAssociateAc,
  type AAssociateRj,
  type AAssociateRq,
  AbortReason,
  AbortSource,
  type PDataTf,
  type Pdu,
} from '../pdu/types.js';
import type { Action, Event, State } from './state-machine.js';

/** A P-DATA-TF already encoded as a 12-byte header and its data, written without copying. */
export interface OutgoingPData {
  readonly header: Buffer;
  readonly data: Buffer;
}

/** Source and reason of an A-ABORT to send. */
export interface AbortParameters {
  readonly source: AbortSource;
  readonly reason: number;
}

/** An event with what came with it. */
export type EventInput =
  | { readonly event: 'Evt1' | 'Evt2' | 'Evt5' | 'Evt11' | 'Evt12' | 'Evt13' | 'Evt14' }
  | { readonly event: 'Evt17' | 'Evt18' }
  | { readonly event: 'Evt3'; readonly pdu: AAssociateAc }
  | { readonly event: 'Evt4'; readonly pdu: AAssociateRj }
  | { readonly event: 'Evt6'; readonly pdu: AAssociateRq }
  | { readonly event: 'Evt7'; readonly pdu: AAssociateAc }
  | { readonly event: 'Evt8'; readonly pdu: AAssociateRj }
  | { readonly event: 'Evt9'; readonly data: OutgoingPData }
  | { readonly event: 'Evt10'; readonly pdu: PDataTf }
  | { readonly event: 'Evt15'; readonly abort: AbortParameters; readonly cause?: DicomServerError }
  | { readonly event: 'Evt16'; readonly pdu: AAbort }
  | { readonly event: 'Evt19'; readonly error: DicomServerError };

/** What the association tells its user (the primitives of PS3.8 §7 delivered upward). */
export type Indication =
  | { readonly type: 'associate-request'; readonly pdu: AAssociateRq }
  | { readonly type: 'associate-accepted'; readonly pdu: AAssociateAc }
  | { readonly type: 'associate-rejected'; readonly pdu: AAssociateRj }
  | { readonly type: 'pdata'; readonly pdu: PDataTf }
  | { readonly type: 'release-requested'; readonly isCollision: boolean }
  | { readonly type: 'release-confirmed' }
  /** A-ABORT (with the PDU's fields) or A-P-ABORT on transport loss (without them). */
  | { readonly type: 'abort'; readonly fields?: AbortParameters };

/** What an action may do to the association. */
export interface ActionContext {
  readonly isRequestor: boolean;
  openTransport(): void;
  sendAssociateRequest(): void;
  send(pdu: Pdu): void;
  sendPData(data: OutgoingPData): void;
  closeTransport(): void;
  startArtim(): void;
  stopArtim(): void;
  /** AE-6: an A-ASSOCIATE-RJ when the service provider cannot accept the request. */
  checkProviderAcceptance(request: AAssociateRq): AAssociateRj | undefined;
  indicate(indication: Indication): void;
}

type ActionFunction = (context: ActionContext, input: EventInput) => State;

/**
 * The A-ABORT we send for an event. A local abort request carries its own parameters; an
 * invalid PDU, the reason its decoder found; any other PDU arriving where the table says abort
 * is an unexpected PDU. AA-1 names the service-user as source, but when a PDU triggers it the
 * abort is the provider's doing, so we say so (this is what the peer needs to diagnose it).
 */
function abortFor(input: EventInput): AAbort {
  if (input.event === 'Evt15') return { type: 'AAbort', ...input.abort };
  if (input.event === 'Evt19') {
    const reason = input.error.details.abortReason;
    return {
      type: 'AAbort',
      source: AbortSource.ServiceProvider,
      reason: typeof reason === 'number' ? reason : AbortReason.NotSpecified,
    };
  }
  return { type: 'AAbort', source: AbortSource.ServiceProvider, reason: AbortReason.UnexpectedPdu };
}

function pduOf<E extends Event>(input: EventInput, event: E): Extract<EventInput, { event: E }> {
  if (input.event !== event) throw new Error(`action expected ${event}, got ${input.event}`);
  return input as Extract<EventInput, { event: E }>;
}

/** One function per action of PS3.8 §9.2.2. */
export const ACTIONS: Readonly<Record<Action, ActionFunction>> = {
  'AE-1': (context) => {
    context.openTransport();
    return 'Sta4';
  },
  'AE-2': (context) => {
    context.sendAssociateRequest();
    return 'Sta5';
  },
  'AE-3': (context, input) => {
    context.indicate({ type: 'associate-accepted', pdu: pduOf(input, 'Evt3').pdu });
    return 'Sta6';
  },
  'AE-4': (context, input) => {
    context.indicate({ type: 'associate-rejected', pdu: pduOf(input, 'Evt4').pdu });
    context.closeTransport();
    return 'Sta1';
  },
  'AE-5': (context) => {
    context.startArtim();
    return 'Sta2';
  },
  'AE-6': (context, input) => {
    context.stopArtim();
    const request = pduOf(input, 'Evt6').pdu;
    const rejection = context.checkProviderAcceptance(request);
    if (rejection !== undefined) {
      context.send(rejection);
      context.startArtim();
      return 'Sta13';
    }
    context.indicate({ type: 'associate-request', pdu: request });
    return 'Sta3';
  },
  'AE-7': (context, input) => {
    context.send(pduOf(input, 'Evt7').pdu);
    return 'Sta6';
  },
  'AE-8': (context, input) => {
    context.send(pduOf(input, 'Evt8').pdu);
    context.startArtim();
    return 'Sta13';
  },
  'DT-1': (context, input) => {
    context.sendPData(pduOf(input, 'Evt9').data);
    return 'Sta6';
  },
  'DT-2': (context, input) => {
    context.indicate({ type: 'pdata', pdu: pduOf(input, 'Evt10').pdu });
    return 'Sta6';
  },
  'AR-1': (context) => {
    context.send({ type: 'AReleaseRq' });
    return 'Sta7';
  },
  'AR-2': (context) => {
    context.indicate({ type: 'release-requested', isCollision: false });
    return 'Sta8';
  },
  'AR-3': (context) => {
    context.indicate({ type: 'release-confirmed' });
    context.closeTransport();
    return 'Sta1';
  },
  'AR-4': (context) => {
    context.send({ type: 'AReleaseRp' });
    context.startArtim();
    return 'Sta13';
  },
  'AR-5': (context) => {
    context.stopArtim();
    return 'Sta1';
  },
  'AR-6': (context, input) => {
    context.indicate({ type: 'pdata', pdu: pduOf(input, 'Evt10').pdu });
    return 'Sta7';
  },
  'AR-7': (context, input) => {
    context.sendPData(pduOf(input, 'Evt9').data);
    return 'Sta8';
  },
  'AR-8': (context) => {
    context.indicate({ type: 'release-requested', isCollision: true });
    return context.isRequestor ? 'Sta9' : 'Sta10';
  },
  'AR-9': (context) => {
    context.send({ type: 'AReleaseRp' });
    return 'Sta11';
  },
  'AR-10': (context) => {
    context.indicate({ type: 'release-confirmed' });
    return 'Sta12';
  },
  'AA-1': (context, input) => {
    context.send(abortFor(input));
    context.startArtim();
    return 'Sta13';
  },
  'AA-2': (context) => {
    context.stopArtim();
    context.closeTransport();
    return 'Sta1';
  },
  'AA-3': (context, input) => {
    const pdu = pduOf(input, 'Evt16').pdu;
    context.indicate({ type: 'abort', fields: { source: pdu.source, reason: pdu.reason } });
    context.closeTransport();
    return 'Sta1';
  },
  'AA-4': (context) => {
    // A-P-ABORT: the transport connection was lost.
    context.indicate({ type: 'abort' });
    return 'Sta1';
  },
  'AA-5': (context) => {
    context.stopArtim();
    return 'Sta1';
  },
  'AA-6': () => 'Sta13',
  'AA-7': (context, input) => {
    context.send(abortFor(input));
    return 'Sta13';
  },
  'AA-8': (context, input) => {
    const abort = abortFor(input);
    context.send(abort);
    context.indicate({ type: 'abort', fields: { source: abort.source, reason: abort.reason } });
    context.startArtim();
    return 'Sta13';
  },
};
