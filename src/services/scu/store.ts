/**
 * C-STORE SCU: sends Part 10 files to a peer. `sendFiles` (the `send` command) proposes one
 * presentation context per SOP class and transfer syntax found and sends each file as it is
 * stored; several associations may work through the files in parallel. `storeFile`, which it
 * shares with the C-STORE sub-operations of C-MOVE and C-GET, sends one file over an open
 * channel, its data set streamed from disk, converted between the uncompressed little endian
 * syntaxes when the context asks for another.
 *
 * Layer: services.
 */

import { createReadStream } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline, type Readable } from 'node:stream';
import { createInflateRaw } from 'node:zlib';
import { readFileMeta } from '../../dicom/part10.js';
import { convertibleEncodingOf, transcodeDataset } from '../../dicom/transcode.js';
import { TransferSyntax } from '../../dicom/transfer-syntax.js';
import type { DatasetEncoding } from '../../dicom/writer/dataset-writer.js';
import { DicomServerError } from '../../errors.js';
import type { Association, AssociationTimeouts } from '../../network/association/association.js';
import type { AcceptedContext } from '../../network/association/negotiation.js';
import { describeRejection } from '../../network/association/reasons.js';
import { requestAssociation } from '../../network/association/requestor.js';
import { DimseChannel } from '../../network/dimse/channel.js';
import { CommandField, Priority } from '../../network/dimse/command.js';
import { Status, statusCategory } from '../../network/dimse/status.js';
import type { TlsClientOptions } from '../../network/tls.js';

/** A file to send, with what its meta group says. */
export interface SendableFile {
  readonly path: string;
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
  readonly transferSyntaxUid: string;
  readonly datasetOffset: number;
  readonly size: number;
}

/** What happened to one file. */
export interface FileOutcome {
  readonly path: string;
  readonly status?: number;
  readonly error?: string;
  readonly bytes: number;
}

/** Where to send, as whom, how. */
export interface SendOptions {
  readonly host: string;
  readonly port: number;
  readonly callingAeTitle: string;
  readonly calledAeTitle: string;
  readonly associations?: number;
  readonly timeouts?: Partial<AssociationTimeouts> & { readonly dimseMs?: number };
  /** Over TLS (PS3.15 Annex B) with these options; plain TCP without. */
  readonly tls?: TlsClientOptions;
  /** Called after each file, successful or not. */
  readonly onFile?: (outcome: FileOutcome) => void;
}

/** The outcome of a send. */
export interface SendSummary {
  readonly sent: FileOutcome[];
  readonly failed: FileOutcome[];
  readonly bytes: number;
  readonly durationMs: number;
}

/** Most presentation contexts one association may propose (IDs 1 to 255, odd: PS3.8 §9.3.2.2). */
const MAX_CONTEXTS = 128;

/** Bytes read to find the file meta group; a meta group is far smaller. */
const META_PROBE_BYTES = 64 * 1024;

/** Every regular file under the given paths (folders recursively), in a stable order. */
export async function collectFiles(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const path of paths) {
    const info = await stat(path);
    if (info.isDirectory()) {
      const entries = (await readdir(path)).sort();
      out.push(...(await collectFiles(entries.map((name) => join(path, name)))));
    } else if (info.isFile()) {
      out.push(path);
    }
  }
  return out;
}

/** Reads a file's meta group; throws ERR_DATASET_MALFORMED for anything but a Part 10 file. */
export async function inspectFile(path: string): Promise<SendableFile> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const head = Buffer.alloc(Math.min(size, META_PROBE_BYTES));
    await handle.read(head, 0, head.length, 0);
    const meta = readFileMeta(head);
    const { mediaStorageSopClassUid, mediaStorageSopInstanceUid, transferSyntaxUid } = meta;
    if (
      mediaStorageSopClassUid === undefined ||
      mediaStorageSopInstanceUid === undefined ||
      transferSyntaxUid === undefined
    ) {
      throw new DicomServerError(
        'ERR_DATASET_MALFORMED',
        'file meta lacks SOP class, instance or transfer syntax',
        {
          path,
        },
      );
    }
    return {
      path,
      sopClassUid: mediaStorageSopClassUid,
      sopInstanceUid: mediaStorageSopInstanceUid,
      transferSyntaxUid,
      datasetOffset: meta.datasetOffset,
      size: size - meta.datasetOffset,
    };
  } finally {
    await handle.close();
  }
}

function contextKey(file: SendableFile): string {
  return `${file.sopClassUid} ${file.transferSyntaxUid}`;
}

