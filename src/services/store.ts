/**
 * C-STORE SCP (PS3.4 Annex B, PS3.7 §9.1.1): the receive path. The data set streams from the
 * association to a temporary file as its fragments arrive, while a bounded parse picks the
 * attributes the index needs. Other values (Pixel Data above all) are skipped as they stream
 * past, but the structure is walked to the end: a data set cut short or malformed after its
 * header is refused, not stored as a broken file. Success is answered only once the file is
 * durable under its final name and indexed; every failure leaves nothing behind.
 *
 * Layer: services. Reaches storage and the index only through `InstanceStore`.
 */

import { createInflateRaw, type InflateRaw } from 'node:zlib';
import { DatasetReader } from '../dicom/reader/dataset-reader.js';
import { transferSyntaxProperties } from '../dicom/transfer-syntax.js';
import { DicomServerError, hasCode } from '../errors.js';
import type { DatasetStream } from '../network/dimse/assembler.js';
import type { IncomingRequest, ResponseSpec } from '../network/dimse/channel.js';
import { Status } from '../network/dimse/status.js';
import {
  decodeAttributes,
  IndexedTag,
  IndexedValueCollector,
  uidValue,
} from './instance-attributes.js';
import type { InstanceFile, InstanceStore } from './ports.js';

/** Longest value the header parse collects; indexed attributes are far shorter. */
const MAX_COLLECTED_VALUE = 1024;

/** A failure answer with a short error comment (at most 64 characters, PS3.7 §C.4). */
function failure(status: number, comment: string): ResponseSpec {
  return { status, fields: { errorComment: comment.slice(0, 64) } };
}

/**
 * The header parse of one data set, fed the bytes as they are written: the top-level values
 * the index needs, and the item keys of the indexed sequences (see IndexedValueCollector).
 */
class HeaderParse {
  readonly collected = new IndexedValueCollector();
  readonly #reader: DatasetReader;
  readonly #inflater: InflateRaw | undefined;
  #error: Error | undefined;
  #inflated: Promise<void> = Promise.resolve();

  constructor(isExplicitVr: boolean, isLittleEndian: boolean, isDeflated: boolean) {
    this.#reader = new DatasetReader({
      isExplicitVr,
      isLittleEndian,
      // Fed the fragments where they lie in the association's buffer (see `receive`), or,
      // deflated, the inflater's output.
      isInputTransient: !isDeflated,
      maxValueLength: MAX_COLLECTED_VALUE,
      collect: this.collected.collect,
      onToken: this.collected.onToken,
    });
    if (isDeflated) {
      // The stored bytes stay deflated; only the parse sees them inflated.
      const inflater = createInflateRaw();
      inflater.on('data', (chunk: Buffer) => this.#feed(chunk));
      this.#inflated = new Promise((resolve) => {
        inflater.on('end', resolve);
        inflater.on('close', resolve);
        inflater.on('error', (error) => {
          this.#error ??= new DicomServerError(
            'ERR_DATASET_MALFORMED',
            'deflated data set cannot be inflated',
            {},
            error,
          );
          resolve();
        });
      });
      this.#inflater = inflater;
    }
  }

  get error(): Error | undefined {
    return this.#error;
  }

  get isDeflated(): boolean {
    return this.#inflater !== undefined;
  }

  /** Parses a chunk; false when the inflater is behind and the caller should await `drained()`. */
  push(chunk: Buffer): boolean {
    if (this.#error !== undefined) return true;
    if (this.#inflater !== undefined) return this.#inflater.write(chunk);
    this.#feed(chunk);
    return true;
  }

  /** Resolves when the inflater can take more (or failed). */
  drained(): Promise<void> {
    const inflater = this.#inflater;
    if (inflater === undefined || !inflater.writableNeedDrain || this.#error !== undefined) {
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        inflater.off('drain', done);
        inflater.off('close', done);
        resolve();
      };
      inflater.on('drain', done);
      inflater.on('close', done);
    });
  }

  /** Ends the parse; the error if the data set could not be read. */
  async finish(): Promise<Error | undefined> {
    if (this.#inflater !== undefined) {
      this.#inflater.end();
      await this.#inflated;
    }
    if (this.#error === undefined) {
      try {
        this.#reader.end();
      } catch (error) {
        this.#error = error as Error;
      }
    }
    return this.#error;
  }

  #feed(chunk: Buffer): void {
    if (this.#error !== undefined) return;
    try {
      this.#reader.push(chunk);
    } catch (error) {
      this.#error = error as Error;
      this.#inflater?.destroy();
    }
  }
}

/** Makes the C-STORE handler over an instance store. */
export function createStoreHandler(
  store: InstanceStore,
): (request: IncomingRequest, callingAeTitle: string) => Promise<ResponseSpec> {
  return async (request, callingAeTitle) => {
    const { command, dataset, context } = request;
    const sopClassUid = command.affectedSopClassUid ?? '';
    const sopInstanceUid = command.affectedSopInstanceUid ?? '';
    if (dataset === undefined)
      return failure(Status.CannotUnderstand, 'C-STORE-RQ without a data set');
    const syntax = transferSyntaxProperties(context.transferSyntax);
    if (syntax === undefined || sopInstanceUid === '' || !/^[0-9.]{1,64}$/.test(sopInstanceUid)) {
      await dataset.drain();
      return failure(Status.CannotUnderstand, 'invalid Affected SOP Instance UID');
    }
    const instance = {
      sopClassUid,
      sopInstanceUid,
      transferSyntaxUid: context.transferSyntax,
      callingAeTitle,
    };
    const parse = new HeaderParse(syntax.isExplicitVr, syntax.isLittleEndian, syntax.isDeflated);
    const expected = { sopClassUid, sopInstanceUid };
    // With a file ready, the data set goes to it from its first fragment while the checks run
    // (nothing in between is copied and held); a refusal then drops the file.
    const ready = syntax.isDeflated ? undefined : store.openNow?.(instance);
    if (ready !== undefined)
      return receive(ready, dataset, parse, expected, admission(store, sopInstanceUid));
    const refusal = await admission(store, sopInstanceUid);
    if (refusal !== undefined) {
      await dataset.drain();
      return refusal;
    }
    return receive(await store.open(instance), dataset, parse, expected);
  };
}

