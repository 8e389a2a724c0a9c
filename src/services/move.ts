/**
 * C-MOVE SCP (PS3.4 §C.4.2, PS3.7 §9.1.4): Patient Root and Study Root MOVE at every level.
 * The Move Destination is looked up among the known AE titles (0xA801 when unknown); the
 * instances the identifier selects are sent to it as C-STORE sub-operations over an
 * association of our own, each carrying the Move Originator AE Title and Message ID, then the
 * association is released. Statuses and counts are those of `retrieve.ts`.
 *
 * For each SOP class among the instances we propose one context per stored transfer syntax,
 * plus Explicit and Implicit VR Little Endian each on its own context when some stored syntax
 * of that class can be converted to them (see `canSendAs`): the destination may accept all
 * of them, and an instance then goes in its stored syntax. More contexts than one association
 * holds (128, PS3.8 §9.3.2.2) are spread over successive associations, in the instances'
 * order. A destination that cannot be reached or rejects the association fails the
 * sub-operations meant for it; the C-MOVE association is not affected.
 *
 * Layer: services.
 */

import type { RetrievableInstance } from '../dicom/query/model.js';
import { TransferSyntax } from '../dicom/transfer-syntax.js';
import { DicomServerError } from '../errors.js';
import type { Association, AssociationTimeouts } from '../network/association/association.js';
import { describeRejection } from '../network/association/reasons.js';
import { type ContextProposal, requestAssociation } from '../network/association/requestor.js';
import { DimseChannel, type IncomingRequest, type ResponseSpec } from '../network/dimse/channel.js';
import { Status } from '../network/dimse/status.js';
import type { TlsClientOptions } from '../network/tls.js';
import type { MoveDestinations, QuerySource } from './ports.js';
import {
  instancesToRetrieve,
  type RetrieveAssociation,
  type RetrieveLogger,
  refusedResponse,
  requestEncoding,
  runSubOperations,
  type SubOperationSender,
  storeInstance,
  subOperationLogger,
} from './retrieve.js';
import { canSendAs } from './scu/store.js';

/** Most presentation contexts one association may propose (IDs 1 to 255, odd: PS3.8 §9.3.2.2). */
const MAX_CONTEXTS = 128;
const FALLBACK_SYNTAXES = [
  TransferSyntax.ExplicitVRLittleEndian,
  TransferSyntax.ImplicitVRLittleEndian,
] as const;

/** What the C-MOVE handler needs. */
export interface MoveHandlerOptions {
  readonly source: QuerySource;
  readonly destinations: MoveDestinations;
  /** Our AE title: the calling AE title of the sub-operations' association. */
  readonly aeTitle: string;
  readonly timeouts: AssociationTimeouts & { readonly dimseMs: number };
  /** The Maximum Length Received we announce on the sub-operations' association. */
  readonly maxPduLength: number;
  readonly logger?: RetrieveLogger;
}

/** Serves one C-MOVE-RQ: pending responses, then the final one. */
export type MoveHandler = (
  request: IncomingRequest,
  signal: AbortSignal,
  association: RetrieveAssociation,
) => AsyncIterable<ResponseSpec>;

/** Makes the C-MOVE handler. */
export function createMoveHandler(options: MoveHandlerOptions): MoveHandler {
  return (request, signal, association) => serveMove(options, request, signal, association);
}