/** Splits files into batches whose distinct (SOP class, transfer syntax) pairs fit one association. */
function batchesOf(files: readonly SendableFile[]): SendableFile[][] {
  const byKey = new Map<string, SendableFile[]>();
  for (const file of files) {
    const list = byKey.get(contextKey(file)) ?? [];
    list.push(file);
    byKey.set(contextKey(file), list);
  }
  const groups = [...byKey.values()];
  const batches: SendableFile[][] = [];
  for (let i = 0; i < groups.length; i += MAX_CONTEXTS)
    batches.push(groups.slice(i, i + MAX_CONTEXTS).flat());
  return batches;
}

async function openChannel(
  options: SendOptions,
  files: readonly SendableFile[],
): Promise<DimseChannel> {
  const pairs = new Map(files.map((file) => [contextKey(file), file]));
  const association: Association = await requestAssociation({
    host: options.host,
    port: options.port,
    callingAeTitle: options.callingAeTitle,
    calledAeTitle: options.calledAeTitle,
    contexts: [...pairs.values()].map((file) => ({
      abstractSyntax: file.sopClassUid,
      transferSyntaxes: [file.transferSyntaxUid],
    })),
    ...(options.timeouts !== undefined && { timeouts: options.timeouts }),
    ...(options.tls !== undefined && { tls: options.tls }),
  });
  return new DimseChannel(association, { dimseTimeoutMs: options.timeouts?.dimseMs ?? 60_000 });
}

async function* withPadByte(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield* chunks;
  yield Buffer.alloc(1);
}

/** How one C-STORE request goes out: on which context, and on whose behalf. */
export interface StoreRequestOptions {
  /**
   * The accepted context to send on; the data set goes in its transfer syntax, converted when
   * that differs from the stored one (see `canSendAs`). Default: a context for the file's SOP
   * class and stored transfer syntax.
   */
  readonly context?: AcceptedContext;
  readonly priority?: number;
  /** For the C-STORE sub-operations of a C-MOVE (PS3.7 §9.1.1.1, Table 9.1-1). */
  readonly moveOriginatorAeTitle?: string;
  readonly moveOriginatorMessageId?: number;
}

/** The encoding a stored data set can be converted from, once inflated when deflated. */
function sourceEncodingOf(storedTransferSyntax: string): DatasetEncoding | undefined {
  if (storedTransferSyntax === TransferSyntax.DeflatedExplicitVRLittleEndian) {
    return convertibleEncodingOf(TransferSyntax.ExplicitVRLittleEndian);
  }
  return convertibleEncodingOf(storedTransferSyntax);
}

/**
 * True when a file stored in one transfer syntax can be sent in another: as it is, or
 * converted between the uncompressed little endian syntaxes (a deflated one inflated first).
 * Big endian and compressed pixel data are sent only as they are stored.
 */
export function canSendAs(storedTransferSyntax: string, targetTransferSyntax: string): boolean {
  if (storedTransferSyntax === targetTransferSyntax) return true;
  return (
    sourceEncodingOf(storedTransferSyntax) !== undefined &&
    convertibleEncodingOf(targetTransferSyntax) !== undefined
  );
}

/** The stored data set's bytes inflated, as they stream past. */
async function* inflated(chunks: Readable): AsyncGenerator<Buffer> {
  const inflater = pipeline(chunks, createInflateRaw(), () => {
    // Errors reach the consumer through the iteration of the inflater, which pipeline destroys.
  });
  try {
    yield* inflater as AsyncIterable<Buffer>;
  } finally {
    inflater.destroy();
  }
}

/** A file's data set in `targetTransferSyntax`, streamed from disk. */
function datasetAs(file: SendableFile, targetTransferSyntax: string, stream: Readable) {
  if (targetTransferSyntax === file.transferSyntaxUid) {
    // A deflated bit stream of odd length takes one trailing NUL pad byte (PS3.5 §A.5).
    return file.size % 2 === 0 ? stream : withPadByte(stream);
  }
  const source = sourceEncodingOf(file.transferSyntaxUid);
  const target = convertibleEncodingOf(targetTransferSyntax);
  if (source === undefined || target === undefined) {
    throw new DicomServerError('ERR_NO_ACCEPTED_CONTEXT', 'cannot convert to that syntax', {
      transferSyntaxUid: file.transferSyntaxUid,
      targetTransferSyntaxUid: targetTransferSyntax,
    });
  }
  const isDeflated = file.transferSyntaxUid === TransferSyntax.DeflatedExplicitVRLittleEndian;
  const plain = isDeflated ? inflated(stream) : stream;
  return source.isExplicitVr === target.isExplicitVr
    ? plain
    : transcodeDataset(plain, source, target);
}

/**
 * Sends one stored file as a C-STORE request over an open channel and resolves with the
 * response's status. The data set streams from disk past the file meta, never read whole, and
 * is converted on the way when the context's transfer syntax asks for it. Throws
 * ERR_NO_ACCEPTED_CONTEXT, ERR_DATASET_MALFORMED (an odd-length data set), I/O errors, and
 * the association's errors; a failure part-way through a data set aborts the association.
 */