/**
 * The checks an instance passes before it is taken in: the answer that refuses it (a
 * duplicate, kept or rejected by the policy; a full storage), or undefined to go on.
 */
async function admission(
  store: InstanceStore,
  sopInstanceUid: string,
): Promise<ResponseSpec | undefined> {
  if (await store.isStored(sopInstanceUid)) {
    if (store.duplicatePolicy === 'keep_first') return { status: Status.Success };
    if (store.duplicatePolicy === 'reject') {
      return failure(Status.DuplicateSopInstance, 'duplicate SOP Instance UID');
    }
  }
  if (!(await store.hasRoom())) return failure(Status.OutOfResources, 'storage full');
  return undefined;
}

/**
 * Receives the data set into `file` and commits it. `admitted`, when the checks still run as
 * the data set arrives (see `admission`): once it refuses, the rest is read and dropped, and
 * its answer is the response.
 */
async function receive(
  file: InstanceFile,
  dataset: DatasetStream,
  parse: HeaderParse,
  expected: { sopClassUid: string; sopInstanceUid: string },
  admitted?: Promise<ResponseSpec | undefined>,
): Promise<ResponseSpec> {
  let isCommitted = false;
  let isRefused = false;
  // Observed here so that a refusal stops the writing early; a rejection is awaited below.
  admitted?.then(
    (refusal) => {
      isRefused = refusal !== undefined;
    },
    () => undefined,
  );
  try {
    if (parse.isDeflated) {
      for await (const chunk of dataset) {
        // After a parse error the rest is read and dropped: the answer follows the whole request.
        if (parse.error !== undefined) continue;
        // Both the file and the inflater hold the association back when behind.
        const isParseReady = parse.push(chunk);
        if (parse.error === undefined && !file.write(chunk)) await file.drained();
        if (!isParseReady) await parse.drained();
      }
    } else {
      // Each fragment is parsed and copied to the file where it lies in the association's
      // buffer; the file holds the association back when its writes are behind.
      await dataset.consume((chunk) => {
        if (parse.error !== undefined || isRefused) return undefined;
        parse.push(chunk);
        if (parse.error !== undefined || file.write(chunk)) return undefined;
        return file.drained();
      });
    }
    const refusal = await admitted;
    if (refusal !== undefined) return refusal;
    const parseError = await parse.finish();
    if (parseError !== undefined) {
      return failure(
        Status.CannotUnderstand,
        hasCode(parseError, 'ERR_DATASET_TOO_DEEP')
          ? 'sequences nested too deep'
          : 'data set cannot be parsed',
      );
    }
    const { values, sequences } = parse.collected;
    const datasetClass = uidValue(values, IndexedTag.SOPClassUID);
    const datasetInstance = uidValue(values, IndexedTag.SOPInstanceUID);
    if (datasetClass !== expected.sopClassUid || datasetInstance !== expected.sopInstanceUid) {
      return failure(
        Status.DataSetDoesNotMatchSopClass,
        'SOP Class or Instance UID differs from command',
      );
    }
    const attributes = decodeAttributes(values, sequences);
    const note = {
      patientId: attributes.patientId ?? undefined,
      studyInstanceUid: attributes.studyInstanceUid ?? undefined,
      seriesInstanceUid: attributes.seriesInstanceUid ?? undefined,
    };
    try {
      const result = await file.commit(attributes);
      isCommitted = true;
      // Stored meanwhile by another association, and the first is kept: success all the same.
      if (result.isDuplicateKept === true) {
        return { status: Status.Success, note: { ...note, outcome: 'duplicate kept' } };
      }
      return {
        status: Status.Success,
        note: { ...note, filePath: result.filePath, fileSize: result.fileSize },
      };
    } catch (error) {
      if (hasCode(error, 'ERR_INVALID_UID')) {
        return failure(
          Status.CannotUnderstand,
          `invalid ${(error as DicomServerError).details.field ?? 'UID'}`,
        );
      }
      if (hasCode(error, 'ERR_STORAGE_FULL')) return failure(Status.OutOfResources, 'storage full');
      if (hasCode(error, 'ERR_DUPLICATE_INSTANCE')) {
        return failure(Status.DuplicateSopInstance, 'duplicate SOP Instance UID');
      }
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EDQUOT')
        return failure(Status.OutOfResources, 'no space left on device');
      // Any other file-system error (EIO, EROFS, EACCES, EFBIG, EMLINK, ...) is a write error,
      // answered with its code only: its message holds the path, and so the patient ID.
      if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) {
        return failure(Status.OutOfResources, `write error (${code})`);
      }
      throw error;
    }
  } finally {
    if (!isCommitted) await file.abort();
  }
}
