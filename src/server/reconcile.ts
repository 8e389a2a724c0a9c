/**
 * After a crash: files that reached their final name but not the index. A store renames its
 * file into place, then indexes it; a process killed in between leaves a complete file the
 * index does not know (its sender got no success, so nothing promised was lost). At start-up
 * after an unclean stop, files written since the previous start are checked against the index:
 * a file the index lacks is indexed from its own header (the file on disk is the truth), one
 * whose SOP Instance UID the index holds under another path (an overwrite cut short) goes.
 * Then the rows of the instances received since then are checked against the files: a power
 * loss between the flush of the index and that of a file's folder (made side by side) can
 * leave a row without its file, which goes.
 *
 * The storage rescan (storage-lifecycle.ts) checks the whole tree the same way, reporting such
 * duplicates instead of removing them, and the index against the files: the rows of instances
 * whose file is gone are removed.
 *
 * Layer: server.
 */

import { createReadStream, type Stats } from 'node:fs';
import { readdir, stat, unlink } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { inflateRawSync, constants as zlibConstants } from 'node:zlib';
import type { Logger } from 'pino';
import type { IndexRepository } from '../db/repositories/index-repository.js';
import { readFileMeta } from '../dicom/part10.js';
import { DatasetReader } from '../dicom/reader/dataset-reader.js';
import { transferSyntaxProperties } from '../dicom/transfer-syntax.js';
import {
  type CollectedValues,
  decodeAttributes,
  IndexedTag,
  IndexedValueCollector,
  uidValue,
} from '../services/instance-attributes.js';
import { resolveInside } from '../storage/layout.js';

/** What reconciliation did. */
export interface ReconcileReport {
  readonly checked: number;
  readonly indexed: number;
  readonly removed: number;
  readonly bytesIndexed: number;
}

/** Every regular file under `dir`, skipping folders whose name starts with a dot. */
async function* walk(dir: string): AsyncGenerator<string> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else if (entry.isFile()) yield path;
  }
}

/** Reads a stored file's meta and the attributes the index needs from its data set's header. */
async function readStoredFile(path: string): Promise<{
  meta: ReturnType<typeof readFileMeta>;
  values: CollectedValues;
  sequences?: IndexedValueCollector['sequences'];
}> {
  const head = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const stream = createReadStream(path, { start: 0, end: 64 * 1024 - 1 });
    stream.on('data', (chunk) => chunks.push(chunk as Buffer));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
  const meta = readFileMeta(head);
  const syntax = transferSyntaxProperties(meta.transferSyntaxUid ?? '');
  if (syntax === undefined) return { meta, values: new Map() };
  // A deflated data set is read from what its first 64 KiB inflate to (the header is there).
  const dataset = syntax.isDeflated
    ? inflateRawSync(head.subarray(meta.datasetOffset), { finishFlush: zlibConstants.Z_SYNC_FLUSH })
    : head.subarray(meta.datasetOffset);
  // The same picking as on receive: top-level values and the indexed sequences' items.
  const collector = new IndexedValueCollector();
  const reader = new DatasetReader({
    isExplicitVr: syntax.isExplicitVr,
    isLittleEndian: syntax.isLittleEndian,
    maxValueLength: 1024,
    collect: collector.collect,
    stopAt: (tag, depth) => depth === 0 && tag >= 0x7fe00010,
    onToken: collector.onToken,
  });
  reader.push(dataset);
  return { meta, values: collector.values, sequences: collector.sequences };
}

/** What became of one file. */
export type FileOutcome =
  /** Indexed under this path already. */
  | 'known'
  /** Not in the index: indexed now, from its own header. */
  | 'indexed'
  /** Its SOP Instance UID is indexed under another path: removed (after a crash). */
  | 'removed'
  /** Its SOP Instance UID is indexed under another path: left alone and reported (a rescan). */
  | 'duplicate'
  /** Not readable as DICOM, or without the UIDs the index needs: left alone. */
  | 'unreadable'
  /** Modified too recently: a store may be indexing it right now; left for the next look. */
  | 'recent'
  /** Removed while it was being checked (a cleanup). */
  | 'gone';

