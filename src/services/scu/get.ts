/**
 * C-GET SCU (PS3.4 §C.4.3): retrieves the matching instances over the same association. We
 * propose the information model's GET context plus one storage context per SOP class, each
 * with SCP role selection (PS3.7 §D.3.3.4), and serve the peer's C-STORE sub-operations: each
 * data set is streamed to a temporary file behind a Part 10 file meta group, then renamed to
 * `<SOP Instance UID>.dcm` in the output folder, never held whole in memory.
 *
 * Layer: services. Used by the `get` command.
 */

import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { buildFileMeta } from '../../dicom/part10.js';
import type { QueryRoot } from '../../dicom/query/model.js';
import { storageSopClasses } from '../../dicom/sop-classes.js';
import { TransferSyntax } from '../../dicom/transfer-syntax.js';
import { isValidUid } from '../../dicom/uid.js';
import { DicomServerError } from '../../errors.js';
import type { IncomingRequest, RequestHandler, ResponseSpec } from '../../network/dimse/channel.js';
import { CommandField } from '../../network/dimse/command.js';
import { Status } from '../../network/dimse/status.js';
import type { RequestIdentifier, ScuTarget } from './find.js';
import { type RetrieveResult, runRetrieve, type SuboperationCounts } from './move.js';

/**
 * Most storage contexts one C-GET association can propose: 128 contexts in all (PS3.8
 * §9.3.2.2, IDs 1 to 255, odd), one of them the information model's.
 */
export const MAX_STORAGE_CONTEXTS = 127;

/** Transfer syntaxes proposed for each storage context unless told otherwise. */
export const DEFAULT_GET_TRANSFER_SYNTAXES: readonly string[] = [
  TransferSyntax.ExplicitVRLittleEndian,
  TransferSyntax.ImplicitVRLittleEndian,
];

/** One instance the peer sent us: written to `path`, or refused with `error`. */
export interface ReceivedInstance {
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
  readonly transferSyntaxUid: string;
  readonly path?: string;
  /** Data set bytes received. */
  readonly bytes: number;
  readonly error?: string;
}

/** Options of a C-GET. */
export interface GetOptions {
  readonly target: ScuTarget;
  readonly root: QueryRoot;
  readonly identifier: RequestIdentifier;
  /** Where the instances are written; created if missing. */
  readonly outputDirectory: string;
  /** Storage SOP classes to accept; default every one we know (`storageSopClasses()`). */
  readonly sopClasses?: readonly string[];
  /** Transfer syntaxes proposed for each storage context, preferred first. */
  readonly transferSyntaxes?: readonly string[];
  readonly signal?: AbortSignal;
  readonly onProgress?: (counts: SuboperationCounts) => void;
  /** Called after each C-STORE sub-operation, written or refused. */
  readonly onInstance?: (instance: ReceivedInstance) => void;
}

/** The outcome of a C-GET: the peer's final status and counts, and what we wrote. */
export interface GetResult extends RetrieveResult {
  readonly received: readonly ReceivedInstance[];
}

/** What a refused sub-operation answers: a status and a short comment (≤ 64 characters). */
class RefusedInstance extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function* withPrefix(prefix: Buffer, rest: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield prefix;
  yield* rest;
}

/** Streams one C-STORE's data set into `<uid>.dcm` under `directory` by way of a temporary file. */
async function writeInstance(
  request: IncomingRequest,
  directory: string,
  sourceAeTitle: string,
  signal: AbortSignal,
): Promise<string> {
  const { affectedSopClassUid: sopClassUid, affectedSopInstanceUid: sopInstanceUid } =
    request.command;
  if (sopClassUid === undefined || sopInstanceUid === undefined || !isValidUid(sopInstanceUid))
    throw new RefusedInstance(Status.CannotUnderstand, 'missing or invalid SOP instance UID');
  if (request.dataset === undefined)
    throw new RefusedInstance(Status.CannotUnderstand, 'no data set');
  const meta = buildFileMeta({
    sopClassUid,
    sopInstanceUid,
    transferSyntaxUid: request.context.transferSyntax,
    sourceAeTitle,
  });
  const path = join(directory, `${sopInstanceUid}.dcm`);
  const temporary = join(directory, `.${sopInstanceUid}.${randomBytes(4).toString('hex')}.part`);
  try {
    await pipeline(
      withPrefix(meta, request.dataset),
      createWriteStream(temporary, { flags: 'wx' }),
      { signal },
    );
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    if (request.dataset.errored !== null || signal.aborted) throw error;
    throw new RefusedInstance(Status.OutOfResources, 'cannot write the instance to disk');
  }
  return path;
}