async function* serveMove(
  options: MoveHandlerOptions,
  request: IncomingRequest,
  signal: AbortSignal,
  association: RetrieveAssociation,
): AsyncGenerator<ResponseSpec> {
  const encoding = requestEncoding(request);
  const destinationAeTitle = request.command.moveDestination ?? '';
  const destination = options.destinations.lookup(destinationAeTitle);
  const note = { destination: destinationAeTitle };
  if (destination === undefined) {
    options.logger?.warn(note, 'C-MOVE to an unknown destination');
    // Said so that an operator knows what to set up: an AE title with host and port.
    const refusal = {
      status: Status.MoveDestinationUnknown,
      errorComment: `${destinationAeTitle.trim()} is not a move destination here`.slice(0, 64),
    };
    yield refusedResponse(refusal, encoding, note);
    return;
  }
  const instances = await instancesToRetrieve(request, 'move', association, options.source, signal);
  if (!Array.isArray(instances)) {
    yield refusedResponse(instances, encoding, note);
    return;
  }
  const sender = new DestinationSender(instances, {
    ...options,
    host: destination.host,
    port: destination.port,
    ...(destination.tls !== undefined && { tls: destination.tls }),
    calledAeTitle: destinationAeTitle,
    moveOriginatorAeTitle: association.callingAeTitle,
    ...(request.command.messageId !== undefined && {
      moveOriginatorMessageId: request.command.messageId,
    }),
    ...(request.command.priority !== undefined && { priority: request.command.priority }),
  });
  try {
    yield* runSubOperations(instances, sender, {
      signal,
      encoding,
      note: { ...note, instances: instances.length },
      onSubOperation: subOperationLogger(options.logger, 'C-MOVE'),
    });
  } finally {
    // Released in the background: the final response must not wait for the destination's
    // A-RELEASE-RP (a destination that never sends one would hold it up to the ACSE timeout).
    void sender.close();
  }
}

/** Where and how the sub-operations of one C-MOVE go. */
interface DestinationOptions extends MoveHandlerOptions {
  readonly host: string;
  readonly port: number;
  /** The destination is reached over TLS with these options. */
  readonly tls?: TlsClientOptions;
  readonly calledAeTitle: string;
  readonly moveOriginatorAeTitle: string;
  readonly moveOriginatorMessageId?: number;
  readonly priority?: number;
}

/** The contexts one sub-operations association proposes, and the instances it carries. */
export interface Batch {
  readonly proposals: ContextProposal[];
  readonly instanceUids: Set<string>;
}

function contextKey(sopClassUid: string, transferSyntaxUid: string): string {
  return `${sopClassUid} ${transferSyntaxUid}`;
}

/** The contexts an instance needs: its stored syntax, and the ones it can be converted to. */
function proposalsFor(instance: RetrievableInstance): ContextProposal[] {
  const syntaxes = [
    instance.transferSyntaxUid,
    ...FALLBACK_SYNTAXES.filter((syntax) => canSendAs(instance.transferSyntaxUid, syntax)),
  ];
  return [...new Set(syntaxes)].map((syntax) => ({
    abstractSyntax: instance.sopClassUid,
    transferSyntaxes: [syntax],
  }));
}

/** Splits the instances, in order, into associations of at most 128 contexts each. */
export function planAssociations(instances: readonly RetrievableInstance[]): Batch[] {
  const batches: Batch[] = [];
  const keyOf = (proposal: ContextProposal) =>
    contextKey(proposal.abstractSyntax, proposal.transferSyntaxes[0]!);
  let keys = new Set<string>();
  let current: Batch | undefined;
  for (const instance of instances) {
    const proposals = proposalsFor(instance);
    let needed = proposals.filter((proposal) => !keys.has(keyOf(proposal)));
    if (current === undefined || keys.size + needed.length > MAX_CONTEXTS) {
      current = { proposals: [], instanceUids: new Set() };
      batches.push(current);
      keys = new Set();
      needed = proposals;
    }
    for (const proposal of needed) {
      keys.add(keyOf(proposal));
      current.proposals.push(proposal);
    }
    current.instanceUids.add(instance.sopInstanceUid);
  }
  return batches;
}

/** The destination's association(s), opened when first needed, one batch at a time. */
class DestinationSender implements SubOperationSender {
  readonly #options: DestinationOptions;
  readonly #batches: Batch[];
  #index = -1;
  #channel: Promise<DimseChannel> | undefined;

  constructor(instances: readonly RetrievableInstance[], options: DestinationOptions) {
    this.#options = options;
    this.#batches = planAssociations(instances);
  }

