/**
 * The receive benchmark (issue: receive and store): the same synthetic data sent by DCMTK's
 * storescu to our server and to DCMTK's `storescp --fork +B` (bit-preserving, writing to disk),
 * over one association and over four in parallel, for both durability settings; images/s, MB/s
 * and server peak RSS side by side with the our/DCMTK ratio.
 *
 * Each row is measured REPEATS times, DCMTK and our variants taking turns, and the medians are
 * compared: one run of 400 CT images takes well under a second here, and single runs of the same
 * server varied by a third.
 *
 * What the servers wrote is removed only at the end, never between rows. On ext4 without a
 * journal (these machines), creating a file scans past every inode deleted in the last half
 * minute or so (`recently_deleted` in the kernel's inode allocator): deleting a row's 2,000
 * files cut the next row's storescp from 11,000 to 3,300 small instances/s, whichever server
 * that row measured.
 */

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startDicomServer, TOOL_ENV, waitForPort } from './processes.js';
import { writeCtSeries, writeLargeInstance, writeSmallInstances } from './synthetic.js';

const CT_SLICES = 400;
const SMALL_INSTANCES = 2_000;
const PARALLEL = 4;
const REPEATS = 3;
/** Instances of each kind in each of the warm-up's folders (one per association, and one more). */
const WARM_UP_CT = 25;
const WARM_UP_SMALL = 500;

interface Dataset {
  readonly name: string;
  /** One folder per parallel association, together holding every file. */
  readonly folders: readonly string[];
  readonly count: number;
  readonly bytes: number;
}

interface Server {
  readonly process: ChildProcess;
  readonly port: number;
  readonly aeTitle: string;
  /** Peak RSS in MB, read when the server stops. */
  stop(): Promise<number>;
}

async function generate(root: string): Promise<Dataset[]> {
  const out: Dataset[] = [];
  for (const [name, count, write] of [
    [`CT ${CT_SLICES} x 512 KB`, CT_SLICES, writeCtSeries],
    [`small ${SMALL_INSTANCES} x 1.5 KB`, SMALL_INSTANCES, writeSmallInstances],
  ] as const) {
    const folders: string[] = [];
    let bytes = 0;
    for (let part = 0; part < PARALLEL; part++) {
      const folder = join(root, name.split(' ')[0]!, String(part));
      bytes += (await write(folder, count / PARALLEL)).bytes;
      folders.push(folder);
    }
    out.push({ name, folders, count, bytes });
  }
  return out;
}

function peakRssMb(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]) / 1024;
  } catch {
    return Number.NaN;
  }
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('close', (code) => resolve(code));
  });
}

/** How our server is run in a row: its durability, and whether it keeps the transaction log. */
interface Variant {
  readonly durability: 'fsync' | 'os';
  readonly isLoggingTransactions: boolean;
}

const VARIANTS: readonly Variant[] = [
  { durability: 'fsync', isLoggingTransactions: true },
  { durability: 'os', isLoggingTransactions: true },
  // The audit trail's cost: the same as the row above, without it.
  { durability: 'os', isLoggingTransactions: false },
];

async function startOurs(variant: Variant, dataDir: string): Promise<Server> {
  const { child, port } = await startDicomServer([
    '--data-dir',
    dataDir,
    '--durability',
    variant.durability,
    '--max-storage-gb',
    '0',
    '--enable-transaction-log',
    String(variant.isLoggingTransactions),
  ]);
  return {
    process: child,
    port,
    aeTitle: 'DRAW_SCP',
    stop: async () => {
      const rss = peakRssMb(child.pid);
      child.kill('SIGTERM');
      await exited(child);
      return rss;
    },
  };
}

async function startDcmtk(outputDir: string): Promise<Server> {
  const port = await freePort();
  await mkdir(outputDir, { recursive: true });
  // GNU time reports the peak RSS of storescp and of the children it forked and reaped.
  const hasTime = existsSync('/usr/bin/time');
  const args = ['--fork', '+B', '-od', outputDir, String(port)];
  const child = hasTime
    ? spawn('/usr/bin/time', ['-f', 'maxrss=%M', 'storescp', ...args], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: TOOL_ENV,
      })
    : spawn('storescp', args, { stdio: 'ignore', env: TOOL_ENV });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  await waitForPort(port);
  return {
    process: child,
    port,
    aeTitle: 'ANY-SCP',
    stop: async () => {
      // SIGTERM reaches storescp through time, which then prints the figure.
      if (hasTime) spawn('pkill', ['-TERM', '-P', String(child.pid)]);
      else child.kill('SIGTERM');
      await exited(child);
      const kb = Number(/maxrss=(\d+)/.exec(stderr)?.[1]);
      return kb / 1024;
    },
  };
}

function storescu(server: Server, folder: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'storescu',
      [
        '+sd',
        '+r',
        '-aec',
        server.aeTitle,
        '-aet',
        'BENCH',
        '127.0.0.1',
        String(server.port),
        folder,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], env: TOOL_ENV },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.once('close', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`storescu exited ${code}:\n${stderr.slice(0, 2000)}`)),
    );
  });
}

interface Measurement {
  readonly imagesPerSecond: number;
  readonly mbPerSecond: number;
  readonly peakRssMb: number;
}