/**
 * Receives the C-STORE sub-operations of one C-GET into a folder: `handle` serves the peer's
 * requests (any but C-STORE is an unrecognized operation); `settled` waits for the writes
 * under way, so that no temporary file outlives the operation.
 */
class InstanceReceiver {
  readonly received: ReceivedInstance[] = [];
  readonly #writing = new Set<Promise<ResponseSpec>>();
  readonly #directory: string;
  readonly #sourceAeTitle: string;
  readonly #onInstance: ((instance: ReceivedInstance) => void) | undefined;

  constructor(
    directory: string,
    sourceAeTitle: string,
    onInstance?: (instance: ReceivedInstance) => void,
  ) {
    this.#directory = directory;
    this.#sourceAeTitle = sourceAeTitle;
    this.#onInstance = onInstance;
  }

  readonly handle: RequestHandler = (request, signal) => {
    const receiving = this.#receive(request, signal);
    this.#writing.add(receiving);
    const forget = () => this.#writing.delete(receiving);
    receiving.then(forget, forget);
    return receiving;
  };

  async settled(): Promise<void> {
    await Promise.allSettled([...this.#writing]);
  }

  #record(instance: ReceivedInstance): void {
    this.received.push(instance);
    this.#onInstance?.(instance);
  }

  async #receive(request: IncomingRequest, signal: AbortSignal): Promise<ResponseSpec> {
    if (request.command.commandField !== CommandField.CStoreRq)
      return { status: Status.UnrecognizedOperation };
    const base = {
      sopClassUid: request.command.affectedSopClassUid ?? '',
      sopInstanceUid: request.command.affectedSopInstanceUid ?? '',
      transferSyntaxUid: request.context.transferSyntax,
    };
    try {
      const path = await writeInstance(request, this.#directory, this.#sourceAeTitle, signal);
      this.#record({ ...base, path, bytes: request.dataset?.receivedBytes ?? 0 });
      return { status: Status.Success };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.#record({ ...base, bytes: request.dataset?.receivedBytes ?? 0, error: message });
      if (error instanceof RefusedInstance)
        return { status: error.status, fields: { errorComment: error.message } };
      throw error;
    }
  }
}

/**
 * Retrieves the matching instances with C-GET into `outputDirectory` (PS3.4 §C.4.3). An
 * instance whose SOP class was not accepted is the peer's failed sub-operation. Throws
 * ERR_INVALID_ARGUMENT for more storage SOP classes than fit one association.
 */
export async function get(options: GetOptions): Promise<GetResult> {
  const sopClasses = [...new Set(options.sopClasses ?? storageSopClasses())];
  if (sopClasses.length === 0 || sopClasses.length > MAX_STORAGE_CONTEXTS) {
    throw new DicomServerError(
      'ERR_INVALID_ARGUMENT',
      `between 1 and ${MAX_STORAGE_CONTEXTS} storage SOP classes`,
      { count: sopClasses.length },
    );
  }
  const transferSyntaxes = options.transferSyntaxes ?? DEFAULT_GET_TRANSFER_SYNTAXES;
  await mkdir(options.outputDirectory, { recursive: true });
  const receiver = new InstanceReceiver(
    options.outputDirectory,
    options.target.calledAeTitle,
    options.onInstance,
  );
  const retrieving = runRetrieve(
    {
      target: options.target,
      root: options.root,
      service: 'get',
      identifier: options.identifier,
      extraContexts: sopClasses.map((abstractSyntax) => ({ abstractSyntax, transferSyntaxes })),
      // We take the SCP role for storage only: SCU role not proposed (PS3.7 §D.3.3.4).
      roleSelections: sopClasses.map((sopClassUid) => ({
        sopClassUid,
        scuRole: false,
        scpRole: true,
      })),
      onRequest: receiver.handle,
      ...(options.signal !== undefined && { signal: options.signal }),
    },
    options.onProgress,
  );
  try {
    return { ...(await retrieving), received: receiver.received };
  } finally {
    await receiver.settled();
  }
}