export async function storeFile(
  channel: DimseChannel,
  file: SendableFile,
  options: StoreRequestOptions = {},
): Promise<number> {
  const isDeflated = file.transferSyntaxUid === TransferSyntax.DeflatedExplicitVRLittleEndian;
  if (file.size % 2 !== 0 && !isDeflated) {
    // A data set of odd length breaks PS3.5 §7.1, and peers abort on its odd last fragment
    // (DCMTK: "Odd Fragment Length"); we do not pad values to mend a file.
    throw new DicomServerError(
      'ERR_DATASET_MALFORMED',
      'data set has an odd length (PS3.5 requires even)',
      {
        path: file.path,
        length: file.size,
      },
    );
  }
  const context = options.context ?? channel.findContext(file.sopClassUid, file.transferSyntaxUid);
  if (context === undefined || !canSendAs(file.transferSyntaxUid, context.transferSyntax)) {
    throw new DicomServerError(
      'ERR_NO_ACCEPTED_CONTEXT',
      'peer accepted no context for this SOP class and transfer syntax',
      {
        sopClassUid: file.sopClassUid,
        transferSyntaxUid: file.transferSyntaxUid,
      },
    );
  }
  const dataset = createReadStream(file.path, {
    start: file.datasetOffset,
    highWaterMark: 256 * 1024,
  });
  let status: number = Status.ProcessingFailure;
  try {
    const body = datasetAs(file, context.transferSyntax, dataset);
    for await (const response of channel.request(
      context.id,
      {
        commandField: CommandField.CStoreRq,
        affectedSopClassUid: file.sopClassUid,
        affectedSopInstanceUid: file.sopInstanceUid,
        priority: options.priority ?? Priority.Medium,
        hasDataset: true,
        ...(options.moveOriginatorAeTitle !== undefined && {
          moveOriginatorAeTitle: options.moveOriginatorAeTitle,
        }),
        ...(options.moveOriginatorMessageId !== undefined && {
          moveOriginatorMessageId: options.moveOriginatorMessageId,
        }),
      },
      body,
    )) {
      status = response.command.status ?? Status.ProcessingFailure;
    }
  } finally {
    dataset.destroy();
  }
  return status;
}

/** A one-line reason for a failure, with a rejection's result, source and reason in words. */
function reasonOf(error: unknown): string {
  if (error instanceof DicomServerError && error.code === 'ERR_ASSOCIATION_REJECTED') {
    const { result, source, reason } = error.details;
    return `association rejected: ${describeRejection(Number(result), Number(source), Number(reason))}`;
  }
  return error instanceof Error ? error.message : String(error);
}

/** Sends files (and the files under folders) to a peer. Never throws for a single file's failure. */
export async function sendFiles(
  paths: readonly string[],
  options: SendOptions,
): Promise<SendSummary> {
  const started = performance.now();
  const sent: FileOutcome[] = [];
  const failed: FileOutcome[] = [];
  const record = (outcome: FileOutcome, isSuccess: boolean) => {
    (isSuccess ? sent : failed).push(outcome);
    options.onFile?.(outcome);
  };
  const sendable: SendableFile[] = [];
  for (const path of await collectFiles(paths)) {
    try {
      sendable.push(await inspectFile(path));
    } catch (error) {
      record(
        { path, error: `not a DICOM Part 10 file: ${(error as Error).message}`, bytes: 0 },
        false,
      );
    }
  }
  for (const batch of batchesOf(sendable)) {
    const queue = [...batch];
    const worker = async () => {
      let channel: DimseChannel;
      try {
        channel = await openChannel(options, batch);
      } catch (error) {
        // This association could not open; the other workers go on, or the files fail below.
        return error as Error;
      }
      for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
        try {
          const status = await storeFile(channel, file);
          const isSuccess =
            statusCategory(status) === 'success' || statusCategory(status) === 'warning';
          record({ path: file.path, status, bytes: file.size }, isSuccess);
        } catch (error) {
          record({ path: file.path, error: reasonOf(error), bytes: 0 }, false);
          if (!channel.association.isEstablished) return error as Error;
        }
      }
      if (channel.association.isEstablished) await channel.association.release();
      return undefined;
    };
    const workers = Math.max(1, Math.min(options.associations ?? 1, batch.length));
    const errors = await Promise.all(Array.from({ length: workers }, worker));
    const firstError = errors.find((e) => e !== undefined);
    const reason =
      firstError === undefined ? 'no association could be opened' : reasonOf(firstError);
    for (const file of queue.splice(0)) record({ path: file.path, error: reason, bytes: 0 }, false);
  }
  return {
    sent,
    failed,
    bytes: sent.reduce((total, outcome) => total + outcome.bytes, 0),
    durationMs: performance.now() - started,
  };
}
