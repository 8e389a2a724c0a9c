/**
 * The InstanceStore the C-STORE handler writes to, made of the storage layer (layout, atomic
 * writer, quota) and the index: a received instance goes to a temporary file in the incoming
 * folder, then, on commit, is checked against the quota, made durable under its final name
 * and indexed, in that order.
 *
 * Layer: server (the composition of storage and db for services).
 */

import {
  open as openFile,
  readdir,
  readFile,
  rename,
  rm,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { IndexRepository, InstanceRecord } from '../db/repositories/index-repository.js';
import { buildFileMeta } from '../dicom/part10.js';
import { DicomServerError } from '../errors.js';
import type {
  DuplicatePolicy,
  IncomingInstance,
  InstanceAttributes,
  InstanceFile,
  InstanceStore,
} from '../services/ports.js';
import {
  type AtomicWriter,
  type Durability,
  KnownDirectories,
  makeDirectories,
  SpareTempFiles,
  syncDirectory,
  TEMP_SUFFIX,
} from '../storage/atomic-writer.js';
import type { RemovedStudy, StudyCleanupReport } from '../storage/cleanup.js';
import {
  checkedUid,
  type FileNaming,
  fileNameFor,
  folderFor,
  relativeInside,
  resolveInside,
  type StorageStructure,
  withCollisionSuffix,
} from '../storage/layout.js';
import { StorageQuota } from '../storage/quota.js';
import { IndexBatcher } from './index-batcher.js';
import { reconcileRecentFiles } from './reconcile.js';
import type { ReceivedInstance } from './series-completion.js';
import { type CleanupReason, NOTHING_CLEANED, StudyCleaner } from './storage-cleanup.js';

/** The store's state file, in the incoming folder: when it started, whether it stopped cleanly. */
const STATE_FILE = 'state.json';

interface StoreState {
  readonly isCleanShutdown: boolean;
  readonly startedAt: number;
}

async function readState(options: StorageOptions): Promise<StoreState | undefined> {
  try {
    return JSON.parse(
      await readFile(join(options.root, INCOMING_FOLDER, STATE_FILE), 'utf8'),
    ) as StoreState;
  } catch {
    return undefined;
  }
}

/** Writes the state file atomically (and durably, with `fsync`). */
async function writeState(options: StorageOptions, state: StoreState): Promise<void> {
  const folder = join(options.root, INCOMING_FOLDER);
  const temp = join(folder, `${STATE_FILE}.${process.pid}.tmp`);
  await writeFile(temp, JSON.stringify(state));
  if (options.durability === 'fsync') {
    const handle = await openFile(temp, 'r');
    await handle.sync();
    await handle.close();
  }
  await rename(temp, join(folder, STATE_FILE));
  if (options.durability === 'fsync') await syncDirectory(folder);
}

/**
 * After an unclean stop, files written since the previous start are checked against the index
 * (see reconcile.ts); then this start is recorded as not yet cleanly stopped.
 */
async function reconcileAfterCrash(
  options: StorageOptions,
  index: IndexRepository,
  logger: Logger,
): Promise<void> {
  const previous = await readState(options);
  const startedAt = Date.now();
  if (previous !== undefined && !previous.isCleanShutdown) {
    // A minute of slack for clocks and for files written just before the previous start.
    const report = await reconcileRecentFiles(
      options.root,
      previous.startedAt - 60_000,
      index,
      logger,
    );
    logger.info(
      { ...report },
      'checked the files written before an unclean stop against the index',
    );
  }
  await writeState(options, { isCleanShutdown: false, startedAt });
}

/** What a commit did. */
type CommitResult = Awaited<ReturnType<InstanceFile['commit']>>;

/** Folder under the storage root for files still being received. */
export const INCOMING_FOLDER = '.incoming';

/** Sub-folders of the incoming folder that temporary files are spread over (see SpareTempFiles). */
export const INCOMING_SLOTS = ['0', '1', '2', '3'] as const;

/** Storage settings. */
export interface StorageOptions {
  readonly root: string;
  readonly structure: StorageStructure;
  readonly naming: FileNaming;
  /** 0 means no limit. */
  readonly maxStorageBytes: number;
  readonly durability: Durability;
  readonly duplicatePolicy: DuplicatePolicy;
  /**
   * When set, an instance that would pass the limit first makes room: the oldest whole
   * studies received more than `retentionDays` ago, whose hand-off is done, are removed
   * (index rows, then files; see storage-cleanup.ts). `cleanUp` does the same down to a mark.
   */
  readonly cleanup?: {
    readonly retentionDays: number;
    /** Told of each removed study (the audit log). */
    readonly onStudyRemoved?: (study: RemovedStudy, reason: CleanupReason) => Promise<void>;
    /** Told when an instance found the storage at its limit (the job runs sooner). */
    readonly onLimitReached?: () => void;
  };
  /**
   * Told of each instance as it is about to be indexed (series completion). A promise when the
   * instance must wait (its series' state being stored): a rejection fails the instance.
   */
  readonly onInstance?: (instance: ReceivedInstance) => Promise<void> | undefined;
  /**
   * Told of each instance once it is stored and indexed, before its success is answered (the
   * forwarding rules). A promise when the instance must wait; a rejection is logged, the
   * instance stays stored.
   */
  readonly onIndexed?: (record: InstanceRecord) => Promise<void> | undefined;
  /**
   * Asked as an instance's file is started: true when it is the only instance likely to arrive
   * now (one association), so that the file is written synchronously, chunk by chunk, rather
   * than through the thread pool (see AtomicWriter.writeDirectly). Unset: never.
   */
  readonly isAlone?: () => boolean;
}

/** Received instances on disk, indexed. */
export class FileInstanceStore implements InstanceStore {
  readonly #options: StorageOptions;
  readonly #index: IndexRepository;
  readonly #batcher: IndexBatcher;
  #quota: StorageQuota;
  readonly #logger: Logger;
  readonly #incoming: string;
  readonly #directories = new KnownDirectories();
  readonly #spareFiles: SpareTempFiles;
  readonly #startedAt = Date.now();
  /** The last commit of each UID being committed, which the next one of that UID waits for. */
  readonly #committing = new Map<string, Promise<void>>();
  /** Removes old studies when cleanup is on (one cleanup at a time). */
  readonly #cleaner: StudyCleaner | undefined;

  private constructor(
    options: StorageOptions,
    index: IndexRepository,
    usedBytes: number,
    logger: Logger,
  ) {
    this.#options = options;
    this.#index = index;
    this.#batcher = new IndexBatcher(index);
    this.#quota = new StorageQuota(options.maxStorageBytes, usedBytes);
    this.#logger = logger;
    this.#incoming = join(options.root, INCOMING_FOLDER);
    this.#spareFiles = new SpareTempFiles(INCOMING_SLOTS.map((slot) => join(this.#incoming, slot)));
    const cleanup = options.cleanup;
    this.#cleaner =
      cleanup === undefined
        ? undefined
        : new StudyCleaner({
            index,
            root: options.root,
            retentionDays: cleanup.retentionDays,
            logger,
            release: (bytes) => this.#quota.release(bytes),
            ...(cleanup.onStudyRemoved !== undefined && { onStudyRemoved: cleanup.onStudyRemoved }),
          });
  }

  /** Prepares the storage root: creates it, removes leftovers of interrupted receptions. */
  static async open(
    options: StorageOptions,
    index: IndexRepository,
    logger: Logger,
  ): Promise<FileInstanceStore> {
    const incoming = join(options.root, INCOMING_FOLDER);
    let removed = 0;
    for (const folder of [incoming, ...INCOMING_SLOTS.map((slot) => join(incoming, slot))]) {
      await makeDirectories(folder, options.durability);
      const leftovers = (await readdir(folder)).filter((name) => name.endsWith(TEMP_SUFFIX));
      for (const name of leftovers) await rm(join(folder, name), { force: true });
      removed += leftovers.length;
    }
    if (removed > 0)
      logger.info({ count: removed }, 'removed partial files of interrupted receptions');
    await reconcileAfterCrash(options, index, logger);
    const { bytes } = await index.totals();
    return new FileInstanceStore(options, index, bytes, logger);
  }

  /** Waits for commits in progress, then records a clean stop (the next start skips the crash check). */
  async close(): Promise<void> {
    await Promise.all([...this.#committing.values()]);
    await this.#spareFiles.close();
    await writeState(this.#options, { isCleanShutdown: true, startedAt: this.#startedAt });
  }

  get duplicatePolicy(): DuplicatePolicy {
    return this.#options.duplicatePolicy;
  }

  /**
   * Empty temporary files opened ahead for the next receptions (see SpareTempFiles), once none
   * is being opened.
   */
  async spareTempPaths(): Promise<string[]> {
    await this.#spareFiles.settled();
    return this.#spareFiles.readyPaths;
  }

  /** The storage limit in bytes; 0: none. */
  get limitBytes(): number {
    return this.#quota.limitBytes;
  }

  /** Bytes stored, as tracked incrementally. */
  get usedBytes(): number {
    return this.#quota.usedBytes;
  }

  async isStored(sopInstanceUid: string): Promise<boolean> {
    return (await this.#index.findInstance(sopInstanceUid)) !== undefined;
  }

  async hasRoom(): Promise<boolean> {
    // With cleanup on, room may be made when the instance is committed.
    return this.#quota.hasRoom() || this.#options.cleanup !== undefined;
  }

  async open(instance: IncomingInstance): Promise<InstanceFile> {
    return this.#fileOf(await this.#spareFiles.take(), instance);
  }

  openNow(instance: IncomingInstance): InstanceFile | undefined {
    const writer = this.#spareFiles.takeReady();
    return writer === undefined ? undefined : this.#fileOf(writer, instance);
  }

  /** The instance's file in `writer`, its file meta written. */
  #fileOf(writer: AtomicWriter, instance: IncomingInstance): InstanceFile {
    if (this.#options.isAlone?.() === true) writer.writeDirectly();
    writer.write(
      buildFileMeta({
        sopClassUid: instance.sopClassUid,
        sopInstanceUid: instance.sopInstanceUid,
        transferSyntaxUid: instance.transferSyntaxUid,
        sourceAeTitle: instance.callingAeTitle,
      }),
    );
    return {
      write: (chunk) => writer.write(chunk),
      drained: () => writer.drained(),
      abort: () => writer.abort(),
      commit: (attributes) => this.#commitInTurn(writer, instance, attributes),
    };
  }

  /**
   * Commits instances of one SOP Instance UID one after another, and checks again for a
   * duplicate in turn: the check made when a C-STORE starts cannot see the same UID stored by
   * another association while this one was receiving.
   */
  async #commitInTurn(
    writer: AtomicWriter,
    instance: IncomingInstance,
    attributes: InstanceAttributes,
  ): Promise<CommitResult> {
    const uid = instance.sopInstanceUid;
    const before = this.#committing.get(uid) ?? Promise.resolve();
    const turn = before.then(async (): Promise<CommitResult> => {
      const policy = this.#options.duplicatePolicy;
      if (policy !== 'overwrite' && (await this.isStored(uid))) {
        await writer.abort();
        if (policy === 'reject') {
          throw new DicomServerError('ERR_DUPLICATE_INSTANCE', 'SOP Instance UID already stored', {
            sopInstanceUid: uid,
          });
        }
        return { filePath: '', fileSize: 0, isDuplicateKept: true };
      }
      return this.#commit(writer, instance, attributes);
    });
    const settled = turn.then(
      () => undefined,
      () => undefined,
    );
    this.#committing.set(uid, settled);
    void settled.then(() => {
      if (this.#committing.get(uid) === settled) this.#committing.delete(uid);
    });
    return turn;
  }

  /**
   * Makes room for `bytes` by removing whole studies (see storage-cleanup.ts) until they fit;
   * true when they were reserved. The periodic job is then told, to bring usage down to its
   * low-water mark without holding up this instance.
   */
  async #makeRoom(bytes: number): Promise<boolean> {
    if (this.#cleaner === undefined) return false;
    const report = await this.#cleaner.run('limit', () => this.#quota.reserve(bytes));
    this.#options.cleanup?.onLimitReached?.();
    return report.isEnough;
  }

  /**
   * Removes the oldest studies past the retention period, whose hand-off is done, until usage
   * is at or under `targetBytes` (the periodic job's low-water mark) or `signal` aborts. Does
   * nothing when cleanup is off.
   */
  cleanUp(targetBytes: number, signal?: AbortSignal): Promise<StudyCleanupReport> {
    if (this.#cleaner === undefined) return Promise.resolve(NOTHING_CLEANED);
    return this.#cleaner.run(
      'low-water',
      () => this.#quota.usedBytes <= targetBytes || signal?.aborted === true,
    );
  }

  /**
   * Runs `work` when no cleanup runs, holding the next one back until it ends: a rescan
   * indexing a file it found must not race a cleanup removing it.
   */
  inCleanupTurn<T>(work: () => Promise<T>): Promise<T> {
    return this.#cleaner?.inTurn(work) ?? work();
  }

  /**
   * The index gained instances besides the receive path (a rescan indexed files it found):
   * they count as used, past the limit if need be (they are on disk already).
   */
  countIndexed(bytes: number): void {
    if (bytes > 0 && !this.#quota.reserve(bytes)) {
      this.#quota = new StorageQuota(this.#quota.limitBytes, this.#quota.usedBytes + bytes);
    }
  }

  /** Index rows whose file was gone were removed (a rescan): their bytes are free. */
  countRemoved(bytes: number): void {
    this.#quota.release(bytes);
  }

  /**
   * Removes a file the index no longer names. A failure leaves an orphan, not an error for the
   * peer: it is logged (without the path, which holds the patient ID) for the operator.
   */
  async #removeFile(path: string, sopInstanceUid: string): Promise<void> {
    try {
      await unlink(path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT')
        this.#logger.warn({ sopInstanceUid, code }, 'file could not be removed');
    }
  }

  async #commit(
    writer: AtomicWriter,
    instance: IncomingInstance,
    attributes: InstanceAttributes,
  ): Promise<CommitResult> {
    const studyInstanceUid = checkedUid(attributes.studyInstanceUid, 'Study Instance UID');
    const seriesInstanceUid = checkedUid(attributes.seriesInstanceUid, 'Series Instance UID');
    const sopInstanceUid = checkedUid(instance.sopInstanceUid, 'SOP Instance UID');
    const fileSize = writer.bytesWritten;
    if (!this.#quota.reserve(fileSize) && !(await this.#makeRoom(fileSize))) {
      this.#logger.warn(
        {
          sopInstanceUid,
          fileSize,
          usedBytes: this.#quota.usedBytes,
          limitBytes: this.#quota.limitBytes,
        },
        'instance refused: storage limit reached',
      );
      throw new DicomServerError('ERR_STORAGE_FULL', 'storage limit reached', { fileSize });
    }
    const previous =
      this.#options.duplicatePolicy === 'overwrite'
        ? await this.#index.findInstance(sopInstanceUid)
        : undefined;
    const receivedAt = new Date();
    const sequenceNumber =
      this.#options.naming === 'sequential'
        ? await this.#index.nextCounter('file_sequence')
        : undefined;
    const pathAttributes = {
      patientId: attributes.patientId ?? undefined,
      studyInstanceUid,
      seriesInstanceUid,
      sopInstanceUid,
      instanceNumber: attributes.instanceNumber ?? undefined,
      receivedAt,
      ...(sequenceNumber !== undefined && { sequenceNumber }),
    };
    const folder = folderFor(this.#options.structure, pathAttributes);
    const name = fileNameFor(this.#options.naming, pathAttributes);
    const relativeFor = (attempt: number) => join(...folder, withCollisionSuffix(name, attempt));
    const isReplacing = previous !== undefined && previous.filePath === relativeFor(0);
    let finalPath: string;
    let makeFolderDurable: () => Promise<void>;
    try {
      const placed = await writer.place(
        (attempt) => resolveInside(this.#options.root, relativeFor(attempt)),
        this.#options.durability,
        isReplacing,
        this.#directories,
      );
      finalPath = placed.path;
      makeFolderDurable = placed.makeDurable;
      if (previous !== undefined) {
        // An overwrite indexes only a durable file: its row then names the new file only.
        await makeFolderDurable();
        makeFolderDurable = () => Promise.resolve();
      }
    } catch (error) {
      this.#quota.release(fileSize);
      throw error;
    }
    const filePath = relativeInside(this.#options.root, finalPath);
    let record: InstanceRecord;
    try {
      // Nothing to wait for but on a series' first instance (see series-completion.ts).
      const tracked = this.#options.onInstance?.({
        seriesInstanceUid,
        studyInstanceUid,
        patientId: attributes.patientId ?? '',
        receivedAt,
      });
      if (tracked !== undefined) await tracked;
      record = {
        patientId: attributes.patientId ?? '',
        issuerOfPatientId: attributes.issuerOfPatientId ?? '',
        patientName: attributes.patientName,
        patientBirthDate: attributes.patientBirthDate,
        patientSex: attributes.patientSex,
        studyInstanceUid,
        studyDate: attributes.studyDate,
        studyTime: attributes.studyTime,
        accessionNumber: attributes.accessionNumber,
        studyId: attributes.studyId,
        studyDescription: attributes.studyDescription,
        referringPhysicianName: attributes.referringPhysicianName,
        patientAge: attributes.patientAge,
        seriesInstanceUid,
        modality: attributes.modality,
        seriesNumber: attributes.seriesNumber,
        seriesDescription: attributes.seriesDescription,
        bodyPartExamined: attributes.bodyPartExamined,
        seriesDate: attributes.seriesDate,
        seriesTime: attributes.seriesTime,
        protocolName: attributes.protocolName,
        sopInstanceUid,
        sopClassUid: instance.sopClassUid,
        instanceNumber: attributes.instanceNumber,
        transferSyntaxUid: instance.transferSyntaxUid,
        filePath,
        fileSize,
        callingAe: instance.callingAeTitle,
        receivedAt: receivedAt.toISOString(),
        ...(attributes.sequences !== undefined && { sequences: attributes.sequences }),
      };
      await this.#batcher.add(record);
    } catch (error) {
      // Not indexed: the file must not stay either (a success is only sent for both).
      if (!isReplacing) await this.#removeFile(finalPath, sopInstanceUid);
      this.#quota.release(fileSize);
      throw error;
    }
    if (previous !== undefined) {
      this.#quota.release(previous.fileSize);
      if (!isReplacing)
        await this.#removeFile(
          resolveInside(this.#options.root, previous.filePath),
          sopInstanceUid,
        );
    }
    await this.#follow(record);
    await this.#durable(record, makeFolderDurable);
    return { filePath, fileSize };
  }

  /**
   * Makes the instance durable: its folder's entry and the index's commits (its row and what its
   * hooks wrote), flushed side by side once everything is written, so that one journal commit of
   * the file system can carry both (a flush of the folder started before the index was written
   * made the index's flush wait for the next). A crash between the two is met at the next start
   * (see reconcile.ts: a row whose file is missing goes). When the folder could not be flushed,
   * the file is gone (AtomicWriter.place), and so goes its row: the sender is told of a failure
   * and may send it again.
   */
  async #durable(record: InstanceRecord, makeFolderDurable: () => Promise<void>): Promise<void> {
    const [folder, index] = await Promise.allSettled([makeFolderDurable(), this.#index.durable()]);
    if (folder.status === 'rejected') {
      await this.#index
        .removeInstances([record.sopInstanceUid])
        .catch((error: unknown) =>
          this.#logger.error(
            { err: error, sopInstanceUid: record.sopInstanceUid },
            'row of a file that could not be made durable not removed',
          ),
        );
      this.#quota.release(record.fileSize);
      throw folder.reason;
    }
    if (index.status === 'rejected') throw index.reason;
  }

  /**
   * Tells `onIndexed` of a stored and indexed instance and waits for what it writes (a
   * forwarding rule's queue entry) before the success is answered. The instance is stored
   * whatever happens there: a failure is logged, not turned into a failure status that would
   * make the sender resend what is already kept.
   */
  async #follow(record: InstanceRecord): Promise<void> {
    try {
      await this.#options.onIndexed?.(record);
    } catch (error) {
      this.#logger.error(
        { err: error, sopInstanceUid: record.sopInstanceUid },
        'stored instance not passed on after indexing',
      );
    }
  }
}
