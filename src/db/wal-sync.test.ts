/**
 * WalSync: the write-ahead log is fsynced on the thread pool, one fsync for every caller that
 * came while another ran, never on a log that was removed; nothing to do without a log.
 */

import type { fsync as fsyncType } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

/** Every fsync made: its descriptor's link count then (0: a removed file). */
const syncs: { nlink: number }[] = [];
/** How long each fsync takes (to make callers overlap). */
let syncDelayMs = 0;

vi.mock('node:fs', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:fs')>();
  const fsync = ((fd: number, callback: (error: NodeJS.ErrnoException | null) => void) => {
    syncs.push({ nlink: original.fstatSync(fd).nlink });
    setTimeout(() => original.fsync(fd, callback), syncDelayMs);
  }) as typeof fsyncType;
  return { ...original, fsync, default: { ...original, fsync } };
});

const { WalSync } = await import('./wal-sync.js');

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wal-sync-'));
  syncs.length = 0;
  syncDelayMs = 0;
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A SQLite database in WAL mode with NORMAL syncing, and one commit made. */
function databaseWithCommit(file: string): Database.Database {
  const database = new Database(file);
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.exec('create table if not exists t (v integer)');
  database.prepare('insert into t (v) values (1)').run();
  return database;
}

describe('WalSync', () => {
  it('does nothing while there is no log', async () => {
    const sync = new WalSync(join(dir, 'none.sqlite'));
    await sync.sync();
    expect(syncs).toEqual([]);
    await sync.close();
  });

  it('fsyncs the log once per call when calls do not overlap', async () => {
    const file = join(dir, 'db.sqlite');
    const database = databaseWithCommit(file);
    const sync = new WalSync(file);
    await sync.sync();
    database.prepare('insert into t (v) values (2)').run();
    await sync.sync();
    expect(syncs).toHaveLength(2);
    expect(syncs.every((s) => s.nlink === 1)).toBe(true);
    await sync.close();
    database.close();
  });

  it('serves every caller that came while an fsync ran with one more fsync, started after it', async () => {
    const file = join(dir, 'db.sqlite');
    const database = databaseWithCommit(file);
    const sync = new WalSync(file);
    syncDelayMs = 50;
    const first = sync.sync();
    // Commits made while the first fsync runs: it may not cover them, the next one must.
    const resolved: number[] = [];
    const later = Array.from({ length: 5 }, (_, i) => {
      database.prepare('insert into t (v) values (?)').run(i);
      return sync.sync().then(() => resolved.push(i));
    });
    await first;
    // The next fsync starts once the first ended; its callers wait for it to end.
    await vi.waitFor(() => expect(syncs).toHaveLength(2));
    expect(resolved).toEqual([]);
    await Promise.all(later);
    expect(syncs).toHaveLength(2);
    expect(resolved).toHaveLength(5);
    await sync.close();
    database.close();
  });

  it('opens the log again once SQLite removed it and made a new one', async () => {
    const file = join(dir, 'db.sqlite');
    const first = databaseWithCommit(file);
    const sync = new WalSync(file);
    await sync.sync();
    // The last connection closing removes the log; a new one makes another.
    first.close();
    const second = databaseWithCommit(file);
    await sync.sync();
    expect(syncs).toHaveLength(2);
    expect(syncs.map((s) => s.nlink)).toEqual([1, 1]);
    await sync.close();
    second.close();
  });

  it('syncs in the background once a second while switched on', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const file = join(dir, 'db.sqlite');
      const database = databaseWithCommit(file);
      const sync = new WalSync(file);
      sync.setBackground(true);
      vi.advanceTimersByTime(1_000);
      await vi.waitFor(() => expect(syncs).toHaveLength(1));
      sync.setBackground(false);
      vi.advanceTimersByTime(5_000);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(syncs).toHaveLength(1);
      await sync.close();
      database.close();
    } finally {
      vi.useRealTimers();
    }
  });
});
