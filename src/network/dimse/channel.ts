/**
 * The DIMSE message exchange over one association (PS3.7 §7-9): requests from the peer go to a
 * handler and its responses go back; our requests go out and their responses come back, paired
 * by message ID; C-CANCEL reaches the operation it names through an AbortSignal. Outgoing
 * messages are sent one at a time, fragmented to the peer's limit, with the transport's
 * backpressure respected.
 *
 * Layer: network/dimse. Sees data sets only as bytes.
 */

import { DicomServerError } from '../../errors.js';
import type { Association } from '../association/association.js';
import type { AcceptedContext } from '../association/negotiation.js';
import { AbortSource } from '../pdu/types.js';
import { type AssembledMessage, type DatasetStream, MessageAssembler } from './assembler.js';
import {
  CommandField,
  type CommandSet,
  encodeCommand,
  isResponse,
  responseFieldFor,
} from './command.js';
import { fragmentBuffer, fragmentStream, maxFragmentLength } from './fragmenter.js';
import { Status, statusCategory } from './status.js';

/** A request from the peer, as handed to a service handler. */
export interface IncomingRequest {
  readonly context: AcceptedContext;
  readonly command: CommandSet;
  /** The data set, streaming in; absent when the command announces none. */
  readonly dataset?: DatasetStream;
}

/** What a handler answers: a status, extra command fields and perhaps a data set. */
export interface ResponseSpec {
  readonly status: number;
  readonly fields?: Partial<Omit<CommandSet, 'commandField' | 'hasDataset' | 'status'>>;
  readonly dataset?: Buffer | AsyncIterable<Buffer>;
  /**
   * What the handler wants recorded about the operation (the stored file, the patient), handed
   * to operation listeners (the transaction log); never sent.
   */
  readonly note?: OperationNote;
}

/** Facts about an operation for its record, opaque to this layer. */
export type OperationNote = Readonly<Record<string, string | number | undefined>>;

/** A response to one of our requests; its data set (an identifier) is read whole, it is small. */
export interface IncomingResponse {
  readonly command: CommandSet;
  readonly dataset?: Buffer;
}

/**
 * Serves one request: a single final response, or pending responses followed by the final one
 * (C-FIND, C-MOVE, C-GET). The signal aborts on C-CANCEL or when the association ends.
 */
export type RequestHandler = (
  request: IncomingRequest,
  signal: AbortSignal,
  channel: DimseChannel,
) => Promise<ResponseSpec> | AsyncIterable<ResponseSpec>;

/** Options of a channel. */
export interface ChannelOptions {
  /** Serves the peer's requests; without it every request gets Unrecognized Operation. */
  readonly onRequest?: RequestHandler;
  /** How long we wait for each response to our requests. */
  readonly dimseTimeoutMs: number;
  /** Largest response data set we read into memory. */
  readonly maxResponseDatasetBytes?: number;
}

/** Events of a channel, for logging and counters. */
export interface OperationRecord {
  readonly command: CommandSet;
  readonly context: AcceptedContext;
  readonly response: CommandSet;
  readonly durationMs: number;
  readonly datasetBytes: number;
  readonly note?: OperationNote;
  readonly error?: Error;
}

/** Command fields of the requests that PS3.7 defines, which we answer even when we do not serve them. */
const KNOWN_REQUESTS: ReadonlySet<number> = new Set(
  Object.values(CommandField).filter(
    (field) => !isResponse(field) && field !== CommandField.CCancelRq,
  ),
);

const CANCELABLE: ReadonlySet<number> = new Set([
  CommandField.CFindRq,
  CommandField.CMoveRq,
  CommandField.CGetRq,
]);

interface PendingRequest {
  readonly push: (response: IncomingResponse) => void;
  readonly fail: (error: Error) => void;
  /** Responses are handed on in the order they arrived, each once its data set has been read. */
  delivered: Promise<void>;
}

/** DIMSE over one association, in either role. */
export class DimseChannel {
  readonly association: Association;
  readonly #options: ChannelOptions;
  readonly #assembler: MessageAssembler;
  readonly #pending = new Map<number, PendingRequest>();
  /** Operations being served by message ID, with their own controller when C-CANCEL applies. */
  readonly #running = new Map<number, AbortController | undefined>();
  /** Aborted when the association ends: the signal of operations C-CANCEL does not apply to. */
  readonly #ended = new AbortController();
  /** Requests being served, including the sending of their final response. */
  readonly #serving = new Set<Promise<void>>();
  readonly #operationListeners: ((record: OperationRecord) => void)[] = [];
  #sendQueue: Promise<void> = Promise.resolve();
  #nextMessageId = 1;
  #closedError: Error | undefined;