  async store(instance: RetrievableInstance): Promise<number> {
    const channel = await this.#channelFor(instance);
    return storeInstance(channel, channel.association.acceptedContexts.values(), instance, {
      moveOriginatorAeTitle: this.#options.moveOriginatorAeTitle,
      ...(this.#options.moveOriginatorMessageId !== undefined && {
        moveOriginatorMessageId: this.#options.moveOriginatorMessageId,
      }),
      ...(this.#options.priority !== undefined && { priority: this.#options.priority }),
    });
  }

  /** Releases the open association, if any. */
  async close(): Promise<void> {
    const opening = this.#channel;
    this.#channel = undefined;
    if (opening === undefined) return;
    const channel = await opening.catch(() => undefined);
    if (channel === undefined || !channel.association.isEstablished) return;
    try {
      await channel.association.release();
    } catch (error) {
      // The destination broke off the release: the sub-operations are done whatever it does.
      this.#options.logger?.warn(
        { destination: this.#options.calledAeTitle, error: (error as Error).message },
        'move destination association did not release cleanly',
      );
    }
  }

  /** The channel of the batch holding `instance`: the current one, or the next one opened. */
  async #channelFor(instance: RetrievableInstance): Promise<DimseChannel> {
    const current = this.#batches[this.#index];
    if (this.#channel === undefined || !current?.instanceUids.has(instance.sopInstanceUid)) {
      await this.close();
      this.#index = this.#batches.findIndex(
        (batch, index) => index > this.#index && batch.instanceUids.has(instance.sopInstanceUid),
      );
      const batch = this.#batches[this.#index];
      if (batch === undefined) {
        throw new DicomServerError('ERR_INVALID_ARGUMENT', 'instance not in the move plan', {
          sopInstanceUid: instance.sopInstanceUid,
        });
      }
      this.#channel = this.#open(batch);
      // Rejections reach each store() that awaits it; this keeps an unawaited one quiet.
      this.#channel.catch(() => undefined);
    }
    return this.#channel;
  }

  async #open(batch: Batch): Promise<DimseChannel> {
    const { timeouts } = this.#options;
    let association: Association;
    try {
      association = await requestAssociation({
        host: this.#options.host,
        port: this.#options.port,
        ...(this.#options.tls !== undefined && { tls: this.#options.tls }),
        callingAeTitle: this.#options.aeTitle,
        calledAeTitle: this.#options.calledAeTitle,
        contexts: batch.proposals,
        maxPduLength: this.#options.maxPduLength,
        timeouts: {
          artimMs: timeouts.artimMs,
          acseMs: timeouts.acseMs,
          networkMs: timeouts.networkMs,
        },
      });
    } catch (error) {
      this.#options.logger?.warn(
        { destination: this.#options.calledAeTitle, error: (error as Error).message },
        'move destination association failed',
      );
      throw destinationError(error);
    }
    return new DimseChannel(association, { dimseTimeoutMs: timeouts.dimseMs });
  }
}

/** The reason a destination association failed, short enough for an Error Comment. */
function destinationError(error: unknown): Error {
  if (!(error instanceof DicomServerError)) {
    return error instanceof Error ? error : new Error(String(error));
  }
  switch (error.code) {
    case 'ERR_ASSOCIATION_REJECTED': {
      const { result, source, reason } = error.details;
      const why = describeRejection(Number(result), Number(source), Number(reason));
      return new DicomServerError(
        'ERR_ASSOCIATION_REJECTED',
        `destination rejected: ${why}`,
        error.details,
        error,
      );
    }
    case 'ERR_CONNECT_FAILED':
      return new DicomServerError(
        'ERR_CONNECT_FAILED',
        'destination unreachable',
        error.details,
        error,
      );
    case 'ERR_TIMEOUT':
      return new DicomServerError(
        'ERR_TIMEOUT',
        'destination did not answer',
        error.details,
        error,
      );
    default:
      return error;
  }
}
