/**
 * Storage cleanup: whole studies go, oldest first (by their newest instance's reception),
 * never one received within the retention period, until the caller has enough room. The
 * index says which studies may go and removes their rows first (through the small
 * `StudyCleanupIndex` shape, so that the index never points at a file that is gone); then
 * their files go here, with the folders they leave empty. Used by the instance store when an
 * instance would pass the limit and by the periodic job that brings usage down to the
 * low-water mark (server/storage-lifecycle.ts).
 *
 * Layer: storage. Must not import db, server or web: the index is the shape below.
 */

import { rmdir, unlink } from 'node:fs/promises';
import { dirname, relative, sep } from 'node:path';
import { resolveInside } from './layout.js';

const DAY_MS = 86_400_000;
/** Studies read from the index at a time. */
const CANDIDATE_BATCH = 50;

/** A study the index offers for removal: older than the cutoff, its hand-off done. */
export interface CleanupCandidate {
  readonly studyInstanceUid: string;
  /** ISO time of its newest instance's reception. */
  readonly newestReceivedAt: string;
  readonly sizeBytes: number;
  readonly instanceCount: number;
}

/** A file of a removed study, relative to the storage root. */
export interface RemovedFile {
  readonly sopInstanceUid: string;
  readonly filePath: string;
  readonly fileSize: number;
}

/** A study whose index rows are gone. */
export interface RemovedStudy {
  readonly studyInstanceUid: string;
  readonly newestReceivedAt: string;
  readonly sizeBytes: number;
  readonly files: readonly RemovedFile[];
}

/** What the cleanup needs of the index. */
export interface StudyCleanupIndex {
  /**
   * Studies whose newest instance was received before `before` (ISO time) and none of whose
   * series is still receiving or has a hand-off not done, oldest first, at most `limit`.
   */
  cleanupCandidates(before: string, limit: number): Promise<readonly CleanupCandidate[]>;
  /**
   * Removes a study's rows, checking again in the same transaction that it still qualifies;
   * what was removed, or undefined when it no longer qualifies (or is gone).
   */
  removeStudy(studyInstanceUid: string, before: string): Promise<RemovedStudy | undefined>;
}

/** A file that could not be removed (an orphan now: the index no longer names it). */
export interface FileNotRemoved {
  readonly sopInstanceUid: string;
  readonly filePath: string;
  readonly code: string;
}

/** What a cleanup did. */
export interface StudyCleanupReport {
  /** The caller's condition held at the end (room made, usage down to the mark). */
  readonly isEnough: boolean;
  readonly studies: number;
  readonly instances: number;
  readonly freedBytes: number;
  readonly filesNotRemoved: readonly FileNotRemoved[];
}

/** What a cleanup runs with. */
export interface StudyCleanupOptions {
  readonly index: StudyCleanupIndex;
  readonly root: string;
  readonly retentionDays: number;
  /** ms since the epoch. */
  readonly now: number;
  /**
   * Asked at the start and once after each removal: true ends the cleanup (it may take the
   * room it asked for, as the store's reservation does).
   */
  readonly isEnough: () => boolean;
  /** Told of each removed study once its files are gone (quota, audit log). */
  readonly onRemoved?: (study: RemovedStudy) => Promise<void> | void;
}

/** The ISO time before which a study's newest instance must have been received to go. */
export function retentionCutoff(nowMs: number, retentionDays: number): string {
  return new Date(nowMs - retentionDays * DAY_MS).toISOString();
}

/** Usage the periodic cleanup brings storage down to; undefined without a limit. */
export function lowWaterBytes(limitBytes: number, percent: number): number | undefined {
  if (limitBytes <= 0) return undefined;
  return Math.floor((limitBytes * percent) / 100);
}

/**
 * Removes the oldest studies older than the retention period, one at a time, until
 * `isEnough` holds or none is left: each study's index rows first, then its files.
 */
export async function removeOldStudies(options: StudyCleanupOptions): Promise<StudyCleanupReport> {
  const before = retentionCutoff(options.now, options.retentionDays);
  let studies = 0;
  let instances = 0;
  let freedBytes = 0;
  const filesNotRemoved: FileNotRemoved[] = [];
  // Studies the index offered but would not remove (held meanwhile): not offered again here.
  const skipped = new Set<string>();
  const report = (isEnough: boolean) => ({
    isEnough,
    studies,
    instances,
    freedBytes,
    filesNotRemoved,
  });
  // isEnough may take what it checks for (a reservation): asked at the start, then once after
  // each removal.
  let isEnough = options.isEnough();
  while (!isEnough) {
    const candidates = (await options.index.cleanupCandidates(before, CANDIDATE_BATCH)).filter(
      (candidate) => !skipped.has(candidate.studyInstanceUid),
    );
    if (candidates.length === 0) return report(false);
    for (const candidate of candidates) {
      const removed = await options.index.removeStudy(candidate.studyInstanceUid, before);
      if (removed === undefined) {
        skipped.add(candidate.studyInstanceUid);
        continue;
      }
      filesNotRemoved.push(...(await removeStudyFiles(options.root, removed.files)));
      studies += 1;
      instances += removed.files.length;
      freedBytes += removed.sizeBytes;
      await options.onRemoved?.(removed);
      isEnough = options.isEnough();
      if (isEnough) break;
    }
  }
  return report(true);
}

/**
 * Removes the files of a study the index no longer names, then the folders they leave empty
 * (never the root). A file already gone is fine; one that cannot be removed is returned.
 */
export async function removeStudyFiles(
  root: string,
  files: readonly RemovedFile[],
): Promise<FileNotRemoved[]> {
  const failures: FileNotRemoved[] = [];
  const folders = new Set<string>();
  for (const file of files) {
    try {
      const path = resolveInside(root, file.filePath);
      folders.add(dirname(path));
      await unlink(path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'ERR_PATH';
      if (code !== 'ENOENT') {
        failures.push({ sopInstanceUid: file.sopInstanceUid, filePath: file.filePath, code });
      }
    }
  }
  // Deepest first, so that a parent is tried once its children are gone.
  const ordered = [...folders].sort((a, b) => b.length - a.length);
  for (const folder of ordered) await removeEmptyFolders(root, folder);
  return failures;
}

/**
 * Removes `folder` and its parents below `root` while they are empty. rmdir fails on a folder
 * that is not empty, so a file a store is putting there meanwhile is never lost (the atomic
 * writer makes its folder again when the rename finds it gone).
 */
async function removeEmptyFolders(root: string, folder: string): Promise<void> {
  let current = folder;
  for (;;) {
    const below = relative(root, current);
    if (below === '' || below.startsWith('..') || below.split(sep)[0]?.startsWith('.')) return;
    try {
      await rmdir(current);
    } catch {
      // Not empty (or gone, or not ours to remove): its parents stay too.
      return;
    }
    current = dirname(current);
  }
}