  constructor(association: Association, options: ChannelOptions) {
    this.association = association;
    this.#options = options;
    this.#assembler = new MessageAssembler({
      isAcceptedContext: (id) => association.acceptedContexts.has(id),
      onMessage: (message) => this.#onMessage(message),
      pause: () => association.pauseReading(),
      resume: () => association.resumeReading(),
    });
    association.on('pdata', (pdu) => {
      for (const pdv of pdu.pdvs) {
        try {
          this.#assembler.push(pdv);
        } catch (error) {
          this.#onProtocolViolation(error);
          return;
        }
      }
    });
    // After its A-RELEASE-RQ the peer may send no more P-DATA (PS3.8 Table 9-10, Sta7): a
    // message it left unfinished can never end, and the operation awaiting it would hold the
    // release back for good. That message fails (a data set being stored leaves nothing
    // behind, and gets no response), and the release goes ahead, as it does with storescp.
    association.on('releaseRequested', () => {
      if (!this.#assembler.isMidMessage) return;
      this.#assembler.close(
        new DicomServerError('ERR_DIMSE_MALFORMED', 'release requested in the middle of a message'),
      );
    });
    // A release request is answered once the operations we are serving have responded.
    association.setReleaseGate(() =>
      this.#serving.size === 0
        ? undefined
        : Promise.allSettled([...this.#serving]).then(() => undefined),
    );
    association.once('closed', (summary) => {
      const error =
        summary.error ??
        new DicomServerError('ERR_CONNECTION_CLOSED', `association ended (${summary.outcome})`, {
          outcome: summary.outcome,
        });
      this.#closedError = error;
      this.#assembler.close(error);
      for (const [, pending] of this.#pending) pending.fail(error);
      this.#pending.clear();
      for (const [, controller] of this.#running) controller?.abort(error);
      this.#ended.abort(error);
    });
  }

  /** Calls `listener` once per operation we served, when its final response has been sent. */
  onOperation(listener: (record: OperationRecord) => void): void {
    this.#operationListeners.push(listener);
  }

  /** A message ID not in use by one of our outstanding requests. */
  nextMessageId(): number {
    let id = this.#nextMessageId;
    // After a wrap-around, a long-running request may still hold the next ID.
    while (this.#pending.has(id)) id = (id % 0xffff) + 1;
    this.#nextMessageId = (id % 0xffff) + 1;
    return id;
  }

  /** The accepted context for an abstract syntax (and a transfer syntax, if given). */
  findContext(abstractSyntax: string, transferSyntax?: string): AcceptedContext | undefined {
    for (const context of this.association.acceptedContexts.values()) {
      if (context.abstractSyntax !== abstractSyntax) continue;
      if (transferSyntax === undefined || context.transferSyntax === transferSyntax) return context;
    }
    return undefined;
  }

  /**
   * Sends a request and yields its responses until the final one (pending responses of
   * C-FIND/MOVE/GET come first). The message ID is assigned here unless the caller took one
   * with `nextMessageId` (to name the request in a C-CANCEL, say).
   */
  async *request(
    contextId: number,
    command: Omit<CommandSet, 'messageId'> & { readonly messageId?: number },
    dataset?: Buffer | AsyncIterable<Buffer>,
  ): AsyncGenerator<IncomingResponse> {
    if (this.#closedError !== undefined) throw this.#closedError;
    const messageId = command.messageId ?? this.nextMessageId();
    const queue: IncomingResponse[] = [];
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    const timeoutMs = this.#options.dimseTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    this.#pending.set(messageId, {
      push: (response) => {
        timer?.refresh();
        queue.push(response);
        wake?.();
      },
      fail: (error) => {
        failure = error;
        wake?.();
      },
      delivered: Promise.resolve(),
    });
    try {
      await this.send(contextId, { ...command, messageId }, dataset);
      // The timer runs while we await a response, not while a large data set is still going out.
      timer = setTimeout(() => {
        const error = new DicomServerError('ERR_TIMEOUT', `no response within ${timeoutMs} ms`, {
          timer: 'dimse',
          timeoutMs,
          messageId,
        });
        this.association.abort(error);
      }, timeoutMs);
      while (true) {
        while (queue.length === 0 && failure === undefined) {
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
        }
        const response = queue.shift();
        if (response === undefined) throw failure!;
        yield response;
        if (statusCategory(response.command.status ?? Status.Success) !== 'pending') return;
      }
    } finally {
      clearTimeout(timer);
      this.#pending.delete(messageId);
    }
  }

  /** Sends a C-CANCEL-RQ for one of our outstanding requests (PS3.7 §9.3.2.3). */
  async cancel(contextId: number, messageId: number): Promise<void> {
    await this.send(contextId, {
      commandField: CommandField.CCancelRq,
      messageIdBeingRespondedTo: messageId,
      hasDataset: false,
    });
  }

  /** Sends one message; messages are sent whole and in order, never interleaved. */
  send(
    contextId: number,
    command: CommandSet,
    dataset?: Buffer | AsyncIterable<Buffer>,
  ): Promise<void> {
    const run = this.#sendQueue.then(() => this.#sendNow(contextId, command, dataset));
    this.#sendQueue = run.catch(() => undefined);
    return run;
  }

  async #sendNow(
    contextId: number,
    command: CommandSet,
    dataset?: Buffer | AsyncIterable<Buffer>,
  ): Promise<void> {
    if (this.#closedError !== undefined) throw this.#closedError;
    const association = this.association;
    const maxLength = maxFragmentLength(association.peerMaxPduLength);
    const withFlag: CommandSet = { ...command, hasDataset: dataset !== undefined };
    for (const fragment of fragmentBuffer(encodeCommand(withFlag), maxLength)) {
      if (!association.sendPData(contextId, true, fragment.isLast, fragment.data))
        await association.drained();
    }
    if (dataset === undefined) return;
    const fragments = Buffer.isBuffer(dataset)
      ? fragmentBuffer(dataset, maxLength)
      : fragmentStream(dataset, maxLength);
    try {
      for await (const fragment of fragments) {
        if (this.#closedError !== undefined) throw this.#closedError;
        if (!association.sendPData(contextId, false, fragment.isLast, fragment.data))
          await association.drained();
      }
    } catch (error) {
      // Half a message is out (a file that could not be read to its end, say): the peer cannot
      // tell the next command from the rest of this data set, so the association must go.
      const cause =
        error instanceof DicomServerError
          ? error
          : new DicomServerError(
              'ERR_CONNECTION_CLOSED',
              'data set could not be sent whole',
              {},
              error,
            );
      association.abort(cause);
      throw error;
    }
  }

  #onProtocolViolation(error: unknown): void {
    const typed =
      error instanceof DicomServerError
        ? error
        : new DicomServerError(
            'ERR_DIMSE_MALFORMED',
            'DIMSE message could not be decoded',
            {},
            error,
          );
    const reason = typed.details.abortReason;
    if (typeof reason === 'number')
      this.association.abort(typed, reason, AbortSource.ServiceProvider);
    else this.association.abort(typed);
  }

  #onMessage(message: AssembledMessage): void {
    const { command } = message;
    if (isResponse(command.commandField)) {
      this.#onResponse(message);
      return;
    }
    if (command.commandField === CommandField.CCancelRq) {
      // A C-CANCEL-RQ has no data set (PS3.7 §9.3.2.3): one announced anyway is dropped, not
      // left unread to fill up and pause the association for good.
      message.dataset?.destroy();
      const id = command.messageIdBeingRespondedTo;
      if (id !== undefined)
        this.#running.get(id)?.abort(new DicomServerError('ERR_DIMSE_UNEXPECTED', 'C-CANCEL'));
      return;
    }
    if (!KNOWN_REQUESTS.has(command.commandField)) {
      // Not a DIMSE request PS3.7 defines: there is no response to give, so the association goes.
      this.association.abort(
        new DicomServerError('ERR_DIMSE_MALFORMED', 'unknown command field', {
          commandField: command.commandField,
        }),
      );
      return;
    }
    const serving = this.#serve(message);
    this.#serving.add(serving);
    void serving.finally(() => this.#serving.delete(serving));
  }

  #onResponse(message: AssembledMessage): void {
    const id = message.command.messageIdBeingRespondedTo;
    const pending = id === undefined ? undefined : this.#pending.get(id);
    if (pending === undefined) {
      this.association.abort(
        new DicomServerError('ERR_DIMSE_UNEXPECTED', 'response to no outstanding request', {
          messageIdBeingRespondedTo: id ?? -1,
        }),
      );
      return;
    }
    const { command, dataset } = message;
    if (dataset === undefined) {
      pending.delivered = pending.delivered.then(() => pending.push({ command }));
      return;
    }
    // A pending response's data set is read before the responses that follow it are handed on:
    // the final response must not overtake the last match.
    const limit = this.#options.maxResponseDatasetBytes ?? 16 * 1024 * 1024;
    pending.delivered = pending.delivered
      .then(() => readWhole(dataset, limit))
      .then(
        (bytes) => pending.push({ command, dataset: bytes }),
        (error: unknown) => pending.fail(error instanceof Error ? error : new Error(String(error))),
      );
  }

  async #serve(message: AssembledMessage): Promise<void> {
    const { command, dataset } = message;
    const context = this.association.acceptedContexts.get(message.contextId)!;
    const messageId = command.messageId ?? 0;
    const startedAt = performance.now();
    const respond = (spec: ResponseSpec) =>
      this.send(message.contextId, buildResponse(command, spec), spec.dataset);
    if (this.#running.has(messageId)) {
      const duplicate: ResponseSpec = { status: Status.DuplicateInvocation };
      let failure: Error | undefined;
      try {
        await dataset?.drain();
        await respond(duplicate);
      } catch (error) {
        // E.g. the association ended first; reported, not left to escape as an unhandled rejection.
        failure = undeliverable(error);
      }
      this.#recordOperation(message, duplicate, startedAt, failure);
      return;
    }
    // C-CANCEL applies to C-FIND, C-MOVE and C-GET only (PS3.7 §9.3.2.3): the others share the
    // association's signal rather than each paying for a controller.
    const controller = CANCELABLE.has(command.commandField) ? new AbortController() : undefined;
    this.#running.set(messageId, controller);
    let final: ResponseSpec = { status: Status.ProcessingFailure };
    let failure: Error | undefined;
    try {
      const handler = this.#options.onRequest;
      const result: Promise<ResponseSpec> | AsyncIterable<ResponseSpec> =
        handler === undefined
          ? Promise.resolve({ status: Status.UnrecognizedOperation })
          : handler(
              { context, command, ...(dataset !== undefined && { dataset }) },
              controller?.signal ?? this.#ended.signal,
              this,
            );
      if (isAsyncIterable(result)) {
        for await (const spec of result) {
          if (statusCategory(spec.status) !== 'pending') {
            final = spec;
            continue;
          }
          await respond(spec);
          // A turn of the event loop between pending responses, so that a C-CANCEL (or an
          // abort) that arrived meanwhile is read before the next one goes out.
          await new Promise((resolve) => setImmediate(resolve));
        }
      } else {
        final = await result;
      }
    } catch (error) {
      // A handler that throws becomes a Processing Failure; the association goes on.
      failure = error instanceof Error ? error : new Error(String(error));
      final = { status: Status.ProcessingFailure, fields: { errorComment: 'processing failure' } };
    } finally {
      this.#running.delete(messageId);
    }
    try {
      // The response follows the whole request: a data set the handler did not read is dropped.
      await dataset?.drain();
      await respond(final);
    } catch (error) {
      failure ??= undeliverable(error);
    }
    this.#recordOperation(message, final, startedAt, failure);
  }

  #recordOperation(
    message: AssembledMessage,
    final: ResponseSpec,
    startedAt: number,
    failure: Error | undefined,
  ): void {
    const { command, dataset } = message;
    const record: OperationRecord = {
      command,
      context: this.association.acceptedContexts.get(message.contextId)!,
      response: buildResponse(command, final),
      durationMs: performance.now() - startedAt,
      datasetBytes: dataset?.receivedBytes ?? 0,
      ...(final.note !== undefined && { note: final.note }),
      ...(failure !== undefined && { error: failure }),
    };
    for (const listener of this.#operationListeners) listener(record);
  }
}

