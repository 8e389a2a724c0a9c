/**
 * Reassembles DIMSE messages from PDVs (PS3.7 §9.2, PS3.8 Annex E): the command fragments are
 * joined and decoded (they are small and bounded); the data set fragments are not joined but
 * handed on, as they arrive, through a Readable that exerts backpressure on the association.
 *
 * Layer: network/dimse. No socket: it is fed PDVs and told how to pause its source.
 */

import { Readable } from 'node:stream';
import { DicomServerError } from '../../errors.js';
import { AbortReason, type Pdv } from '../pdu/types.js';
import { type CommandSet, decodeCommand, MAX_COMMAND_SET_LENGTH } from './command.js';

/** A message whose command has arrived; its data set, if any, is still streaming in. */
export interface AssembledMessage {
  readonly contextId: number;
  readonly command: CommandSet;
  readonly dataset?: DatasetStream;
}

/** What the assembler needs from its surroundings. */
export interface AssemblerOptions {
  /** True for a presentation context ID that was accepted on this association. */
  readonly isAcceptedContext: (contextId: number) => boolean;
  readonly onMessage: (message: AssembledMessage) => void;
  /** Stop and restart the flow of PDVs (the association's reading). */
  readonly pause: () => void;
  readonly resume: () => void;
  /** Bytes a data set stream buffers before it pauses the association. */
  readonly highWaterMark?: number;
}

/**
 * Takes a data set's fragments as they arrive (see `DatasetStream.consume`). A fragment is a
 * view into the association's reused read buffer: valid only during the call, so whatever
 * is kept of it must be copied. A promise returned holds the association back until it
 * settles (the sink is behind).
 */
export type FragmentSink = (fragment: Buffer) => Promise<void> | undefined;

/**
 * A data set arriving fragment by fragment. It is read either as a Readable (each fragment
 * copied; pausing it pauses the association), or, on the receive path, by a sink that takes
 * each fragment synchronously where it lies (`consume`): no copy, no buffering.
 */
export class DatasetStream extends Readable {
  #isPausingSource = false;
  readonly #resumeSource: () => void;
  #received = 0;
  #isComplete = false;
  #sink: FragmentSink | undefined;
  /** Promises of the sink not yet settled: the association is held back until none is left. */
  #behind = 0;
  #consumed: Promise<void> | undefined;
  #settle: { resolve: () => void; reject: (error: Error) => void } | undefined;

  constructor(highWaterMark: number, resumeSource: () => void) {
    super({ highWaterMark });
    this.#resumeSource = resumeSource;
    // The association can end before anyone reads (a handler not yet reading, a message the
    // channel drops). The error stays in `errored` and is thrown to whoever reads later; an
    // 'error' event without a listener would instead end the process.
    this.on('error', () => undefined);
  }

  /** Bytes received so far. */
  get receivedBytes(): number {
    return this.#received;
  }

  /**
   * Hands the data set to `sink`: what arrived so far at once, the rest as it arrives (after
   * this, the stream is not to be read as a Readable). Resolves once the last fragment was
   * taken; rejects if the association ended first. A second call waits for the first.
   */
  consume(sink: FragmentSink): Promise<void> {
    if (this.#consumed !== undefined) return this.#consumed;
    for (let chunk: Buffer | null = this.read(); chunk !== null; chunk = this.read()) {
      this.#track(sink(chunk));
    }
    if (this.#isComplete) {
      this.#consumed = Promise.resolve();
    } else if (this.destroyed) {
      this.#consumed = Promise.reject(
        this.errored ??
          new DicomServerError('ERR_CONNECTION_CLOSED', 'data set not received whole'),
      );
    } else {
      this.#consumed = new Promise((resolve, reject) => {
        this.#settle = { resolve, reject };
      });
      this.#sink = sink;
      this.#release();
    }
    return this.#consumed;
  }

  /**
   * Reads and drops what is left; resolves when the data set has ended (at once if it was read
   * to its end or given up by its reader), rejects if the association ended first.
   */
  async drain(): Promise<void> {
    if (this.readableEnded) return;
    if (this.destroyed) {
      if (this.errored) throw this.errored;
      return;
    }
    await this.consume(() => undefined);
  }

  /** Adds a fragment (a transient view); returns false when the reader wants no more for now. */
  pushFragment(data: Buffer): boolean {
    this.#received += data.length;
    if (this.#sink !== undefined) {
      this.#track(this.#sink(data));
      // On false the assembler pauses the association (markPausing); #track resumes it.
      return this.#behind === 0;
    }
    if (this.destroyed) return true;
    return this.push(Buffer.from(data));
  }

  /** The last fragment has arrived. */
  complete(): void {
    this.#isComplete = true;
    if (this.#settle !== undefined) {
      this.#settle.resolve();
      this.#settle = undefined;
    }
    if (!this.destroyed) this.push(null);
  }

  /** Notes that the source is paused on our behalf; false if it already was. */
  markPausing(): boolean {
    if (this.#isPausingSource) return false;
    this.#isPausingSource = true;
    return true;
  }

  override _read(): void {
    this.#release();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // A consumer that gives up must not leave the association paused: the rest is dropped.
    this.#release();
    if (this.#settle !== undefined) {
      this.#settle.reject(
        error ?? new DicomServerError('ERR_CONNECTION_CLOSED', 'data set not received whole'),
      );
      this.#settle = undefined;
    }
    this.#sink = undefined;
    callback(error);
  }

  /**
   * Counts a sink's promise (it is behind); when the last one counted settles, the association,
   * if it was paused for them, reads on.
   */
  #track(behind: Promise<void> | undefined): void {
    if (behind === undefined) return;
    this.#behind += 1;
    const settled = () => {
      this.#behind -= 1;
      if (this.#behind === 0) this.#release();
    };
    void behind.then(settled, settled);
  }

  #release(): void {
    if (!this.#isPausingSource) return;
    this.#isPausingSource = false;
    this.#resumeSource();
  }
}