/** How files are checked. */
export interface ReconcileOptions {
  /** Files modified before this (ms since the epoch) are skipped; all files when absent. */
  readonly since?: number;
  /** Files modified after this (ms since the epoch, asked per file) are left alone. */
  readonly settledBefore?: () => number;
  /**
   * A file whose SOP Instance UID the index holds under another path: removed (an overwrite
   * a crash cut short, at start-up) or only reported (a rescan, while the service may run).
   */
  readonly duplicates: 'remove' | 'report';
  /** Told of each file checked (progress, the rescan's report). */
  readonly onFile?: (filePath: string, outcome: FileOutcome, sizeBytes: number) => void;
  /** Ends the walk early. */
  readonly signal?: AbortSignal;
  /**
   * Runs the look-up and indexing of a file the index lacks, in turn with what removes files
   * (the store's cleanup), so that a file cleanup is removing is not indexed again.
   */
  readonly inTurn?: <T>(work: () => Promise<T>) => Promise<T>;
}

/**
 * Checks the files modified since `since` (ms since the epoch) against the index, as the module
 * comment says. Files it cannot read as DICOM are left alone and logged.
 */
export async function reconcileRecentFiles(
  root: string,
  since: number,
  index: IndexRepository,
  logger: Logger,
): Promise<ReconcileReport & { readonly missingRemoved: number }> {
  const files = await reconcileFiles(root, index, logger, { since, duplicates: 'remove' });
  // A file's folder and the index are flushed side by side before a success (see
  // instance-store.ts): a crash between the two can leave a row whose file never reached the
  // disk. Its sender got no success; the row goes, so that the instance sent again is stored.
  const rows = await removeMissingFiles(root, index, {
    receivedSince: new Date(since).toISOString(),
  });
  return { ...files, missingRemoved: rows.removed };
}

/**
 * Checks the files under `root` (folders starting with a dot skipped: the incoming folder)
 * against the index: a file the index lacks is indexed from its own header; one whose SOP
 * Instance UID is indexed under another path is removed or reported (`duplicates`).
 */
export async function reconcileFiles(
  root: string,
  index: IndexRepository,
  logger: Logger,
  options: ReconcileOptions,
): Promise<ReconcileReport> {
  let checked = 0;
  let indexed = 0;
  let removed = 0;
  let bytesIndexed = 0;
  for await (const path of walk(root)) {
    if (options.signal?.aborted === true) break;
    const info = await stat(path).catch(() => undefined);
    // Gone since the folder was read (a cleanup, a replaced instance).
    if (info === undefined) continue;
    if (options.since !== undefined && info.mtimeMs < options.since) continue;
    const filePath = relative(root, path);
    checked += 1;
    if (options.settledBefore !== undefined && info.mtimeMs > options.settledBefore()) {
      options.onFile?.(filePath, 'recent', info.size);
      continue;
    }
    const outcome = await reconcileFile(path, filePath, info, index, options, logger);
    if (outcome === 'indexed') {
      indexed += 1;
      bytesIndexed += info.size;
    } else if (outcome === 'removed') {
      removed += 1;
    }
    options.onFile?.(filePath, outcome, info.size);
  }
  return { checked, indexed, removed, bytesIndexed };
}

