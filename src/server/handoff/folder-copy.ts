/**
 * Copies a completed series into the handler folder, atomically: the files are hard-linked
 * (copied when the handler folder is on another volume) into `<root>/.incoming-<random>/`
 * beside a `manifest.json`, everything is flushed, and only then is the folder renamed to
 * `<root>/<StudyInstanceUID>/<SeriesInstanceUID>`. A reader of the handler folder therefore
 * never sees a half-built series: a folder under its final name is complete.
 *
 * Layer: server; may use storage helpers; must not import `web` or `cli`.
 */

import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, constants as fsConstants } from 'node:fs';
import {
  copyFile,
  link,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  rename,
  rm,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DicomServerError } from '../../errors.js';
import { syncDirectory } from '../../storage/atomic-writer.js';
import { checkedUid } from '../../storage/layout.js';
import type { HandoffEvent, HandoffFile } from './types.js';

/** The manifest's name inside a series folder. */
export const MANIFEST_NAME = 'manifest.json';

/** Prefix of a folder being built; never a final name (UIDs have no leading dot). */
export const INCOMING_PREFIX = '.incoming-';

/** Prefix of an earlier copy moved aside while its replacement is renamed in. */
export const REPLACED_PREFIX = '.replaced-';

/** Link errors after which the file is copied instead: another volume, or no hard links there. */
const COPY_INSTEAD_OF_LINK = new Set(['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK']);

/** One file of the copy, as listed in the manifest. */
export interface ManifestFile {
  /** The file's name inside the series folder: `<SOPInstanceUID>.dcm`. */
  readonly name: string;
  readonly sopInstanceUid: string;
  readonly sopClassUid: string;
  readonly transferSyntaxUid: string;
  readonly sizeBytes: number;
  /** Hex SHA-256 of the file's bytes. */
  readonly sha256: string;
}

/** The content of `manifest.json`. */
export interface HandlerManifest {
  readonly manifestVersion: 1;
  readonly type: HandoffEvent['type'];
  readonly idempotencyKey: string;
  readonly occurredAt: string;
  readonly patient: { readonly id: string; readonly name: string | null };
  readonly study: {
    readonly instanceUid: string;
    readonly date: string | null;
    readonly description: string | null;
    readonly accessionNumber: string | null;
  };
  readonly series: {
    readonly instanceUid: string;
    readonly number: number | null;
    readonly description: string | null;
    readonly modality: string | null;
    readonly instanceCount: number;
    readonly totalSizeBytes: number;
  };
  readonly files: readonly ManifestFile[];
}

/**
 * Copies the event's series into `<handlerRoot>/<StudyInstanceUID>/<SeriesInstanceUID>` and
 * returns that folder. A copy from an earlier completion is replaced; a folder already made for
 * the same idempotency key is returned as it is. Rejects with ERR_HANDOFF_FAILED (details:
 * `action: 'copy'`, the errno `errorCode`), leaving nothing under the final name.
 */
export async function copyToHandlerFolder(
  event: HandoffEvent,
  handlerRoot: string,
): Promise<string> {
  const { series } = event;
  try {
    const finalFolder = join(
      handlerRoot,
      checkedUid(series.studyInstanceUid, 'StudyInstanceUID'),
      checkedUid(series.seriesInstanceUid, 'SeriesInstanceUID'),
    );
    if ((await readManifest(finalFolder))?.idempotencyKey === event.idempotencyKey)
      return finalFolder;
    await mkdir(handlerRoot, { recursive: true });
    const incoming = await mkdtemp(join(handlerRoot, INCOMING_PREFIX));
    try {
      await buildFolder(event, incoming);
      await moveIntoPlace(incoming, finalFolder, handlerRoot);
    } finally {
      // After a successful rename there is nothing left here; after a failure, the partial copy.
      await rm(incoming, { recursive: true, force: true });
    }
    return finalFolder;
  } catch (error) {
    throw new DicomServerError(
      'ERR_HANDOFF_FAILED',
      'copy to the handler folder failed',
      { action: 'copy', seriesInstanceUid: series.seriesInstanceUid, errorCode: codeOf(error) },
      error,
    );
  }
}

/** Fills `folder` with the series' files and its manifest, all flushed to disk. */
async function buildFolder(event: HandoffEvent, folder: string): Promise<void> {
  const files: ManifestFile[] = [];
  for (const file of event.series.files) files.push(await placeFile(file, folder));
  await writeDurably(
    join(folder, MANIFEST_NAME),
    `${JSON.stringify(manifestFor(event, files), null, 2)}\n`,
  );
  await syncDirectory(folder);
}

