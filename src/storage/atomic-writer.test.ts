/**
 * The atomic, durable writer: a committed file holds every byte under its final name and no
 * temporary file stays; an existing file is never overwritten unless replacing is asked for
 * (the next free name is taken instead); an abort, a failed commit or a failed write leaves
 * nothing. Each test runs in both durabilities. The writer keeps no reference to a chunk once
 * `write` returns (the caller overwrites it), and its buffers are pooled across writers.
 *
 * Layer: storage (unit, on a temporary directory).
 */

import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type CommandRun, runCommand } from '../../test/helpers/command.js';
import {
  AtomicWriter,
  type Durability,
  KnownDirectories,
  makeDirectories,
  SpareTempFiles,
  TEMP_SUFFIX,
} from './atomic-writer.js';
import { withCollisionSuffix } from './layout.js';

const DURABILITIES: readonly Durability[] = ['fsync', 'os'];

let dir: string;
let incoming: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'atomic-writer-test-'));
  incoming = join(dir, '.incoming');
  await mkdir(incoming);
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** `<dir>/<folder>/<name>`, `<name>_1.dcm`, ... for attempt 0, 1, ... */
function pathsIn(folder: string, name = 'instance.dcm'): (attempt: number) => string {
  return (attempt) => join(dir, folder, withCollisionSuffix(name, attempt));
}

/** Writes `bytes` in chunks, honouring backpressure. */
async function writeAll(writer: AtomicWriter, bytes: Buffer, chunkSize = 7_919): Promise<void> {
  for (let offset = 0; offset < bytes.length; offset += chunkSize) {
    if (!writer.write(bytes.subarray(offset, offset + chunkSize))) await writer.drained();
  }
}

/**
 * Writes `bytes` as the receive path does: each chunk copied into one reused buffer, written,
 * then overwritten with zeros as soon as `write` returns; chunk sizes taken from `sizes` in turn.
 */
async function writeTransient(
  writer: AtomicWriter,
  bytes: Buffer,
  sizes: readonly number[],
): Promise<void> {
  const scratch = Buffer.alloc(Math.max(...sizes));
  for (let start = 0, turn = 0; start < bytes.length; turn++) {
    const size = Math.min(sizes[turn % sizes.length]!, bytes.length - start);
    const chunk = scratch.subarray(0, size);
    bytes.copy(chunk, 0, start, start + size);
    const canTakeMore = writer.write(chunk);
    chunk.fill(0);
    if (!canTakeMore) await writer.drained();
    start += size;
  }
}

/** Every file under `root`, relative, sorted. */
async function filesUnder(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(root.length + 1))
    .sort();
}

/** Each durability, with chunks gathered in buffers or written directly (writeDirectly). */
const MODES = DURABILITIES.flatMap((durability) =>
  (['buffered', 'direct'] as const).map((mode) => [durability, mode] as const),
);