async function measure(
  start: () => Promise<Server>,
  dataset: Dataset,
  associations: 1 | 4,
  warmUp: readonly string[],
): Promise<Measurement> {
  // Each row starts with the page cache clean: the previous row's writes being flushed in
  // the background would otherwise slow down whichever server runs next.
  spawnSync('sync');
  const server = await start();
  let started = performance.now();
  try {
    // A server runs for months: measure it warm (JIT-compiled, caches filled), not its first
    // seconds. Both servers get the same warm-up, with other instances than those measured:
    // the first folder over one association, then the others over parallel associations.
    const [single, ...parallel] = warmUp;
    await storescu(server, single!);
    await Promise.all(parallel.map((folder) => storescu(server, folder)));
    started = performance.now();
    if (associations === 1) {
      for (const folder of dataset.folders) await storescu(server, folder);
    } else {
      await Promise.all(dataset.folders.map((folder) => storescu(server, folder)));
    }
  } catch (error) {
    await server.stop();
    throw error;
  }
  const seconds = (performance.now() - started) / 1000;
  const peakRssMb = await server.stop();
  return {
    imagesPerSecond: dataset.count / seconds,
    mbPerSecond: dataset.bytes / 1024 / 1024 / seconds,
    peakRssMb,
  };
}

/** The median speeds of several runs, and the highest peak RSS. */
function summarise(runs: readonly Measurement[]): Measurement {
  const median = (values: number[]) => {
    const sorted = values.sort((a, b) => a - b);
    const middle = Math.floor(sorted.length / 2);
    return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  };
  return {
    imagesPerSecond: median(runs.map((run) => run.imagesPerSecond)),
    mbPerSecond: median(runs.map((run) => run.mbPerSecond)),
    peakRssMb: Math.max(...runs.map((run) => run.peakRssMb)),
  };
}

/** Every run's images/s, so that a reader sees how far the reference moved within the row. */
function spread(runs: readonly Measurement[]): string {
  return runs.map((run) => run.imagesPerSecond.toFixed(0)).join(' ');
}

/** Runs the receive benchmark and prints its table. */
export async function runStoreBenchmark(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'dicom-server-bench-'));
  try {
    const datasets = await generate(root);
    // Memory must stay flat whatever the instance size: one 2 GB instance.
    const largeFolder = join(root, 'large');
    const large = await writeLargeInstance(largeFolder, 2 * 1024 * 1024 * 1024 - 1024 * 1024);
    datasets.push({
      name: 'one 2 GB instance',
      folders: [largeFolder],
      count: 1,
      bytes: large.bytes,
    });
    // Enough for both servers to reach their steady speed, on one association and on several
    // (ours writes files differently in each): after a warm-up of 200 small instances, our
    // first 2,000 measured were some 20% slower than the next 2,000, V8 still optimising the
    // receive path.
    const warmUp: string[] = [];
    for (let part = 0; part <= PARALLEL; part++) {
      const folder = join(root, 'warm-up', String(part));
      await writeCtSeries(join(folder, 'ct'), WARM_UP_CT);
      await writeSmallInstances(join(folder, 'small'), WARM_UP_SMALL);
      warmUp.push(folder);
    }
    const rows: string[] = [];
    let run = 0;
    for (const dataset of datasets) {
      // One instance of 2 GB: memory and streaming, measured once; its file is removed at once
      // (a single inode, unlike the other rows' thousands), to keep the disk from filling up.
      const isLarge = dataset.count === 1;
      const variants = VARIANTS.filter((variant) => variant.isLoggingTransactions || !isLarge);
      for (const associations of dataset.folders.length > 1
        ? ([1, PARALLEL] as const)
        : ([1] as const)) {
        const reference: Measurement[] = [];
        const ours: Measurement[][] = variants.map(() => []);
        for (let repeat = 0; repeat < (isLarge ? 1 : REPEATS); repeat++) {
          const dcmtkDir = join(root, `dcmtk-${run++}`);
          reference.push(await measure(() => startDcmtk(dcmtkDir), dataset, associations, warmUp));
          if (isLarge) await rm(dcmtkDir, { recursive: true, force: true });
          for (const [i, variant] of variants.entries()) {
            const dataDir = join(root, `ours-${run++}`);
            ours[i]!.push(
              await measure(() => startOurs(variant, dataDir), dataset, associations, warmUp),
            );
            if (isLarge) await rm(dataDir, { recursive: true, force: true });
          }
        }
        const theirs = summarise(reference);
        for (const [i, variant] of variants.entries()) {
          const mine = summarise(ours[i]!);
          const label = `${dataset.name}, ${associations} assoc, ${variant.durability}${variant.isLoggingTransactions ? '' : ', no log'}`;
          rows.push(
            [
              label.padEnd(46),
              mine.imagesPerSecond.toFixed(0).padStart(8),
              theirs.imagesPerSecond.toFixed(0).padStart(8),
              (mine.imagesPerSecond / theirs.imagesPerSecond).toFixed(2).padStart(6),
              mine.mbPerSecond.toFixed(1).padStart(8),
              theirs.mbPerSecond.toFixed(1).padStart(8),
              mine.peakRssMb.toFixed(0).padStart(6),
              theirs.peakRssMb.toFixed(0).padStart(6),
              `  ${spread(reference)}`,
            ].join(' '),
          );
        }
      }
    }
    console.log(
      `\nreceive path: dicom-server vs DCMTK storescp --fork +B, both sent to by DCMTK storescu; median of ${REPEATS} runs taking turns (peak RSS: the highest)\n`,
    );
    console.log(
      `${'data, associations, our durability'.padEnd(46)} ${'img/s'.padStart(8)} ${'DCMTK'.padStart(8)} ${'ratio'.padStart(6)} ${'MB/s'.padStart(8)} ${'DCMTK'.padStart(8)} ${'RSS MB'.padStart(6)} ${'DCMTK'.padStart(6)}   DCMTK img/s, each run`,
    );
    for (const row of rows) console.log(row);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
