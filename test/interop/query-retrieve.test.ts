/**
 * Interop: DCMTK's `findscu`, `movescu` and `getscu` query and retrieve what DCMTK's `storescu`
 * stored in our server. Expected values are facts of the shared test files as `dcmdump` shows
 * them; C-FIND responses are read by `dcmdump` from the files `findscu -X` writes; retrieved
 * files are compared with the stored ones byte for byte in their data set (or, where the
 * retrieve converted between the little-endian syntaxes, by `dcmdump` content).
 *
 * Layer: test (interop). Everything on 127.0.0.1; every tool run has a deadline.
 */

import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSmallInstances } from '../../bench/synthetic.js';
import { readFileMeta } from '../../src/dicom/part10.js';
import { readIdentifier, writeIdentifier } from '../../src/dicom/query/identifier.js';
import { encodeValue } from '../../src/dicom/query/values.js';
import { TransferSyntax, transferSyntaxProperties } from '../../src/dicom/transfer-syntax.js';
import { SopClass } from '../../src/dicom/uid.js';
import { requestAssociation } from '../../src/network/association/requestor.js';
import { DimseChannel, type IncomingResponse } from '../../src/network/dimse/channel.js';
import { CommandField, Priority } from '../../src/network/dimse/command.js';
import { Status } from '../../src/network/dimse/status.js';
import { datasetContent, topLevelValues } from '../helpers/dcmdump.js';
import {
  runFindscu,
  runTool,
  SCU_TIMEOUTS,
  startStorescp,
  type ToolRun,
} from '../helpers/dcmtk.js';
import { freePort } from '../helpers/net.js';
import { type StoreTestServer, startStoreServer } from '../helpers/server.js';
import { indexedInstances } from '../helpers/stored.js';
import { TESTDATA_DICOM } from '../helpers/testdata.js';

/**
 * The shared files stored for these tests (no two with the same SOP Instance UID), each with
 * the storescu option that proposes its transfer syntax: storescu would convert otherwise.
 */
const FILES: Readonly<Record<string, string>> = {
  'CT_small.dcm': '-xe',
  'MR_small.dcm': '-xe',
  'SC_rgb_small_odd.dcm': '-xe',
  'rtdose.dcm': '-xi',
  'rtplan.dcm': '-xi',
  'rtstruct.dcm': '-xi',
  'JPEG-lossy.dcm': '-xx',
  'JPEG2000.dcm': '-xw',
  'SC_rgb_rle.dcm': '-xr',
};

/** Facts of the shared files (dcmdump). */
const MR = {
  patientId: '4MR1',
  patientName: 'CompressedSamples^MR1',
  studyUid: '1.3.6.1.4.1.5962.1.2.4.20040826185059.5457',
  seriesUid: '1.3.6.1.4.1.5962.1.3.4.1.20040826185059.5457',
  sopUid: '1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457',
};
const NM = {
  patientId: '8NM1',
  studyUid: '1.3.6.1.4.1.5962.1.2.8.20040826185059.5457',
  seriesUid: '1.3.6.1.4.1.5962.1.3.8.1.20040826185059.5457',
  jpegLossyUid: '1.3.6.1.4.1.5962.1.1.8.1.5.20040826185059.5457',
  jpeg2000Uid: '1.3.6.1.4.1.5962.1.1.8.1.3.20040826185059.5457',
};
const CT = { patientId: '1CT1', studyUid: '1.3.6.1.4.1.5962.1.2.1.20040119072730.12322' };
const SC = {
  patientId: 'ID1',
  studyUid: '1.2.826.0.1.3680043.8.498.12406831542731051035295345080039845114',
};

/** A synthetic series of many small instances (patient BENCH001), for C-CANCEL part-way. */
const MANY = 300;
let many: { studyUid: string; seriesUid: string };

