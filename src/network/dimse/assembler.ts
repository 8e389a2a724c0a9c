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

/** A data set arriving fragment by fragment; pausing it pauses the association. */
export class DatasetStream extends Readable {
  #isPausingSource = false;
  readonly #resumeSource: () => void;
  #received = 0;

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

  /** Adds a fragment; returns false when the consumer wants no more for now. */
  pushFragment(data: Buffer): boolean {
    this.#received += data.length;
    if (this.destroyed) return true;
    return this.push(data);
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
    callback(error);
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
    phase.chunks.push(pdv.data);
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
      if (!phase.stream.destroyed) phase.stream.push(null);
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