describe.each(MODES)('AtomicWriter with %s durability, %s', (durability, mode) => {
  /** A new writer in this mode. */
  async function open(): Promise<AtomicWriter> {
    const writer = await AtomicWriter.create(incoming);
    if (mode === 'direct') writer.writeDirectly();
    return writer;
  }

  it('writes to a temporary file in the incoming folder until commit', async () => {
    const writer = await open();
    writer.write(Buffer.from('partial'));
    await writer.drained();
    expect(dirname(writer.tempPath)).toBe(incoming);
    expect(writer.tempPath.endsWith(TEMP_SUFFIX)).toBe(true);
    expect(await filesUnder(dir)).toEqual([
      join('.incoming', writer.tempPath.slice(incoming.length + 1)),
    ]);
    await writer.abort();
  });

  it('commits the complete bytes under the final name and removes the temporary file', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    const writer = await open();
    await writeAll(writer, bytes, 65_537);
    expect(writer.bytesWritten).toBe(bytes.length);
    const finalPath = await writer.commit(pathsIn('a/b/c'), durability);
    expect(finalPath).toBe(join(dir, 'a', 'b', 'c', 'instance.dcm'));
    expect((await readFile(finalPath)).equals(bytes)).toBe(true);
    expect(await readdir(incoming)).toEqual([]);
    expect(await filesUnder(dir)).toEqual([join('a', 'b', 'c', 'instance.dcm')]);
  });

  it('commits an empty file', async () => {
    const writer = await open();
    const finalPath = await writer.commit(pathsIn('empty'), durability);
    expect((await stat(finalPath)).size).toBe(0);
    expect(await readdir(incoming)).toEqual([]);
  });

  it('never overwrites an existing file: it takes the next collision-suffixed name', async () => {
    const first = Buffer.from('first file, must stay');
    const second = Buffer.from('second file, must stay too');
    const third = randomBytes(10_000);
    await mkdir(join(dir, 'series'));
    await writeFile(join(dir, 'series', 'instance.dcm'), first);
    await writeFile(join(dir, 'series', 'instance_1.dcm'), second);
    const writer = await open();
    await writeAll(writer, third);
    const finalPath = await writer.commit(pathsIn('series'), durability);
    expect(finalPath).toBe(join(dir, 'series', 'instance_2.dcm'));
    expect((await readFile(join(dir, 'series', 'instance.dcm'))).equals(first)).toBe(true);
    expect((await readFile(join(dir, 'series', 'instance_1.dcm'))).equals(second)).toBe(true);
    expect((await readFile(finalPath)).equals(third)).toBe(true);
    expect(await readdir(incoming)).toEqual([]);
  });

  it('gives each of several writers committing to one name its own file', async () => {
    const contents = Array.from({ length: 8 }, () => randomBytes(20_000));
    const writers = await Promise.all(contents.map(() => AtomicWriter.create(incoming)));
    await Promise.all(writers.map((writer, i) => writeAll(writer, contents[i]!)));
    const paths = await Promise.all(
      writers.map((writer) => writer.commit(pathsIn('same'), durability)),
    );
    expect(new Set(paths).size).toBe(contents.length);
    for (const [i, path] of paths.entries()) {
      expect((await readFile(path)).equals(contents[i]!)).toBe(true);
    }
    expect(await readdir(incoming)).toEqual([]);
  });

  it('replaces the file under the first name when asked to', async () => {
    await mkdir(join(dir, 'series'));
    await writeFile(join(dir, 'series', 'instance.dcm'), Buffer.from('old bytes'));
    const fresh = randomBytes(5_000);
    const writer = await open();
    await writeAll(writer, fresh);
    const finalPath = await writer.commit(pathsIn('series'), durability, true);
    expect(finalPath).toBe(join(dir, 'series', 'instance.dcm'));
    expect((await readFile(finalPath)).equals(fresh)).toBe(true);
    expect(await filesUnder(dir)).toEqual([join('series', 'instance.dcm')]);
  });

  it('leaves nothing when aborted, and abort may be called again', async () => {
    const writer = await open();
    await writeAll(writer, randomBytes(200_000));
    await writer.abort();
    await writer.abort();
    expect(await filesUnder(dir)).toEqual([]);
  });

  it('leaves the committed file alone when aborted after commit', async () => {
    const bytes = randomBytes(1_000);
    const writer = await open();
    await writeAll(writer, bytes);
    const finalPath = await writer.commit(pathsIn('kept'), durability);
    await writer.abort();
    expect((await readFile(finalPath)).equals(bytes)).toBe(true);
  });

  it('keeps none of a chunk once write returns: the caller may overwrite it at once', async () => {
    const bytes = randomBytes(2 * 1024 * 1024 + 333);
    const writer = await open();
    await writeTransient(writer, bytes, [132, 1, 7, 4_096, 65_537, 300_000, 16_384]);
    expect(writer.bytesWritten).toBe(bytes.length);
    const finalPath = await writer.commit(pathsIn('transient'), durability);
    expect((await readFile(finalPath)).equals(bytes)).toBe(true);
  });

  it('splits a chunk larger than its buffers over several', async () => {
    const head = randomBytes(132);
    const body = randomBytes(1024 * 1024 + 7);
    const writer = await open();
    await writeTransient(writer, head, [head.length]);
    await writeTransient(writer, body, [body.length]);
    expect(writer.bytesWritten).toBe(head.length + body.length);
    const finalPath = await writer.commit(pathsIn('large'), durability);
    expect((await readFile(finalPath)).equals(Buffer.concat([head, body]))).toBe(true);
  });

  it('gathers many small chunks into one file', async () => {
    const bytes = randomBytes(700_000);
    const writer = await open();
    await writeTransient(writer, bytes, [1, 2, 3, 5, 8, 13, 21, 34]);
    const finalPath = await writer.commit(pathsIn('small'), durability);
    expect((await readFile(finalPath)).equals(bytes)).toBe(true);
  });

  it('asks the caller to wait during a large stream, and drained resolves', async () => {
    const bytes = randomBytes(8 * 1024 * 1024);
    const writer = await open();
    let waits = 0;
    for (let offset = 0; offset < bytes.length; offset += 128 * 1024) {
      if (writer.write(bytes.subarray(offset, offset + 128 * 1024))) continue;
      waits += 1;
      await writer.drained();
    }
    // Written directly, each chunk is in the file when write returns: nothing to wait for.
    if (mode === 'direct') expect(waits).toBe(0);
    else expect(waits).toBeGreaterThan(0);
    const finalPath = await writer.commit(pathsIn('stream'), durability);
    expect((await readFile(finalPath)).equals(bytes)).toBe(true);
  });

  it('leaves nothing when aborted with writes in flight, and the next writer is whole', async () => {
    const writer = await open();
    writer.write(randomBytes(3 * 1024 * 1024 + 5));
    await writer.abort();
    expect(await filesUnder(dir)).toEqual([]);
    // The aborted writer's buffers went back to the pool only once unused: no other writer's
    // bytes can have been overwritten by them.
    const bytes = randomBytes(1024 * 1024 + 99);
    const next = await open();
    await writeTransient(next, bytes, [50_000]);
    const finalPath = await next.commit(pathsIn('after-abort'), durability);
    expect((await readFile(finalPath)).equals(bytes)).toBe(true);
  });

  it('leaves nothing when the final folder cannot be made and the commit is aborted', async () => {
    await writeFile(join(dir, 'blocker'), 'a file where a folder should be');
    const writer = await open();
    await writeAll(writer, randomBytes(1_000));
    await expect(writer.commit(pathsIn('blocker/sub'), durability)).rejects.toMatchObject({
      code: expect.stringMatching(/^(ENOTDIR|EEXIST)$/),
    });
    await writer.abort();
    expect(await filesUnder(dir)).toEqual(['blocker']);
  });

  it('stays in its mode when told to write directly after its first byte', async () => {
    const bytes = randomBytes(900_000);
    const writer = await open();
    await writeTransient(writer, bytes.subarray(0, 100), [100]);
    writer.writeDirectly();
    await writeTransient(writer, bytes.subarray(100), [70_000, 3]);
    const finalPath = await writer.commit(pathsIn('switched'), durability);
    expect((await readFile(finalPath)).equals(bytes)).toBe(true);
  });
});

