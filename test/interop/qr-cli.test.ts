/**
 * Interop: `dicom-server find`, `move` and `get` (run from source, `node --import tsx
 * src/cli/main.ts`, as cli.test.ts does) against DCMTK's `dcmqrscp` as the Q/R SCP, with a
 * DCMTK `storescp` (bit-preserving) as the C-MOVE destination; and Ctrl-C during `find` against
 * an in-process SCP that holds its answer until C-CANCEL.
 *
 * dcmqrscp's storage area holds copies of the test files registered with `dcmqridx` rather
 * than stored with `storescu`: storescu converts implicit VR and big endian files to the syntax
 * dcmqrscp prefers, and the checks here compare what arrives with the very files we started from.
 *
 * Layer: test (interop). Every wait has a deadline; the tools' logs are printed on failure.
 */

import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readFileMeta } from '../../src/dicom/part10.js';
import { TransferSyntax } from '../../src/dicom/transfer-syntax.js';
import { SopClass } from '../../src/dicom/uid.js';
import { AssociationAcceptor } from '../../src/network/association/acceptor.js';
import { DimseChannel, type ResponseSpec } from '../../src/network/dimse/channel.js';
import { Status } from '../../src/network/dimse/status.js';
import { buildIdentifier } from '../../src/services/scu/find.js';
import { type BackgroundTool, runTool, startTool, type ToolRun } from '../helpers/dcmtk.js';
import { freePort, waitForListener } from '../helpers/net.js';
import { TESTDATA_DICOM } from '../helpers/testdata.js';
import { within } from '../helpers/wait.js';

const HOST = '127.0.0.1';
const CLI = resolve(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
const NODE_ARGS = ['--import', 'tsx', CLI];
const QR_AE = 'QR';
const DEST_AE = 'DEST';

/** The fixture files' keys used below (from the files themselves, see shared/testdata). */
const Study = {
  ct: '1.3.6.1.4.1.5962.1.2.1.20040119072730.12322',
  mr: '1.3.6.1.4.1.5962.1.2.4.20040826185059.5457',
  rtDose: '1.2.999.999.99.9.9999.8888',
  rtPlan: '1.22.333.4.555555.6.7777777777777777777777777777',
  sr: '1.2.276.0.7230010.3.1.4.2139363186.7819.982086466.2',
  sc: '1.2.826.0.1.3680043.8.498.12406831542731051035295345080039845114',
} as const;
const MR_SERIES = '1.3.6.1.4.1.5962.1.3.4.1.20040826185059.5457';
const MR_INSTANCE = '1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457';
const JPEG2000_INSTANCE = '1.3.6.1.4.1.5962.1.1.8.1.3.20040826185059.5457';
/** SOP Instance UIDs of data sets (rtdose.dcm and rtplan.dcm state others in their file meta). */
const Instance = {
  sr: '1.2.276.0.7230010.3.1.4.2139363186.7819.982086466.4',
  sc: '1.2.276.0.7230010.3.1.4.8323329.1099.1521494048.423534',
  rtDose: '1.9.999.999.99.9.9999.9999.20030818153516',
  rtPlan: '1.2.777.777.77.7.7777.7777.20030903150023',
} as const;
/** Copied into dcmqrscp's storage area as they are. */
const FILES = [
  'CT_small.dcm',
  'MR_small.dcm',
  'JPEG2000.dcm',
  'rtdose.dcm',
  'rtplan.dcm',
  'rtstruct.dcm',
  'test-SR.dcm',
  'SC_rgb_small_odd.dcm',
  'ExplVR_BigEnd.dcm',
];

/** Runs the CLI to completion (killed after `timeoutMs`, which leaves exitCode null). */
function runCli(args: readonly string[], timeoutMs = 20_000): Promise<ToolRun> {
  return runTool(process.execPath, [...NODE_ARGS, ...args], timeoutMs);
}

function datasetOf(file: Buffer): Buffer {
  return file.subarray(readFileMeta(file).datasetOffset);
}

/** The data sets of the Part 10 files in a folder, by the SOP Instance UID of their meta. */
async function datasetsIn(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const name of await readdir(dir)) {
    const file = await readFile(join(dir, name));
    out.set(readFileMeta(file).mediaStorageSopInstanceUid!, datasetOf(file));
  }
  return out;
}

/** Checks that `dir` holds exactly the instances named, each with its test file's data set bytes. */
async function expectSourceDatasets(dir: string, expected: Record<string, string>): Promise<void> {
  const received = await datasetsIn(dir);
  expect(sorted([...received.keys()])).toEqual(sorted(Object.keys(expected)));
  for (const [uid, name] of Object.entries(expected)) {
    const source = datasetOf(await readFile(join(TESTDATA_DICOM, name)));
    expect(received.get(uid)?.equals(source), `${name} data set differs`).toBe(true);
  }
}