/** Links (or copies) one file into `folder` and reads it back for its size and checksum. */
async function placeFile(file: HandoffFile, folder: string): Promise<ManifestFile> {
  const name = `${checkedUid(file.sopInstanceUid, 'SOPInstanceUID')}.dcm`;
  const target = join(folder, name);
  try {
    await link(file.path, target);
  } catch (error) {
    if (!COPY_INSTEAD_OF_LINK.has(codeOf(error) ?? '')) throw error;
    await copyFile(file.path, target, fsConstants.COPYFILE_EXCL);
    await syncFile(target);
  }
  const { sizeBytes, sha256 } = await checksum(target);
  const { sopInstanceUid, sopClassUid, transferSyntaxUid } = file;
  return { name, sopInstanceUid, sopClassUid, transferSyntaxUid, sizeBytes, sha256 };
}

/** SHA-256 and size of a file, read as a stream. */
async function checksum(path: string): Promise<{ sizeBytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let sizeBytes = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    sizeBytes += (chunk as Buffer).length;
  }
  return { sizeBytes, sha256: hash.digest('hex') };
}

/** The manifest of one copy. */
function manifestFor(event: HandoffEvent, files: readonly ManifestFile[]): HandlerManifest {
  const { series } = event;
  return {
    manifestVersion: 1,
    type: event.type,
    idempotencyKey: event.idempotencyKey,
    occurredAt: event.occurredAt,
    patient: { id: series.patientId, name: series.patientName },
    study: {
      instanceUid: series.studyInstanceUid,
      date: series.studyDate,
      description: series.studyDescription,
      accessionNumber: series.accessionNumber,
    },
    series: {
      instanceUid: series.seriesInstanceUid,
      number: series.seriesNumber,
      description: series.seriesDescription,
      modality: series.modality,
      instanceCount: files.length,
      totalSizeBytes: files.reduce((total, file) => total + file.sizeBytes, 0),
    },
    files,
  };
}

/**
 * Renames the built folder to its final name. An earlier copy is first renamed aside, and put
 * back if the new one cannot be renamed in; it is removed once the new one is in place. (Node
 * has no rename-exchange, so for that moment the series has no folder, never a partial one.)
 */
async function moveIntoPlace(incoming: string, finalFolder: string, root: string): Promise<void> {
  const studyFolder = dirname(finalFolder);
  if ((await mkdir(studyFolder, { recursive: true })) !== undefined) await syncDirectory(root);
  const aside = join(root, `${REPLACED_PREFIX}${randomBytes(6).toString('hex')}`);
  const hadEarlier = await renameIfExists(finalFolder, aside);
  try {
    await rename(incoming, finalFolder);
  } catch (error) {
    if (hadEarlier) await rename(aside, finalFolder);
    throw error;
  }
  await syncDirectory(studyFolder);
  await syncDirectory(root);
  if (hadEarlier) await rm(aside, { recursive: true, force: true });
}

/** Renames `from` to `to`; false when `from` does not exist. */
async function renameIfExists(from: string, to: string): Promise<boolean> {
  try {
    await rename(from, to);
    return true;
  } catch (error) {
    if (codeOf(error) === 'ENOENT') return false;
    throw error;
  }
}

/** The manifest in `folder`, or null when there is none or it cannot be read as one. */
async function readManifest(folder: string): Promise<HandlerManifest | null> {
  let text: string;
  try {
    text = await readFile(join(folder, MANIFEST_NAME), 'utf8');
  } catch (error) {
    if (codeOf(error) === 'ENOENT' || codeOf(error) === 'ENOTDIR') return null;
    throw error;
  }
  try {
    return JSON.parse(text) as HandlerManifest;
  } catch {
    // Not ours, or damaged: the copy is made again and replaces it.
    return null;
  }
}

/** Writes a new file and flushes it. */
async function writeDurably(path: string, text: string): Promise<void> {
  const handle = await open(path, 'wx');
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Flushes a file's data to disk. */
async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The errno code of a failed file system call. */
function codeOf(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Removes the leftovers of copies cut short by a crash (`.incoming-*`, `.replaced-*`) from
 * `handlerRoot`; returns how many. Call at start-up, before any copy runs.
 */
export async function cleanHandlerIncoming(handlerRoot: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(handlerRoot);
  } catch (error) {
    if (codeOf(error) === 'ENOENT') return 0;
    throw error;
  }
  const leftovers = names.filter(
    (name) => name.startsWith(INCOMING_PREFIX) || name.startsWith(REPLACED_PREFIX),
  );
  for (const name of leftovers) await rm(join(handlerRoot, name), { recursive: true, force: true });
  return leftovers.length;
}