describe('AtomicWriter buffers', () => {
  it('are reused: a writer after a committed one allocates none', async () => {
    const bytes = randomBytes(600 * 1024);
    const first = await AtomicWriter.create(incoming);
    await writeTransient(first, bytes, [64 * 1024]);
    await first.commit(pathsIn('first'), 'os');
    const allocate = vi.spyOn(Buffer, 'allocUnsafeSlow');
    try {
      const second = await AtomicWriter.create(incoming);
      await writeTransient(second, bytes, [64 * 1024]);
      const finalPath = await second.commit(pathsIn('second'), 'os');
      expect((await readFile(finalPath)).equals(bytes)).toBe(true);
      expect(allocate.mock.calls.filter(([size]) => size === 256 * 1024)).toEqual([]);
    } finally {
      allocate.mockRestore();
    }
  });
});

describe('makeDirectories', () => {
  it.each(DURABILITIES)('creates missing parents (%s)', async (durability) => {
    const deep = join(dir, 'x', 'y', 'z');
    await makeDirectories(deep, durability);
    expect((await stat(deep)).isDirectory()).toBe(true);
    await makeDirectories(deep, durability);
    expect((await stat(deep)).isDirectory()).toBe(true);
  });
});

describe('KnownDirectories.sync', () => {
  it('flushes a folder for many callers at once, and again for later ones', async () => {
    const directories = new KnownDirectories();
    const folder = join(dir, 'series');
    await mkdir(folder);
    await Promise.all(Array.from({ length: 20 }, () => directories.sync(folder)));
    await directories.sync(folder);
  });

  it('rejects the callers of a folder that is gone, and flushes it once it is back', async () => {
    const directories = new KnownDirectories();
    const folder = join(dir, 'gone');
    const failures = await Promise.allSettled([directories.sync(folder), directories.sync(folder)]);
    for (const failure of failures) {
      expect(failure).toMatchObject({ status: 'rejected', reason: { code: 'ENOENT' } });
    }
    await mkdir(folder);
    await expect(directories.sync(folder)).resolves.toBeUndefined();
  });
});

/**
 * A child process whose file size limit (RLIMIT_FSIZE, with SIGXFSZ ignored) makes writes past
 * `limitKiB` fail with EFBIG, as a full disk fails them with ENOSPC: writes 1 MiB through an
 * AtomicWriter, then commits, and prints what happened.
 */