/** A table as printed by `find`: one record per row, by column header. */
function parseTable(stdout: string): Record<string, string>[] {
  const [header = '', ...rows] = stdout.trimEnd().split('\n');
  const columns = [...header.matchAll(/\S+/g)].map((m) => ({ name: m[0], start: m.index }));
  return rows.map((row) =>
    Object.fromEntries(
      columns.map((column, i) => [
        column.name,
        row.slice(column.start, columns[i + 1]?.start ?? row.length).trim(),
      ]),
    ),
  );
}

function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

function sorted(values: readonly unknown[]): unknown[] {
  return [...values].sort();
}

function dcmqrscpConfig(qrPort: number, destPort: number, storage: string): string {
  return [
    `NetworkTCPPort  = ${qrPort}`,
    'MaxPDUSize      = 16384',
    'MaxAssociations = 16',
    'HostTable BEGIN',
    // dcmqrscp takes host names here, not IP addresses.
    `dest = (${DEST_AE}, localhost, ${destPort})`,
    'HostTable END',
    'VendorTable BEGIN',
    'VendorTable END',
    'AETable BEGIN',
    `${QR_AE} ${storage} RW (200, 1024mb) ANY`,
    'AETable END',
    '',
  ].join('\n');
}

describe('dicom-server find, move and get against DCMTK dcmqrscp', () => {
  let dir: string;
  let storage: string;
  let destination: string;
  let qrPort: number;
  let dcmqrscp: BackgroundTool;
  let storescp: BackgroundTool;
  const peer = () => [HOST, String(qrPort), '--aec', QR_AE, '--aet', 'QR_CLI', '--timeout', '10'];
  const logs = () => `--- dcmqrscp\n${dcmqrscp.output()}\n--- storescp\n${storescp.output()}`;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'interop-qr-cli-'));
    storage = join(dir, 'QR');
    destination = join(dir, 'dest');
    await mkdir(storage);
    await mkdir(destination);
    for (const name of FILES) await copyFile(join(TESTDATA_DICOM, name), join(storage, name));
    // One more patient whose name is not ASCII: a copy of SC_rgb_small_odd (ISO_IR 192) with
    // new UIDs.
    const utf8 = join(storage, 'SC_utf8.dcm');
    await copyFile(join(TESTDATA_DICOM, 'SC_rgb_small_odd.dcm'), utf8);
    const modify = await runTool('dcmodify', [
      '-nb',
      '-gin',
      '-gst',
      '-gse',
      '-m',
      'PatientName=Lestrade^Gérard',
      '-m',
      'PatientID=ID2',
      utf8,
    ]);
    expect(modify.exitCode, modify.output).toBe(0);
    const names = (await readdir(storage)).map((name) => join(storage, name));
    const index = await runTool('dcmqridx', [storage, ...names]);
    expect(index.exitCode, index.output).toBe(0);

    qrPort = await freePort();
    const destPort = await freePort();
    const config = join(dir, 'dcmqrscp.cfg');
    await writeFile(config, dcmqrscpConfig(qrPort, destPort, storage));
    storescp = await startTool('storescp', ['+B', '-od', destination, String(destPort)], 50);
    await waitForListener(destPort);
    // Fork mode (the default): DCMTK 3.6.7's single-process mode crashes after a release.
    dcmqrscp = await startTool('dcmqrscp', ['-c', config], 50);
    await waitForListener(qrPort);
  });

  afterAll(async () => {
    await dcmqrscp?.stop();
    await storescp?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('find prints a table of the studies whose name matches a wildcard, default columns', async () => {
    const run = await runCli(['find', ...peer(), '-k', 'PatientName=CompressedSamples*']);
    expect(run.exitCode, `${run.output}\n${logs()}`).toBe(0);
    const [header] = run.stdout.split('\n');
    expect(header?.split(/\s+/)).toEqual([
      'PatientName',
      'PatientID',
      'StudyDate',
      'StudyDescription',
      'AccessionNumber',
      'ModalitiesInStudy',
      'StudyInstanceUID',
      'NumberOfStudyRelatedInstances',
    ]);
    const rows = parseTable(run.stdout);
    expect(sorted(rows.map((row) => row.PatientID))).toEqual(['1CT1', '4MR1', '8NM1']);
    expect(rows.find((row) => row.PatientID === '1CT1')).toMatchObject({
      PatientName: 'CompressedSamples^CT1',
      StudyDate: '20040119',
      StudyInstanceUID: Study.ct,
    });
    expect(run.stderr).toMatch(/C-FIND QR@127\.0\.0\.1:\d+: 3 matches, success \(0x0000\)/);
  });

  it('find matches date ranges, closed and open, and prints JSON lines', async () => {
    const closed = await runCli([
      'find',
      ...peer(),
      '-k',
      'StudyDate=20030101-20031231',
      '-k',
      'PatientID',
      '--json',
    ]);
    expect(closed.exitCode, closed.output).toBe(0);
    const lines = jsonLines(closed.stdout);
    expect(sorted(lines.map((line) => `${line.PatientID} ${line.StudyDate}`))).toEqual([
      'id00001 20030716',
      'id11111 20030805',
    ]);
    expect(lines[0]).toMatchObject({ QueryRetrieveLevel: 'STUDY', RetrieveAETitle: QR_AE });
    const open = await runCli([
      'find',
      ...peer(),
      '-k',
      'StudyDate=20170101-',
      '-k',
      'PatientID',
      '--json',
    ]);
    expect(open.exitCode, open.output).toBe(0);
    expect(sorted(jsonLines(open.stdout).map((line) => line.PatientID))).toEqual(['ID1', 'ID2']);
  });

  it('find matches a list of UIDs', async () => {
    const run = await runCli([
      'find',
      ...peer(),
      '-k',
      `StudyInstanceUID=${Study.rtDose}\\${Study.rtPlan}`,
      '-k',
      'PatientID',
    ]);
    expect(run.exitCode, run.output).toBe(0);
    expect(
      sorted(parseTable(run.stdout).map((row) => `${row.PatientID} ${row.StudyInstanceUID}`)),
    ).toEqual([`id00001 ${Study.rtPlan}`, `id11111 ${Study.rtDose}`]);
  });

  it('find queries every level of both information models', async () => {
    const [patient, patientStudy, patientSeries, patientImage, study, series, image] =
      await Promise.all([
        runCli([
          'find',
          ...peer(),
          '--root',
          'patient',
          '--level',
          'PATIENT',
          '-k',
          'PatientID=id*',
          '--json',
        ]),
        runCli(['find', ...peer(), '--root', 'patient', '-k', 'PatientID=4MR1', '--json']),
        runCli([
          'find',
          ...peer(),
          '--root',
          'patient',
          '--level',
          'SERIES',
          '-k',
          'PatientID=4MR1',
          '-k',
          `StudyInstanceUID=${Study.mr}`,
          '--json',
        ]),
        runCli([
          'find',
          ...peer(),
          '--root',
          'patient',
          '--level',
          'image',
          '-k',
          'PatientID=4MR1',
          '-k',
          `StudyInstanceUID=${Study.mr}`,
          '-k',
          `SeriesInstanceUID=${MR_SERIES}`,
          '--json',
        ]),
        runCli(['find', ...peer(), '-k', 'PatientID=4MR1', '--json']),
        runCli([
          'find',
          ...peer(),
          '--level',
          'SERIES',
          '-k',
          `StudyInstanceUID=${Study.mr}`,
          '--json',
        ]),
        runCli([
          'find',
          ...peer(),
          '--level',
          'IMAGE',
          '-k',
          `StudyInstanceUID=${Study.mr}`,
          '-k',
          `SeriesInstanceUID=${MR_SERIES}`,
        ]),
      ]);
    for (const run of [patient, patientStudy, patientSeries, patientImage, study, series, image])
      expect(run!.exitCode, `${run!.output}\n${logs()}`).toBe(0);
    expect(
      sorted(jsonLines(patient!.stdout).map((l) => `${l.PatientID} ${l.PatientName}`)),
    ).toEqual(['id00001 Last^First^mid^pre', 'id11111 Lastname^Firstname']);
    for (const run of [patientStudy, study])
      expect(jsonLines(run!.stdout)).toEqual([
        expect.objectContaining({ QueryRetrieveLevel: 'STUDY', StudyInstanceUID: Study.mr }),
      ]);
    for (const run of [patientSeries, series])
      expect(jsonLines(run!.stdout)).toEqual([
        expect.objectContaining({
          QueryRetrieveLevel: 'SERIES',
          Modality: 'MR',
          SeriesInstanceUID: MR_SERIES,
        }),
      ]);
    expect(jsonLines(patientImage!.stdout)).toEqual([
      expect.objectContaining({ QueryRetrieveLevel: 'IMAGE', SOPInstanceUID: MR_INSTANCE }),
    ]);
    expect(parseTable(image!.stdout)).toEqual([
      expect.objectContaining({ InstanceNumber: '1', SOPInstanceUID: MR_INSTANCE }),
    ]);
  });

  it('find sends a value that is not ASCII in UTF-8 and decodes the answer', async () => {
    const run = await runCli(['find', ...peer(), '-k', 'PatientName=*Gé*', '--json']);
    expect(run.exitCode, `${run.output}\n${logs()}`).toBe(0);
    expect(jsonLines(run.stdout)).toEqual([
      expect.objectContaining({
        PatientName: 'Lestrade^Gérard',
        PatientID: 'ID2',
        SpecificCharacterSet: 'ISO_IR 192',
      }),
    ]);
  });

  it('move sends the matching instances to a storescp destination, data sets unchanged', async () => {
    const run = await runCli([
      'move',
      ...peer(),
      '--dest',
      DEST_AE,
      '-k',
      `StudyInstanceUID=${Study.sr}\\${Study.sc}`,
    ]);
    expect(run.exitCode, `${run.output}\n${logs()}`).toBe(0);
    expect(run.stdout).toMatch(/success \(0x0000\); completed 2, failed 0, warning 0/);
    expect(run.stderr).toMatch(/C-MOVE: remaining 0, completed 2, failed 0, warning 0/);
    await expectSourceDatasets(destination, {
      [Instance.sr]: 'test-SR.dcm',
      [Instance.sc]: 'SC_rgb_small_odd.dcm',
    });
  });

  it('move to a destination the peer does not know exits 1 with the status', async () => {
    const run = await runCli(['move', ...peer(), '--dest', 'NOWHERE', '-k', 'PatientID=1CT1']);
    expect(run.exitCode, run.output).toBe(1);
    expect(run.stdout).toMatch(/refused: move destination unknown \(0xA801\)/);
  });

  it('get writes the matching instances into --out, data sets unchanged', async () => {
    const out = join(dir, 'get-explicit');
    const run = await runCli([
      'get',
      ...peer(),
      '--out',
      out,
      '-k',
      `StudyInstanceUID=${Study.sr}\\${Study.sc}`,
    ]);
    expect(run.exitCode, `${run.output}\n${logs()}`).toBe(0);
    expect(run.stdout).toMatch(/success \(0x0000\); completed 2, failed 0, warning 0/);
    expect(run.stdout).toContain(`2 files written to ${out}`);
    await expectSourceDatasets(out, {
      [Instance.sr]: 'test-SR.dcm',
      [Instance.sc]: 'SC_rgb_small_odd.dcm',
    });
    // Each file is named after its SOP Instance UID.
    expect(sorted(await readdir(out))).toEqual(
      sorted([`${Instance.sr}.dcm`, `${Instance.sc}.dcm`]),
    );
  });

  it('get proposes the transfer syntax asked for and prints a JSON summary', async () => {
    const out = join(dir, 'get-implicit');
    const run = await runCli([
      'get',
      ...peer(),
      '--out',
      out,
      '--root',
      'patient',
      '--level',
      'PATIENT',
      '-k',
      'PatientID=id*',
      '--transfer-syntax',
      'ImplicitVRLittleEndian',
      '--json',
    ]);
    expect(run.exitCode, `${run.output}\n${logs()}`).toBe(0);
    const [summary] = jsonLines(run.stdout);
    expect(summary).toMatchObject({
      status: 0,
      completed: 2,
      failed: 0,
      failedSopInstanceUids: [],
    });
    const files = summary!.files as { transferSyntaxUid: string; path: string }[];
    expect(files.map((f) => f.transferSyntaxUid)).toEqual([
      TransferSyntax.ImplicitVRLittleEndian,
      TransferSyntax.ImplicitVRLittleEndian,
    ]);
    // rtdose.dcm and rtplan.dcm are stored in implicit VR: they come back byte for byte.
    await expectSourceDatasets(out, {
      [Instance.rtDose]: 'rtdose.dcm',
      [Instance.rtPlan]: 'rtplan.dcm',
    });
  });

  it('get exits 1 naming the instance the peer could not send', async () => {
    // JPEG 2000 stored, only uncompressed syntaxes proposed: dcmqrscp cannot convert it.
    const run = await runCli([
      'get',
      ...peer(),
      '--out',
      join(dir, 'get-j2k'),
      '-k',
      'PatientID=8NM1',
    ]);
    expect(run.exitCode, `${run.output}\n${logs()}`).toBe(1);
    expect(run.stdout).toMatch(/completed 0, failed 1, warning 0/);
    expect(run.stdout).toContain(`failed: ${JPEG2000_INSTANCE}`);
    expect(run.stdout).toContain('0 files written');
  });

  it('exits 2 on usage errors, naming what is wrong', async () => {
    const cases: [string[], RegExp][] = [
      [['find', ...peer(), '-k', 'NoSuchKeyword=1'], /unknown keyword or tag 'NoSuchKeyword'/],
      [['find', ...peer(), '-k', 'Rows=512'], /can only be a return key/],
      [['find', ...peer(), '-k', 'QueryRetrieveLevel=IMAGE'], /set with --level/],
      [['find', ...peer(), '--level', 'PATIENT'], /Study Root has no PATIENT level/],
      [['find', ...peer(), '--level', 'SOP'], /must be one of PATIENT, STUDY, SERIES, IMAGE/],
      [['move', ...peer(), '-k', 'PatientID=1CT1'], /required option '--dest <title>'/],
      [['get', ...peer(), '--out', join(dir, 'none')], /at least one matching key/],
      [
        ['get', ...peer(), '--out', join(dir, 'none'), '--sop-class', 'xray', '-k', 'PatientID=1'],
        /not a UID nor one of/,
      ],
    ];
    const runs = await Promise.all(cases.map(([args]) => runCli(args)));
    for (const [i, run] of runs.entries()) {
      expect(run.exitCode, run.output).toBe(2);
      expect(run.stderr, run.output).toMatch(cases[i]![1]);
    }
  });

  it('exits 3 naming the connection failure when nothing listens', async () => {
    const port = await freePort();
    const run = await runCli(['find', HOST, String(port), '-k', 'PatientID=1']);
    expect(run.exitCode, run.output).toBe(3);
    expect(run.stderr).toMatch(/cannot connect to ANY-SCP@127\.0\.0\.1:\d+/);
  });
});

