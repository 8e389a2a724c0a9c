/**
 * After a crash: files that reached their final name but not the index. A store renames its
 * file into place, then indexes it; a process killed in between leaves a complete file the
 * index does not know (its sender got no success, so nothing promised was lost). At start-up
 * after an unclean stop, files written since the previous start are checked against the index:
 * a file the index lacks is indexed from its own header (the file on disk is the truth), one
 * whose SOP Instance UID the index holds under another path (an overwrite cut short) goes.
 *
 * Layer: server.
 */

import { createReadStream } from 'node:fs';
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

/**
 * Checks the files modified since `since` (ms since the epoch) against the index, as the module
 * comment says. Files it cannot read as DICOM are left alone and logged.
 */
export async function reconcileRecentFiles(
  root: string,
  since: number,
  index: IndexRepository,
  logger: Logger,
): Promise<ReconcileReport> {
  let checked = 0;
  let indexed = 0;
  let removed = 0;
  let bytesIndexed = 0;
  for await (const path of walk(root)) {
    const info = await stat(path);
    if (info.mtimeMs < since) continue;
    checked += 1;
    const filePath = relative(root, path);
    try {
      const { meta, values, sequences } = await readStoredFile(path);
      const sopInstanceUid =
        meta.mediaStorageSopInstanceUid ?? uidValue(values, IndexedTag.SOPInstanceUID);
      if (sopInstanceUid === undefined) throw new Error('no SOP Instance UID');
      const known = await index.findInstance(sopInstanceUid);
      if (known?.filePath === filePath) continue;
      if (known !== undefined) {
        await unlink(path);
        removed += 1;
        continue;
      }
      const attributes = decodeAttributes(values, sequences);
      if (attributes.studyInstanceUid === '' || attributes.seriesInstanceUid === '') {
        throw new Error('no Study or Series Instance UID in the header');
      }
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
      indexed += 1;
      bytesIndexed += info.size;
    } catch (error) {
      // The path holds the patient ID in most layouts: it goes to the debug log only.
      logger.warn(
        { reason: (error as NodeJS.ErrnoException).code ?? (error as Error).message },
        'file in storage not readable as DICOM: left alone',
      );
      logger.debug({ filePath }, 'unreadable file');
    }
  }
  return { checked, indexed, removed, bytesIndexed };
}