const WRITE_FAILURE_SCRIPT = `
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
const { AtomicWriter } = await import(process.argv[2]);
const [incoming, finalDir, durability] = process.argv.slice(3);
const writer = await AtomicWriter.create(incoming);
if (process.argv[6] === 'direct') writer.writeDirectly();
for (let i = 0; i < 16; i++) {
  if (!writer.write(Buffer.alloc(64 * 1024, i))) await writer.drained();
}
let outcome;
try {
  await writer.commit((attempt) => join(finalDir, 'instance_' + attempt + '.dcm'), durability);
  outcome = { committed: true };
} catch (error) {
  outcome = { committed: false, code: error.code };
}
await writer.abort();
outcome.incoming = await readdir(incoming);
console.log(JSON.stringify(outcome));
`;

/** Runs `script` with tsx under bash's `ulimit -f` of `limitKiB` (SIGXFSZ ignored: EFBIG instead). */
function runWithFileSizeLimit(
  script: string,
  args: readonly string[],
  limitKiB: number,
): Promise<CommandRun> {
  const quoted = args.map((arg) => `'${arg.replace(/'/g, "'\\''")}'`).join(' ');
  const command = `trap '' XFSZ; ulimit -f ${limitKiB}; exec node --import tsx '${script}' ${quoted}`;
  return runCommand('bash', ['-c', command], { cwd: process.cwd(), timeoutMs: 20_000 });
}

describe.each(MODES)('a failed write (%s durability, %s)', (durability, mode) => {
  it('fails the commit and leaves no file, neither final nor temporary', async () => {
    const script = join(dir, 'write-failure.mts');
    await writeFile(script, WRITE_FAILURE_SCRIPT);
    const finalDir = join(dir, 'final');
    const module = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), 'atomic-writer.ts'));
    const run = await runWithFileSizeLimit(
      script,
      [module.href, incoming, finalDir, durability, mode],
      256,
    );
    expect(run.exitCode, run.stderr).toBe(0);
    const outcome = JSON.parse(run.stdout) as {
      committed: boolean;
      code?: string;
      incoming: string[];
    };
    expect(outcome).toEqual({ committed: false, code: 'EFBIG', incoming: [] });
    expect(await filesUnder(dir)).toEqual(['write-failure.mts']);
  });
});

describe('SpareTempFiles', () => {
  async function slots(n: number): Promise<string[]> {
    const folders = Array.from({ length: n }, (_, i) => join(incoming, String(i)));
    for (const folder of folders) await mkdir(folder);
    return folders;
  }

  async function spareCount(spares: SpareTempFiles, count: number): Promise<void> {
    for (let i = 0; i < 200 && spares.readyPaths.length < count; i++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(spares.readyPaths).toHaveLength(count);
  }

  it('hands out files opened ahead, spread over the folders, and opens more behind them', async () => {
    const folders = await slots(3);
    const spares = new SpareTempFiles(folders, 2);
    const first = await spares.take();
    await spareCount(spares, 2);
    const ready = spares.readyPaths;
    const second = await spares.take();
    expect(second.tempPath).toBe(ready[0]);
    await spareCount(spares, 2);
    const used = [first.tempPath, second.tempPath, ...spares.readyPaths];
    expect(new Set(used).size).toBe(4);
    expect(new Set(used.map((path) => dirname(path))).size).toBe(3);
    second.write(Buffer.from('received'));
    const path = await second.commit(pathsIn('series'), 'os');
    expect(await readFile(path, 'utf8')).toBe('received');
    await first.abort();
    await spares.close();
    expect(spares.readyPaths).toEqual([]);
    expect(await filesUnder(incoming)).toEqual([]);
  });

  it('hands out a ready spare at once with takeReady, and none when none is ready', async () => {
    const spares = new SpareTempFiles(await slots(2), 1);
    expect(spares.takeReady()).toBeUndefined();
    const opened = await spares.take();
    await spareCount(spares, 1);
    const ready = spares.readyPaths[0];
    const taken = spares.takeReady();
    expect(taken?.tempPath).toBe(ready);
    // Taking one opens the next behind it.
    await spareCount(spares, 1);
    expect(spares.readyPaths[0]).not.toBe(ready);
    await opened.abort();
    await taken?.abort();
    await spares.close();
    expect(await filesUnder(incoming)).toEqual([]);
  });

  it('opens a file on demand once closed, and keeps no spare', async () => {
    const spares = new SpareTempFiles(await slots(1), 2);
    await spares.close();
    const writer = await spares.take();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(spares.readyPaths).toEqual([]);
    expect(await filesUnder(incoming)).toHaveLength(1);
    await writer.abort();
    expect(await filesUnder(incoming)).toEqual([]);
  });
});