let server: StoreTestServer;
let work: string;
/** Move destinations the server knows, by AE title (filled by the tests). */
const destinations = new Map<string, { host: string; port: number }>();

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dicom-server-qr-'));
  server = await startStoreServer({
    isQueryRetrieve: true,
    server: { moveDestinations: { lookup: (aeTitle) => destinations.get(aeTitle.trim()) } },
  });
  for (const option of new Set(Object.values(FILES))) {
    const files = Object.keys(FILES).filter((file) => FILES[file] === option);
    const stored = await runTool('storescu', [
      '-aet',
      'STORESCU',
      '-aec',
      server.aeTitle,
      option,
      '-R',
      ...SCU_TIMEOUTS,
      '127.0.0.1',
      String(server.port),
      ...files.map((file) => join(TESTDATA_DICOM, file)),
    ]);
    expect(stored.exitCode, stored.output).toBe(0);
  }
  const synthetic = await writeSmallInstances(await freshDir('many'), MANY);
  const first = await topLevelValues(synthetic.files[0]!);
  many = { studyUid: first.StudyInstanceUID!, seriesUid: first.SeriesInstanceUID! };
  const stored = await runTool('storescu', [
    '-aet',
    'STORESCU',
    '-aec',
    server.aeTitle,
    ...SCU_TIMEOUTS,
    '127.0.0.1',
    String(server.port),
    ...synthetic.files,
  ]);
  expect(stored.exitCode, stored.output).toBe(0);
  expect(await indexedInstances(server)).toHaveLength(Object.keys(FILES).length + MANY);
}, 60_000);