type Phase =
  | { readonly kind: 'idle' }
  | {
      readonly kind: 'command';
      readonly contextId: number;
      readonly chunks: Buffer[];
      length: number;
    }
  | { readonly kind: 'dataset'; readonly contextId: number; readonly stream: DatasetStream };

function violation(message: string, details: Record<string, number>): never {
  throw new DicomServerError('ERR_DIMSE_UNEXPECTED', message, details);
}

/** Turns a sequence of PDVs into messages; throws on a sequence PS3.7 does not allow. */
export class MessageAssembler {
  readonly #options: AssemblerOptions;
  #phase: Phase = { kind: 'idle' };

  constructor(options: AssemblerOptions) {
    this.#options = options;
  }

  /** The data set stream still receiving, if any. */
  get openDataset(): DatasetStream | undefined {
    return this.#phase.kind === 'dataset' ? this.#phase.stream : undefined;
  }

  /** A command or its data set has begun to arrive and has not ended. */
  get isMidMessage(): boolean {
    return this.#phase.kind !== 'idle';
  }

  push(pdv: Pdv): void {
    if (!this.#options.isAcceptedContext(pdv.contextId)) {
      // A context ID that was never accepted is an invalid PDU parameter (PS3.8 §9.3.5.1).
      violation(`PDV on presentation context ${pdv.contextId}, which was not accepted`, {
        contextId: pdv.contextId,
        abortReason: AbortReason.InvalidPduParameterValue,
      });
    }
    const phase = this.#phase;
    if (phase.kind !== 'idle' && phase.contextId !== pdv.contextId) {
      violation('PDV on another presentation context in the middle of a message', {
        contextId: pdv.contextId,
        expected: phase.contextId,
      });
    }
    if (pdv.isCommand) this.#onCommandFragment(pdv);
    else this.#onDatasetFragment(pdv);
  }

  #onCommandFragment(pdv: Pdv): void {
    let phase = this.#phase;
    if (phase.kind === 'dataset')
      violation('command fragment before the data set ended', { contextId: pdv.contextId });
    if (phase.kind === 'idle') {
      phase = { kind: 'command', contextId: pdv.contextId, chunks: [], length: 0 };
      this.#phase = phase;
    }
    // PDVs are views into a reused buffer: a command in several fragments is kept as copies.
    phase.chunks.push(pdv.isLast && phase.chunks.length === 0 ? pdv.data : Buffer.from(pdv.data));
    phase.length += pdv.data.length;
    if (phase.length > MAX_COMMAND_SET_LENGTH) {
      throw new DicomServerError('ERR_DIMSE_MALFORMED', 'command set larger than we accept', {
        length: phase.length,
        limit: MAX_COMMAND_SET_LENGTH,
      });
    }
    if (!pdv.isLast) return;
    const bytes =
      phase.chunks.length === 1 ? phase.chunks[0]! : Buffer.concat(phase.chunks, phase.length);
    const command = decodeCommand(bytes);
    if (!command.hasDataset) {
      this.#phase = { kind: 'idle' };
      this.#options.onMessage({ contextId: pdv.contextId, command });
      return;
    }
    const stream = new DatasetStream(
      this.#options.highWaterMark ?? 1024 * 1024,
      this.#options.resume,
    );
    this.#phase = { kind: 'dataset', contextId: pdv.contextId, stream };
    this.#options.onMessage({ contextId: pdv.contextId, command, dataset: stream });
  }

  #onDatasetFragment(pdv: Pdv): void {
    const phase = this.#phase;
    if (phase.kind !== 'dataset') {
      violation('data set fragment without a command announcing one', { contextId: pdv.contextId });
    }
    const wantsMore = phase.stream.pushFragment(pdv.data);
    if (pdv.isLast) {
      this.#phase = { kind: 'idle' };
      phase.stream.complete();
      return;
    }
    if (!wantsMore && phase.stream.markPausing()) this.#options.pause();
  }

  /** The association ended: a data set still arriving ends with an error. */
  close(error: Error): void {
    if (this.#phase.kind === 'dataset') this.#phase.stream.destroy(error);
    this.#phase = { kind: 'idle' };
  }
}