/** Checks one file against the index (see reconcileFiles). */
async function reconcileFile(
  path: string,
  filePath: string,
  info: Stats,
  index: IndexRepository,
  options: ReconcileOptions,
  logger: Logger,
): Promise<FileOutcome> {
  try {
    const { meta, values, sequences } = await readStoredFile(path);
    const sopInstanceUid =
      meta.mediaStorageSopInstanceUid ?? uidValue(values, IndexedTag.SOPInstanceUID);
    if (sopInstanceUid === undefined) throw new Error('no SOP Instance UID');
    const inTurn = options.inTurn ?? ((work) => work());
    return await inTurn(async (): Promise<FileOutcome> => {
      const known = await index.findInstance(sopInstanceUid);
      if (known?.filePath === filePath) return 'known';
      if (known !== undefined) {
        if (options.duplicates === 'report') return 'duplicate';
        await unlink(path);
        return 'removed';
      }
      const attributes = decodeAttributes(values, sequences);
      if (attributes.studyInstanceUid === '' || attributes.seriesInstanceUid === '') {
        throw new Error('no Study or Series Instance UID in the header');
      }
      // Removed meanwhile (a cleanup): nothing to index.
      if ((await stat(path).catch(() => undefined)) === undefined) return 'gone';
      await index.addInstances([
        {
          ...attributes,
          patientId: attributes.patientId ?? '',
          issuerOfPatientId: attributes.issuerOfPatientId ?? '',
          sopInstanceUid,
          sopClassUid:
            meta.mediaStorageSopClassUid ?? uidValue(values, IndexedTag.SOPClassUID) ?? '',
          transferSyntaxUid: meta.transferSyntaxUid ?? '',
          filePath,
          fileSize: info.size,
          callingAe: meta.sourceAeTitle ?? '',
          receivedAt: info.mtime.toISOString(),
        },
      ]);
      return 'indexed';
    });
  } catch (error) {
    // The path holds the patient ID in most layouts: it goes to the debug log only.
    logger.warn(
      { reason: (error as NodeJS.ErrnoException).code ?? (error as Error).message },
      'file in storage not readable as DICOM: left alone',
    );
    logger.debug({ filePath }, 'unreadable file');
    return 'unreadable';
  }
}

/** What a check of the index against the files found. */
export interface MissingFilesReport {
  readonly checked: number;
  readonly removed: number;
  readonly bytesRemoved: number;
}

/** How the index is checked against the files. */
export interface MissingFilesOptions {
  /** Only the instances received at or after this time (ISO) are checked; all when absent. */
  readonly receivedSince?: string;
  /** Told of each instance whose file was gone, once its row is removed. */
  readonly onMissing?: (filePath: string, sizeBytes: number) => void;
  /** Told of the count checked so far, after each batch. */
  readonly onProgress?: (checked: number) => void;
  readonly signal?: AbortSignal;
}

/** Index rows read and checked at a time. */
const MISSING_BATCH = 500;

/**
 * Checks every indexed instance's file: the rows of those whose file is gone are removed (with
 * the counts and lists of their series and studies), each only if it still names that file.
 * A file that cannot be looked at (permissions) is not taken as gone.
 */
export async function removeMissingFiles(
  root: string,
  index: IndexRepository,
  options: MissingFilesOptions = {},
): Promise<MissingFilesReport> {
  let checked = 0;
  let removed = 0;
  let bytesRemoved = 0;
  let afterId = 0;
  for (;;) {
    if (options.signal?.aborted === true) break;
    const rows = await index.instancesAfter(afterId, MISSING_BATCH, options.receivedSince);
    if (rows.length === 0) break;
    afterId = rows.at(-1)?.id ?? afterId;
    const missing: typeof rows = [];
    for (const row of rows) {
      if (await isGone(root, row.filePath)) missing.push(row);
    }
    checked += rows.length;
    if (missing.length > 0) {
      // A row replaced or cleaned up meanwhile is not removed, nor counted.
      for (const row of await index.removeMissingInstances(missing)) {
        removed += 1;
        bytesRemoved += row.fileSize;
        options.onMissing?.(row.filePath, row.fileSize);
      }
    }
    options.onProgress?.(checked);
  }
  return { checked, removed, bytesRemoved };
}

/**
 * Whether an indexed file is gone from the storage. A path that would leave the root is not
 * looked at (nor taken as gone: such a row is refused wherever it is used).
 */
async function isGone(root: string, filePath: string): Promise<boolean> {
  let path: string;
  try {
    path = resolveInside(root, filePath);
  } catch {
    return false;
  }
  try {
    await stat(path);
    return false;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR';
  }
}