/** The response command for a request: command field, message ID, SOP class and instance. */
export function buildResponse(request: CommandSet, spec: ResponseSpec): CommandSet {
  return {
    commandField: responseFieldFor(request.commandField),
    messageIdBeingRespondedTo: request.messageId ?? 0,
    ...((request.affectedSopClassUid ?? request.requestedSopClassUid) !== undefined && {
      affectedSopClassUid: request.affectedSopClassUid ?? request.requestedSopClassUid,
    }),
    ...(request.affectedSopInstanceUid !== undefined && {
      affectedSopInstanceUid: request.affectedSopInstanceUid,
    }),
    ...spec.fields,
    status: spec.status,
    hasDataset: spec.dataset !== undefined,
  };
}

/**
 * A response that could not be sent: the request's data set or the connection broke (the
 * peer reset it, say). The peer's doing, not a bug of ours, so it carries a registry code.
 */
function undeliverable(error: unknown): Error {
  if (error instanceof DicomServerError) return error;
  return new DicomServerError(
    'ERR_CONNECTION_CLOSED',
    'response could not be delivered',
    {},
    error,
  );
}

function isAsyncIterable<T>(value: unknown): value is AsyncIterable<T> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

async function readWhole(stream: DatasetStream, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > limit) {
      stream.destroy();
      throw new DicomServerError('ERR_DIMSE_MALFORMED', 'response data set larger than we read', {
        length,
        limit,
      });
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, length);
}
