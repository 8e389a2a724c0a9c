/**
 * Interop: DCMTK's `storescu` sends every file of the shared test data to our server in the
 * file's own transfer syntax. For each: storescu exits 0; the data set bytes we stored are
 * exactly the bytes that came over the wire (a TCP tap between the two records them), and
 * hold what the original file holds (dcmdump of both; storescu itself is not bit-preserving:
 * it writes sequences of undefined length with explicit lengths, drops Data Set Trailing
 * Padding and deflates anew); `dcmdump` reads what we wrote and its file meta names our
 * transfer syntax, the SOP class and instance and the calling AE title; the index row and the
 * patient, study and series rows carry what `dcmdump` reads from the original. Then every
 * storage structure and file naming once, end to end.
 *
 * Layer: test (interop). Expected values come from dcmdump, not from our own reader.
 */

import { copyFile, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { isAbsolute, join, normalize, sep } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readFileMeta } from '../../src/dicom/part10.js';
import { TransferSyntax } from '../../src/dicom/transfer-syntax.js';
import { IMPLEMENTATION_CLASS_UID } from '../../src/dicom/uid.js';
import { INCOMING_FOLDER } from '../../src/server/instance-store.js';
import { TEMP_SUFFIX } from '../../src/storage/atomic-writer.js';
import { datasetContent as content } from '../helpers/dcmdump.js';
import { runTool, type ToolRun } from '../helpers/dcmtk.js';
import {
  type StoreServerOptions,
  type StoreTestServer,
  startStoreServer,
} from '../helpers/server.js';
import { type IndexedInstance, indexedInstances, storedFiles } from '../helpers/stored.js';
import { TESTDATA_DICOM } from '../helpers/testdata.js';

const TESTDATA = TESTDATA_DICOM;
const CALLING_AE = 'STORESCU';

/** storescu's option proposing each transfer syntax (with the uncompressed ones). */
const PROPOSE: Readonly<Record<string, string>> = {
  [TransferSyntax.ExplicitVRLittleEndian]: '-xe',
  [TransferSyntax.ImplicitVRLittleEndian]: '-xi',
  [TransferSyntax.ExplicitVRBigEndian]: '-xb',
  [TransferSyntax.DeflatedExplicitVRLittleEndian]: '-xd',
  [TransferSyntax.RLELossless]: '-xr',
  [TransferSyntax.JPEGBaseline8Bit]: '-xy',
  [TransferSyntax.JPEGExtended12Bit]: '-xx',
  [TransferSyntax.JPEGLosslessSV1]: '-xs',
  [TransferSyntax.JPEGLSLossless]: '-xt',
  [TransferSyntax.JPEGLSNearLossless]: '-xu',
  [TransferSyntax.JPEG2000Lossless]: '-xv',
  [TransferSyntax.JPEG2000]: '-xw',
};

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startServer(options: StoreServerOptions = {}): Promise<StoreTestServer> {
  const server = await startStoreServer(options);
  cleanups.push(() => server.stop());
  return server;
}

/**
 * A TCP tap between storescu and the server: passes every byte through and records the data
 * sets storescu sends, cut from the P-DATA-TF PDUs with its own reading of the PDU and PDV
 * headers (PS3.8 §9.3.1, §9.3.5, Annex E.2), independent of src/network.
 */
class WireTap {
  readonly datasets: Buffer[] = [];
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();

  private constructor(server: net.Server) {
    this.#server = server;
  }

  static async start(targetPort: number): Promise<WireTap> {
    const server = net.createServer();
    const tap = new WireTap(server);
    server.on('connection', (client) => tap.#relay(client, targetPort));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => tap.#stop());
    return tap;
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  #relay(client: net.Socket, targetPort: number): void {
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
    for (const socket of [client, upstream]) {
      this.#sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => this.#sockets.delete(socket));
    }
    let pending = Buffer.alloc(0);
    let dataset: Buffer[] = [];
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 6 && pending.length >= 6 + pending.readUInt32BE(2)) {
        const end = 6 + pending.readUInt32BE(2);
        if (pending[0] === 0x04) {
          for (let offset = 6; offset < end; ) {
            const itemLength = pending.readUInt32BE(offset);
            const control = pending[offset + 5]!;
            const isCommand = (control & 0x01) !== 0;
            const isLast = (control & 0x02) !== 0;
            if (!isCommand) {
              dataset.push(Buffer.from(pending.subarray(offset + 6, offset + 4 + itemLength)));
              if (isLast) {
                this.datasets.push(Buffer.concat(dataset));
                dataset = [];
              }
            }
            offset += 4 + itemLength;
          }
        }
        pending = pending.subarray(end);
      }
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
  }