afterAll(async () => {
  await server?.stop();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

/** A fresh directory under the test's work directory. */
async function freshDir(name: string): Promise<string> {
  return mkdtemp(join(work, `${name}-`));
}

/** findscu with `keys`; the responses as dcmdump reads them, in the order they came. */
async function find(
  root: '-P' | '-S',
  keys: readonly string[],
  extra: readonly string[] = [],
): Promise<{ run: ToolRun; responses: Record<string, string>[] }> {
  const { run, files } = await runFindscu(server, root, keys, await freshDir('find'), extra);
  return { run, responses: await Promise.all(files.map(topLevelValues)) };
}

/** The data set bytes of a Part 10 file (after its file meta). */
async function datasetOf(path: string): Promise<Buffer> {
  const bytes = await readFile(path);
  return bytes.subarray(readFileMeta(bytes).datasetOffset);
}

/** The stored file of an instance, by SOP Instance UID. */
async function storedPath(sopInstanceUid: string): Promise<string> {
  const row = (await indexedInstances(server)).find((r) => r.sop_instance_uid === sopInstanceUid);
  if (row === undefined) throw new Error(`${sopInstanceUid} is not stored`);
  return join(server.storageRoot, row.file_path);
}

/** Every received file in `dir` (storescp, movescu and getscu name them by modality and UID). */
async function receivedFiles(dir: string): Promise<Map<string, string>> {
  const bySopInstance = new Map<string, string>();
  for (const name of await readdir(dir)) {
    const values = await topLevelValues(join(dir, name));
    if (values.SOPInstanceUID !== undefined)
      bySopInstance.set(values.SOPInstanceUID, join(dir, name));
  }
  return bySopInstance;
}

describe('C-FIND with findscu', () => {
  it('finds a study by Patient ID at STUDY level of Study Root, every requested key answered', async () => {
    const { run, responses } = await find('-S', [
      'QueryRetrieveLevel=STUDY',
      `PatientID=${MR.patientId}`,
      'PatientName',
      'StudyInstanceUID',
      'StudyDate',
      'ModalitiesInStudy',
      'NumberOfStudyRelatedSeries',
      'NumberOfStudyRelatedInstances',
      'NameOfPhysiciansReadingStudy',
    ]);
    expect(run.exitCode, run.output).toBe(0);
    expect(responses).toHaveLength(1);
    expect(responses[0]).toMatchObject({
      QueryRetrieveLevel: 'STUDY',
      PatientID: MR.patientId,
      PatientName: MR.patientName,
      StudyInstanceUID: MR.studyUid,
      StudyDate: '20040826',
      ModalitiesInStudy: 'MR',
      NumberOfStudyRelatedSeries: '1',
      NumberOfStudyRelatedInstances: '1',
      // Requested, not in the index: returned empty.
      NameOfPhysiciansReadingStudy: '',
    });
  });

  it('finds patients by a name wildcard at PATIENT level of Patient Root, with their counts', async () => {
    const { run, responses } = await find('-P', [
      'QueryRetrieveLevel=PATIENT',
      'PatientName=CompressedSamples*',
      'PatientID',
      'NumberOfPatientRelatedStudies',
      'NumberOfPatientRelatedInstances',
    ]);
    expect(run.exitCode, run.output).toBe(0);
    const byId = Object.fromEntries(responses.map((r) => [r.PatientID, r]));
    expect(Object.keys(byId).sort()).toEqual([CT.patientId, MR.patientId, NM.patientId].sort());
    expect(byId[NM.patientId]).toMatchObject({
      NumberOfPatientRelatedStudies: '1',
      NumberOfPatientRelatedInstances: '2',
    });
  });

  it('matches person names without regard to case, and ? as one character', async () => {
    const { responses } = await find('-P', [
      'QueryRetrieveLevel=PATIENT',
      'PatientName=compressedsamples^m?1',
      'PatientID',
    ]);
    expect(responses.map((r) => r.PatientID)).toEqual([MR.patientId]);
  });

  it('matches a date range, closed and open-ended', async () => {
    const closed = await find('-S', [
      'QueryRetrieveLevel=STUDY',
      'StudyDate=20040101-20041231',
      'PatientID',
    ]);
    expect(closed.responses.map((r) => r.PatientID).sort()).toEqual(
      [CT.patientId, MR.patientId, NM.patientId].sort(),
    );
    const open = await find('-S', ['QueryRetrieveLevel=STUDY', 'StudyDate=20100101-', 'PatientID']);
    expect(open.responses.map((r) => r.PatientID).sort()).toEqual(['BENCH001', SC.patientId]);
  });

  it('matches a list of UIDs', async () => {
    const { responses } = await find('-S', [
      'QueryRetrieveLevel=STUDY',
      `StudyInstanceUID=${CT.studyUid}\\${SC.studyUid}`,
      'PatientID',
    ]);
    expect(responses.map((r) => r.PatientID).sort()).toEqual([CT.patientId, SC.patientId].sort());
  });

  it('answers at SERIES and IMAGE level under a study, in each uncompressed transfer syntax', async () => {
    for (const syntax of ['-xe', '-xi', '-xb']) {
      const series = await find(
        '-S',
        [
          'QueryRetrieveLevel=SERIES',
          `StudyInstanceUID=${NM.studyUid}`,
          'SeriesInstanceUID',
          'Modality',
          'NumberOfSeriesRelatedInstances',
        ],
        [syntax],
      );
      expect(series.run.exitCode, series.run.output).toBe(0);
      expect(series.responses).toEqual([
        expect.objectContaining({
          SeriesInstanceUID: NM.seriesUid,
          Modality: 'NM',
          NumberOfSeriesRelatedInstances: '2',
        }),
      ]);
    }
    const images = await find('-P', [
      'QueryRetrieveLevel=IMAGE',
      `PatientID=${NM.patientId}`,
      `StudyInstanceUID=${NM.studyUid}`,
      `SeriesInstanceUID=${NM.seriesUid}`,
      'SOPInstanceUID',
      'SOPClassUID',
    ]);
    expect(images.responses.map((r) => r.SOPInstanceUID).sort()).toEqual(
      [NM.jpegLossyUid, NM.jpeg2000Uid].sort(),
    );
    expect(images.responses[0]?.SOPClassUID).toBe('1.2.840.10008.5.1.4.1.1.7');
  });

  it('answers a SERIES query without the study it belongs to (hierarchical query), matching only those series', async () => {
    const { run, responses } = await find('-S', [
      'QueryRetrieveLevel=SERIES',
      'Modality=MR',
      'SeriesInstanceUID',
      'StudyInstanceUID',
    ]);
    expect(run.exitCode, run.output).toBe(0);
    expect(responses).toEqual([
      expect.objectContaining({
        Modality: 'MR',
        SeriesInstanceUID: MR.seriesUid,
        StudyInstanceUID: MR.studyUid,
      }),
    ]);
    expect(run.output).toMatch(/Final Find Response \(Success\)/);
  });

  it('ignores a series key in a STUDY query, answering it empty with 0xFF01', async () => {
    const { run, responses } = await find('-S', [
      'QueryRetrieveLevel=STUDY',
      `PatientID=${NM.patientId}`,
      'Modality=MR',
      'StudyInstanceUID',
    ]);
    expect(run.exitCode, run.output).toBe(0);
    // The NM study, though Modality=MR: the key is not matched at the STUDY level.
    expect(responses).toEqual([
      expect.objectContaining({ StudyInstanceUID: NM.studyUid, Modality: '' }),
    ]);
    expect(run.output).toMatch(/Pending: WarningUnsupportedOptionalKeys/);
    expect(run.output).toMatch(/Final Find Response \(Success\)/);
  });

  it('stops at C-CANCEL with status Cancel (0xFE00)', async () => {
    const { run, responses } = await find(
      '-S',
      [
        'QueryRetrieveLevel=IMAGE',
        `StudyInstanceUID=${many.studyUid}`,
        `SeriesInstanceUID=${many.seriesUid}`,
        'SOPInstanceUID',
      ],
      ['--cancel', '1'],
    );
    expect(responses.length).toBeGreaterThanOrEqual(1);
    expect(responses.length).toBeLessThan(MANY);
    expect(run.output).toMatch(
      /Final Find Response \(Cancel: MatchingTerminatedDueToCancelRequest\)/,
    );
  });
});

/** A Latin-1 name (ISO_IR 100), as a European modality stores it. */
const LATIN1 = { patientId: 'LATIN1', patientName: 'Müller^Jörg' };

/**
 * Stores a copy of CT_small with a Latin-1 Patient Name (ISO_IR 100), new UIDs and a Study Date
 * outside the other tests' ranges.
 */
async function storeLatin1Instance(): Promise<void> {
  const dir = await freshDir('latin1');
  const path = join(dir, 'latin1.dcm');
  const name = join(dir, 'name.txt');
  await copyFile(join(TESTDATA_DICOM, 'CT_small.dcm'), path);
  // Padded to even length, as dcmodify wants a value from a file.
  await writeFile(name, Buffer.from(`${LATIN1.patientName} `, 'latin1'));
  const modified = await runTool('dcmodify', [
    '-nb',
    '-gst',
    '-gse',
    '-gin',
    '-i',
    '(0008,0005)=ISO_IR 100',
    '-m',
    `PatientID=${LATIN1.patientId}`,
    '-m',
    'StudyDate=19990101',
    '-mf',
    `PatientName=${name}`,
    path,
  ]);
  expect(modified.exitCode, modified.output).toBe(0);
  const stored = await runTool('storescu', [
    '-aec',
    server.aeTitle,
    ...SCU_TIMEOUTS,
    '127.0.0.1',
    String(server.port),
    path,
  ]);
  expect(stored.exitCode, stored.output).toBe(0);
}

/** The raw bytes of a top-level element of a response file findscu wrote. */
async function rawValue(path: string, tag: number): Promise<Buffer | undefined> {
  const bytes = await readFile(path);
  const meta = readFileMeta(bytes);
  const syntax = transferSyntaxProperties(
    meta.transferSyntaxUid ?? TransferSyntax.ExplicitVRLittleEndian,
  )!;
  return readIdentifier(bytes.subarray(meta.datasetOffset), syntax).find((e) => e.tag === tag)
    ?.value;
}

describe('C-FIND character sets with findscu', () => {
  it('answers in ISO_IR 100 when asked in it and every value fits, else in ISO_IR 192', async () => {
    await storeLatin1Instance();
    const keys = ['QueryRetrieveLevel=STUDY', 'PatientName=M*ller*', 'PatientID', 'StudyDate'];
    const out = await freshDir('find-latin1');
    const latin1 = await runTool('findscu', [
      '-S',
      '-aec',
      server.aeTitle,
      ...SCU_TIMEOUTS,
      '-X',
      '-od',
      out,
      '-k',
      'SpecificCharacterSet=ISO_IR 100',
      ...keys.flatMap((key) => ['-k', key]),
      '127.0.0.1',
      String(server.port),
    ]);
    expect(latin1.exitCode, latin1.output).toBe(0);
    const files = (await readdir(out)).filter((f) => f.startsWith('rsp'));
    expect(files, latin1.output).toHaveLength(1);
    const response = join(out, files[0]!);
    expect(await topLevelValues(response)).toMatchObject({
      SpecificCharacterSet: 'ISO_IR 100',
      PatientID: LATIN1.patientId,
    });
    // 'Müller^Jörg' is 11 Latin-1 bytes, padded to 12.
    expect(await rawValue(response, 0x00100010)).toEqual(
      Buffer.from(`${LATIN1.patientName} `, 'latin1'),
    );
    const { responses } = await find('-S', keys);
    expect(responses).toEqual([
      expect.objectContaining({ SpecificCharacterSet: 'ISO_IR 192', PatientID: LATIN1.patientId }),
    ]);
  });
});

/**
 * Starts a DCMTK storescp called `aeTitle` (bit-preserving; every syntax unless `syntaxes` says
 * otherwise) writing into a fresh folder, known to the server as a move destination; runs `work`
 * with that folder, then stops it.
 */
async function withMoveDestination(
  aeTitle: string,
  dirName: string,
  work: (dir: string) => Promise<void>,
  syntaxes: readonly string[] = ['+xa'],
): Promise<void> {
  const dir = await freshDir(dirName);
  const storescp = await startStorescp(dir, ['-aet', aeTitle, '+B', ...syntaxes]);
  destinations.set(aeTitle, { host: '127.0.0.1', port: storescp.port });
  try {
    await work(dir);
  } finally {
    await storescp.stop();
  }
}

/** movescu as MOVESCU asking the server to move what `keys` match to `destination`. */
function movescu(
  destination: string,
  options: readonly string[],
  keys: readonly string[],
  cwd?: string,
): Promise<ToolRun> {
  return runTool(
    'movescu',
    [
      ...options,
      '-aet',
      'MOVESCU',
      '-aec',
      server.aeTitle,
      '-aem',
      destination,
      ...SCU_TIMEOUTS,
      ...keys.flatMap((key) => ['-k', key]),
      '127.0.0.1',
      String(server.port),
    ],
    30_000,
    cwd,
  );
}

describe('C-MOVE with movescu', () => {
  it('moves a study to a storescp destination: every file arrives, data set bytes identical', async () => {
    await withMoveDestination('MOVE_DEST', 'move-dest', async (dir) => {
      const run = await movescu(
        'MOVE_DEST',
        ['-v', '-S'],
        ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${NM.studyUid}`],
      );
      expect(run.exitCode, run.output).toBe(0);
      const received = await receivedFiles(dir);
      expect([...received.keys()].sort()).toEqual([NM.jpegLossyUid, NM.jpeg2000Uid].sort());
      for (const [uid, path] of received) {
        expect((await datasetOf(path)).equals(await datasetOf(await storedPath(uid)))).toBe(true);
      }
    });
  });

  it("moves a study by its Study Instance UID alone in movescu's default Patient Root", async () => {
    await withMoveDestination('MOVE_DEFAULT', 'move-default-root', async (dir) => {
      // No -P or -S: movescu proposes Patient Root, and no Patient ID is given.
      const run = await movescu(
        'MOVE_DEFAULT',
        ['-d'],
        ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${NM.studyUid}`],
      );
      expect(run.exitCode, run.output).toBe(0);
      expect(run.output).toMatch(/Abstract Syntax: =MOVEPatientRootQueryRetrieveInformationModel/);
      expect(run.output).toMatch(/DIMSE Status\s*: 0x0000/);
      const received = await receivedFiles(dir);
      expect([...received.keys()].sort()).toEqual([NM.jpegLossyUid, NM.jpeg2000Uid].sort());
    });
  });

  it('fails only the sub-operation of an index row whose file lies outside the storage root', async () => {
    await withMoveDestination('MOVE_OUTSIDE', 'move-outside', async (dir) => {
      const row = () =>
        server.database.db.updateTable('instances').where('sop_instance_uid', '=', NM.jpegLossyUid);
      const original = (await indexedInstances(server)).find(
        (r) => r.sop_instance_uid === NM.jpegLossyUid,
      )!.file_path;
      await row().set({ file_path: '../../outside.dcm' }).execute();
      try {
        const run = await movescu(
          'MOVE_OUTSIDE',
          ['-d', '-S'],
          ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${NM.studyUid}`],
        );
        // The final response: one sent, one failed, 0xB000; the association was not failed whole.
        expect(run.output).toMatch(/Completed Suboperations\s*: 1\s+D: Failed Suboperations\s*: 1/);
        expect(run.output).toMatch(/DIMSE Status\s*: 0xb000/);
        const received = await receivedFiles(dir);
        expect([...received.keys()], run.output).toEqual([NM.jpeg2000Uid]);
      } finally {
        await row().set({ file_path: original }).execute();
      }
    });
  });

  it("moves an instance to movescu's own port (Patient Root, IMAGE level)", async () => {
    const dir = await freshDir('move-self');
    const port = await freePort();
    destinations.set('MOVESCU', { host: '127.0.0.1', port });
    const run = await movescu(
      'MOVESCU',
      ['-v', '-P', '+P', String(port), '+B'],
      [
        'QueryRetrieveLevel=IMAGE',
        `PatientID=${MR.patientId}`,
        `StudyInstanceUID=${MR.studyUid}`,
        `SeriesInstanceUID=${MR.seriesUid}`,
        `SOPInstanceUID=${MR.sopUid}`,
      ],
      // movescu writes what it receives to its working directory, whatever -od says.
      dir,
    );
    expect(run.exitCode, run.output).toBe(0);
    const received = await receivedFiles(dir);
    expect([...received.keys()], run.output).toEqual([MR.sopUid]);
    expect(
      (await datasetOf(received.get(MR.sopUid)!)).equals(
        await datasetOf(await storedPath(MR.sopUid)),
      ),
    ).toBe(true);
  });

  it('converts Explicit to Implicit VR Little Endian for a C-MOVE destination that takes only implicit', async () => {
    await withMoveDestination(
      'IMPLICIT',
      'move-implicit',
      async (dir) => {
        const run = await movescu(
          'IMPLICIT',
          ['-v', '-S'],
          ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${MR.studyUid}`],
        );
        expect(run.exitCode, run.output).toBe(0);
        const path = (await receivedFiles(dir)).get(MR.sopUid)!;
        expect(readFileMeta(await readFile(path)).transferSyntaxUid, run.output).toBe(
          TransferSyntax.ImplicitVRLittleEndian,
        );
        const dump = async (file: string) => {
          const result = await runTool('dcmdump', ['-q', '-Un', file]);
          return datasetContent(result.stdout);
        };
        expect(await dump(path)).toEqual(await dump(await storedPath(MR.sopUid)));
      },
      ['+xi'],
    );
  });

  it('stops a C-MOVE at C-CANCEL after the current sub-operation (0xFE00)', async () => {
    await withMoveDestination('CANCEL_DEST', 'move-cancel', async (dir) => {
      const run = await movescu(
        'CANCEL_DEST',
        ['-v', '-S', '--cancel', '1'],
        [
          'QueryRetrieveLevel=SERIES',
          `StudyInstanceUID=${many.studyUid}`,
          `SeriesInstanceUID=${many.seriesUid}`,
        ],
      );
      expect(run.output).toMatch(/Final Move Response \(Cancel/);
      const received = (await readdir(dir)).length;
      expect(received, run.output).toBeGreaterThanOrEqual(1);
      expect(received).toBeLessThan(MANY);
    });
  });

  it('answers an unknown destination with Move Destination Unknown (0xA801)', async () => {
    const run = await movescu(
      'NOWHERE',
      ['-v', '-S'],
      ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${CT.studyUid}`],
    );
    expect(run.output).toMatch(/Final Move Response \(Refused: MoveDestinationUnknown\)/);
  });
});

/** A C-MOVE over our own association: the final response. */
async function moveOver(
  channel: DimseChannel,
  destination: string,
  studyUid: string,
): Promise<IncomingResponse> {
  const sopClass = SopClass.StudyRootQueryRetrieveInformationModelMove;
  const context = channel.findContext(sopClass)!;
  const identifier = writeIdentifier(
    [
      { tag: 0x00080052, vr: 'CS', value: encodeValue('STUDY', 'CS') },
      { tag: 0x0020000d, vr: 'UI', value: encodeValue(studyUid, 'UI') },
    ],
    { isExplicitVr: true, isLittleEndian: true },
  );
  let last: IncomingResponse | undefined;
  for await (const response of channel.request(
    context.id,
    {
      commandField: CommandField.CMoveRq,
      affectedSopClassUid: sopClass,
      priority: Priority.Medium,
      moveDestination: destination,
      hasDataset: true,
    },
    identifier,
  )) {
    last = response;
  }
  return last!;
}

describe('C-MOVE to a destination that is down', () => {
  it('fails the sub-operations, says so in the final status, and the association goes on', async () => {
    const downPort = await freePort();
    destinations.set('DOWN_DEST', { host: '127.0.0.1', port: downPort });
    await withMoveDestination('UP_DEST', 'move-after-down', async () => {
      const association = await requestAssociation({
        host: '127.0.0.1',
        port: server.port,
        callingAeTitle: 'OUR_SCU',
        calledAeTitle: server.aeTitle,
        contexts: [
          {
            abstractSyntax: SopClass.StudyRootQueryRetrieveInformationModelMove,
            transferSyntaxes: [TransferSyntax.ExplicitVRLittleEndian],
          },
        ],
      });
      const channel = new DimseChannel(association, { dimseTimeoutMs: 20_000 });
      try {
        const failed = await moveOver(channel, 'DOWN_DEST', NM.studyUid);
        expect(failed.command.status).not.toBe(Status.Success);
        expect(failed.command.numberOfFailedSuboperations ?? 0).toBe(2);
        expect(failed.command.numberOfCompletedSuboperations ?? 0).toBe(0);
        const succeeded = await moveOver(channel, 'UP_DEST', CT.studyUid);
        expect(succeeded.command.status).toBe(Status.Success);
        expect(succeeded.command.numberOfCompletedSuboperations).toBe(1);
        await association.release();
      } finally {
        association.abort();
      }
    });
  });
});

describe('C-GET with getscu', () => {
  it('gets a study: the files are the stored ones, byte for byte in their data sets', async () => {
    const dir = await freshDir('get');
    const run = await runTool('getscu', [
      '-v',
      '-S',
      '-aet',
      'GETSCU',
      '-aec',
      server.aeTitle,
      '+B',
      '-od',
      dir,
      ...SCU_TIMEOUTS,
      '-k',
      'QueryRetrieveLevel=STUDY',
      '-k',
      `StudyInstanceUID=${SC.studyUid}`,
      '127.0.0.1',
      String(server.port),
    ]);
    // SC_rgb_rle is RLE: getscu proposes only the uncompressed syntaxes by default, so that
    // sub-operation fails (no conversion from a compressed syntax); the other arrives.
    const received = await receivedFiles(dir);
    expect(received.size, run.output).toBe(1);
    for (const [uid, path] of received) {
      expect((await datasetOf(path)).equals(await datasetOf(await storedPath(uid)))).toBe(true);
    }
    expect(run.output).toMatch(/Failed\s*(Sub-?operations)?\s*:\s*1|failed.*\b1\b/i);
  });

  it('gets a compressed instance over the syntax it is stored in when getscu proposes it', async () => {
    const dir = await freshDir('get-j2k');
    const run = await runTool('getscu', [
      '-v',
      '-P',
      '-aet',
      'GETSCU',
      '-aec',
      server.aeTitle,
      '+xw',
      '+B',
      '-od',
      dir,
      ...SCU_TIMEOUTS,
      '-k',
      'QueryRetrieveLevel=IMAGE',
      '-k',
      `PatientID=${NM.patientId}`,
      '-k',
      `StudyInstanceUID=${NM.studyUid}`,
      '-k',
      `SeriesInstanceUID=${NM.seriesUid}`,
      '-k',
      `SOPInstanceUID=${NM.jpeg2000Uid}`,
      '127.0.0.1',
      String(server.port),
    ]);
    expect(run.exitCode, run.output).toBe(0);
    const received = await receivedFiles(dir);
    expect([...received.keys()]).toEqual([NM.jpeg2000Uid]);
    const path = received.get(NM.jpeg2000Uid)!;
    expect(readFileMeta(await readFile(path)).transferSyntaxUid).toBe(TransferSyntax.JPEG2000);
    expect((await datasetOf(path)).equals(await datasetOf(await storedPath(NM.jpeg2000Uid)))).toBe(
      true,
    );
  });
});

/** The final response and the matches' Patient IDs of a Patient Root C-FIND at STUDY level. */
async function findStudiesOver(
  channel: DimseChannel,
  patientId: string,
): Promise<{ status: number | undefined; patientIds: string[] }> {
  const sopClass = SopClass.PatientRootQueryRetrieveInformationModelFind;
  const context = channel.findContext(sopClass)!;
  const encoding = { isExplicitVr: true, isLittleEndian: true };
  const identifier = writeIdentifier(
    [
      { tag: 0x00080052, vr: 'CS', value: encodeValue('STUDY', 'CS') },
      { tag: 0x00100020, vr: 'LO', value: encodeValue(patientId, 'LO') },
      { tag: 0x0020000d, vr: 'UI', value: Buffer.alloc(0) },
    ],
    encoding,
  );
  const patientIds: string[] = [];
  let status: number | undefined;
  for await (const response of channel.request(
    context.id,
    {
      commandField: CommandField.CFindRq,
      affectedSopClassUid: sopClass,
      priority: Priority.Medium,
      hasDataset: true,
    },
    identifier,
  )) {
    status = response.command.status;
    if (response.dataset === undefined || status === Status.Success) continue;
    const id = readIdentifier(response.dataset, encoding).find((e) => e.tag === 0x00100020);
    if (id !== undefined) patientIds.push(id.value.toString('latin1').trim());
  }
  return { status, patientIds };
}

describe('relational queries (SOP Class Extended Negotiation)', () => {
  it('are granted when proposed, and match a wildcard on a unique key above the level', async () => {
    const sopClassUid = SopClass.PatientRootQueryRetrieveInformationModelFind;
    const open = async (isRelational: boolean) => {
      const association = await requestAssociation({
        host: '127.0.0.1',
        port: server.port,
        callingAeTitle: 'OUR_SCU',
        calledAeTitle: server.aeTitle,
        contexts: [
          {
            abstractSyntax: sopClassUid,
            transferSyntaxes: [TransferSyntax.ExplicitVRLittleEndian],
          },
        ],
        ...(isRelational && {
          extendedNegotiations: [
            { sopClassUid, serviceClassApplicationInformation: Uint8Array.of(1) },
          ],
        }),
      });
      return { association, channel: new DimseChannel(association, { dimseTimeoutMs: 10_000 }) };
    };
    const relational = await open(true);
    try {
      const answer =
        relational.association.acceptance?.userInformation.sopClassExtendedNegotiations;
      expect(answer).toEqual([
        { sopClassUid, serviceClassApplicationInformation: Uint8Array.of(1) },
      ]);
      const found = await findStudiesOver(relational.channel, '4MR*');
      expect(found.status).toBe(Status.Success);
      expect(found.patientIds).toEqual([MR.patientId]);
      await relational.association.release();
    } finally {
      relational.association.abort();
    }
    // Without it, a hierarchical query needs the Patient ID above STUDY as a single value.
    const hierarchical = await open(false);
    try {
      const found = await findStudiesOver(hierarchical.channel, '4MR*');
      expect(found.status).toBe(Status.DataSetDoesNotMatchSopClass);
      expect(found.patientIds).toEqual([]);
      await hierarchical.association.release();
    } finally {
      hierarchical.association.abort();
    }
  });
});