describe('Ctrl-C during dicom-server find', () => {
  let acceptor: AssociationAcceptor | undefined;
  let child: ChildProcessWithoutNullStreams | undefined;

  afterEach(async () => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null)
      child.kill('SIGKILL');
    await acceptor?.stopListening();
    await acceptor?.abortAll();
  });

  it('sends C-CANCEL and exits 1 once the final response arrives', async () => {
    let wasCancelled = false;
    acceptor = new AssociationAcceptor({
      aeTitle: 'SLOW_SCP',
      served: {
        transferSyntaxesFor: (abstractSyntax) =>
          abstractSyntax === SopClass.StudyRootQueryRetrieveInformationModelFind
            ? [TransferSyntax.ExplicitVRLittleEndian]
            : undefined,
        canActAsScuFor: () => false,
      },
      maxPduLength: 16_384,
      maxAssociations: 1,
    });
    const match = buildIdentifier(
      { level: 'STUDY', keys: [{ tag: 0x00100020, vr: 'LO', value: 'FIRST' }] },
      { isExplicitVr: true, isLittleEndian: true },
    );
    acceptor.on('association', (association) => {
      new DimseChannel(association, {
        dimseTimeoutMs: 10_000,
        onRequest: async function* (_request, signal): AsyncGenerator<ResponseSpec> {
          yield { status: Status.Pending, dataset: match };
          // Holds the rest of the answer until the requestor cancels.
          await new Promise((done) => signal.addEventListener('abort', done, { once: true }));
          wasCancelled = true;
          yield { status: Status.Cancel };
        },
      });
    });
    const { port } = await acceptor.listen(HOST, 0);
    const current = spawn(process.execPath, [
      ...NODE_ARGS,
      'find',
      HOST,
      String(port),
      '--aec',
      'SLOW_SCP',
      '--json',
    ]);
    child = current;
    let stdout = '';
    let stderr = '';
    current.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const firstMatch = new Promise<void>((done) => {
      current.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (stdout.includes('\n')) done();
      });
    });
    const exited = new Promise<number | null>((done) => current.once('exit', (code) => done(code)));
    await within(firstMatch, 15_000, `the first match on stdout\n${stdout}${stderr}`);
    current.kill('SIGINT');
    const code = await within(exited, 10_000, `the exit after SIGINT\n${stdout}${stderr}`);
    expect(wasCancelled, stderr).toBe(true);
    expect(code, stderr).toBe(1);
    expect(jsonLines(stdout)).toEqual([expect.objectContaining({ PatientID: 'FIRST' })]);
    expect(stderr).toMatch(/C-FIND: cancelling/);
    expect(stderr).toMatch(/1 match, cancelled by C-CANCEL \(0xFE00\)/);
  });
});