  async #stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** Sends files with storescu proposing `option`; bounded timeouts on every step. */
function storescu(
  server: StoreTestServer,
  option: string,
  files: readonly string[],
  port = server.port,
): Promise<ToolRun> {
  return runTool('storescu', [
    '-v',
    '-aet',
    CALLING_AE,
    '-aec',
    server.aeTitle,
    option,
    '-R',
    '-to',
    '10',
    '-ta',
    '10',
    '-td',
    '20',
    '127.0.0.1',
    String(port),
    ...files,
  ]);
}

/** The top-level elements dcmdump prints for a file: tag (lower-case "gggg,eeee") to value. */
async function dcmdump(path: string): Promise<{ run: ToolRun; values: Map<string, string> }> {
  const run = await runTool('dcmdump', ['-Un', '+U8', path]);
  const values = new Map<string, string>();
  for (const line of run.stdout.split('\n')) {
    // Top-level lines start at column 0; nested items are indented.
    const match =
      /^\(([0-9a-f]{4},[0-9a-f]{4})\) [A-Z]{2} (?:\[(.*?)\]|\(no value available\))/.exec(line);
    if (match !== null && !values.has(match[1]!)) values.set(match[1]!, match[2] ?? '');
  }
  return { run, values };
}

function datasetOf(file: Buffer): Buffer {
  return file.subarray(readFileMeta(file).datasetOffset);
}

const files = (await readdir(TESTDATA)).filter((name) => name.endsWith('.dcm')).sort();

describe('storescu sends each test file in its own transfer syntax', () => {
  it('has the test files', () => {
    expect(files.length).toBeGreaterThanOrEqual(17);
  });

  it.each(files)('%s: stored bit for bit, readable by dcmdump, indexed', async (name) => {
    const source = join(TESTDATA, name);
    const original = await readFile(source);
    const originalMeta = readFileMeta(original);
    const transferSyntax = originalMeta.transferSyntaxUid!;
    const option = PROPOSE[transferSyntax];
    expect(option, `no storescu option for ${transferSyntax}`).toBeDefined();
    const server = await startServer();
    const tap = await WireTap.start(server.port);
    const run = await storescu(server, option!, [source], tap.port);
    expect(run.exitCode, run.output).toBe(0);
    expect(run.output).toMatch(/Received Store Response \(Success\)/);

    const rows = await indexedInstances(server);
    expect(rows, run.output).toHaveLength(1);
    const row = rows[0]!;
    const storedPath = join(server.storageRoot, row.file_path);
    const stored = await readFile(storedPath);
    expect(tap.datasets).toHaveLength(1);
    expect(datasetOf(stored).equals(tap.datasets[0]!)).toBe(true);

    const { run: dump, values: meta } = await dcmdump(storedPath);
    const { run: originalDump, values: expected } = await dcmdump(source);
    expect(dump.exitCode, dump.output).toBe(0);
    expect(dump.stderr, dump.output).not.toMatch(/^E:/m);
    expect(content(dump.stdout)).toEqual(content(originalDump.stdout));
    expect(meta.get('0002,0010')).toBe(transferSyntax);
    expect(meta.get('0002,0002')).toBe(expected.get('0008,0016'));
    expect(meta.get('0002,0003')).toBe(expected.get('0008,0018'));
    expect(meta.get('0002,0012')).toBe(IMPLEMENTATION_CLASS_UID);
    expect(meta.get('0002,0016')).toBe(CALLING_AE);

    expect(row).toEqual({
      sop_instance_uid: expected.get('0008,0018'),
      sop_class_uid: expected.get('0008,0016'),
      transfer_syntax_uid: transferSyntax,
      file_path: row.file_path,
      file_size: (await stat(storedPath)).size,
      calling_ae: CALLING_AE,
      received_at: row.received_at,
      patient_id: expected.get('0010,0020') ?? '',
      patient_name: expected.get('0010,0010') || null,
      study_instance_uid: expected.get('0020,000d'),
      series_instance_uid: expected.get('0020,000e'),
      modality: expected.get('0008,0060') || null,
    });
    expect(isAbsolute(row.file_path)).toBe(false);
    expect(normalize(row.file_path).split(sep)).not.toContain('..');
    expect(row.file_size).toBe(stored.length);
    expect(await storedFiles(server)).toEqual([row.file_path]);
    expect(
      (await readdir(join(server.storageRoot, INCOMING_FOLDER))).filter((name) =>
        name.endsWith(TEMP_SUFFIX),
      ),
    ).toEqual([]);
  });
});

describe('storescu into every storage structure and file naming', () => {
  let scratch: string;
  let mrCopy: string;
  const ct = join(TESTDATA, 'CT_small.dcm');
  const mr = join(TESTDATA, 'MR_small.dcm');
  const rtplan = join(TESTDATA, 'rtplan.dcm');

  beforeAll(async () => {
    // A second MR_small with its own SOP Instance UID: same patient, same instance number.
    scratch = await mkdtemp(join(tmpdir(), 'storescu-test-'));
    mrCopy = join(scratch, 'MR_small_copy.dcm');
    await copyFile(mr, mrCopy);
    const run = await runTool('dcmodify', ['-nb', '-gin', mrCopy]);
    expect(run.exitCode, run.output).toBe(0);
  });

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  /** The local date of an ISO time, as YYYY, MM, DD. */
  function localDate(iso: string): string[] {
    const d = new Date(iso);
    const pad = (n: number) => String(n).padStart(2, '0');
    return [String(d.getFullYear()), pad(d.getMonth() + 1), pad(d.getDate())];
  }

  async function send(
    server: StoreTestServer,
    paths: readonly string[],
  ): Promise<IndexedInstance[]> {
    const run = await storescu(server, '-xe', paths);
    expect(run.exitCode, run.output).toBe(0);
    const rows = await indexedInstances(server);
    expect(await storedFiles(server)).toEqual(rows.map((row) => row.file_path).sort());
    return rows;
  }

  it('flat structure, SOP UID naming: <SOPInstanceUID>.dcm in the root', async () => {
    const server = await startServer({ structure: 'flat', naming: 'sop_uid' });
    const rows = await send(server, [ct, mr]);
    expect(rows.map((row) => row.file_path)).toEqual(
      rows.map((row) => `${row.sop_instance_uid}.dcm`),
    );
  });

  it('patient structure, instance number naming: <PatientID>/0001.dcm, collision-safe', async () => {
    const server = await startServer({ structure: 'patient', naming: 'instance_number' });
    const rows = await send(server, [mr, mrCopy]);
    expect(rows.map((row) => row.file_path)).toEqual([
      join('4MR1', '0001.dcm'),
      join('4MR1', '0001_1.dcm'),
    ]);
    for (const row of rows) {
      const stored = await readFile(join(server.storageRoot, row.file_path));
      expect(readFileMeta(stored).mediaStorageSopInstanceUid).toBe(row.sop_instance_uid);
    }
  });

  it('study structure, timestamp naming: <StudyUID>/YYYYMMDD_HHMMSS_micro.dcm', async () => {
    const server = await startServer({ structure: 'study', naming: 'timestamp' });
    const rows = await send(server, [ct]);
    const [folder, name] = rows[0]!.file_path.split(sep);
    expect(folder).toBe(rows[0]!.study_instance_uid);
    const match = /^(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})_(\d{6})\.dcm$/.exec(name!);
    expect(match, name).not.toBeNull();
    const [y, mo, d, h, mi, s, micros] = match!.slice(1).map(Number) as number[];
    const named = new Date(y!, mo! - 1, d!, h!, mi!, s!, Math.floor(micros! / 1000));
    expect(named.toISOString()).toBe(rows[0]!.received_at);
  });

  it('series structure, sequential naming: <PatientID>/<StudyUID>/<SeriesUID>/00000001.dcm', async () => {
    const server = await startServer({ structure: 'series', naming: 'sequential' });
    const first = await send(server, [ct]);
    const rows = await send(server, [ct, rtplan]);
    expect(first).toHaveLength(1);
    expect(rows.map((row) => row.file_path)).toEqual([
      join(
        rows[0]!.patient_id,
        rows[0]!.study_instance_uid,
        rows[0]!.series_instance_uid,
        '00000001.dcm',
      ),
      join(
        rows[1]!.patient_id,
        rows[1]!.study_instance_uid,
        rows[1]!.series_instance_uid,
        '00000002.dcm',
      ),
    ]);
  });

  it('date structure: YYYY/MM/DD/ of the day received', async () => {
    const server = await startServer({ structure: 'date', naming: 'sop_uid' });
    const rows = await send(server, [ct, rtplan]);
    for (const row of rows) {
      expect(row.file_path).toBe(
        join(...localDate(row.received_at), `${row.sop_instance_uid}.dcm`),
      );
    }
  });
});
