/**
 * The C-STORE SCP end to end, in-process, driven by our own SCU (requestAssociation +
 * DimseChannel) so that it can send what no sane sender would: data sets that do not match
 * their command (0xA900, PS3.4 B.2.3), that cannot be parsed or nest 10,000 sequences deep,
 * whose UIDs would make paths (0xC000), that do not fit the storage limit (0xA700), that repeat
 * a stored SOP Instance UID under each duplicate policy, and that stop part-way when the
 * association is aborted. After every failure nothing is on disk, nothing is indexed, the
 * incoming folder is empty and the association goes on.
 *
 * Layer: integration test. 127.0.0.1, port 0, SQLite in a temporary directory; every wait has
 * a deadline.
 */

import { readdir, readFile } from 'node:fs/promises';
import { isAbsolute, join, sep } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { buildFileMeta, readFileMeta } from '../../src/dicom/part10.js';
import type { DatasetToken } from '../../src/dicom/reader/dataset-reader.js';
import { TransferSyntax } from '../../src/dicom/transfer-syntax.js';
import { SopClass } from '../../src/dicom/uid.js';
import type { Vr } from '../../src/dicom/vr.js';
import { encodeTokens } from '../../src/dicom/writer/dataset-writer.js';
import type { Association } from '../../src/network/association/association.js';
import { requestAssociation } from '../../src/network/association/requestor.js';
import { DimseChannel } from '../../src/network/dimse/channel.js';
import { CommandField, type CommandSet, encodeCommand } from '../../src/network/dimse/command.js';
import { Status, statusCategory } from '../../src/network/dimse/status.js';
import { INCOMING_FOLDER } from '../../src/server/instance-store.js';
import { TEMP_SUFFIX } from '../../src/storage/atomic-writer.js';
import { POSTGRES_URL } from '../helpers/postgres.js';
import {
  type LogLine,
  type StoreServerOptions,
  type StoreTestServer,
  startStoreServer,
  waitFor,
} from '../helpers/server.js';
import { indexedInstances, storedFiles } from '../helpers/stored.js';
import { TESTDATA_DICOM } from '../helpers/testdata.js';
import { within } from '../helpers/wait.js';

const TESTDATA = TESTDATA_DICOM;
const MR_STORAGE = '1.2.840.10008.5.1.4.1.1.4';
const CT_STORAGE = '1.2.840.10008.5.1.4.1.1.2';
const SC_STORAGE = '1.2.840.10008.5.1.4.1.1.7';
const ROOT = '1.2.826.0.1.3680043.9.7777.30';
const SCU_AE = 'STORE_SCU';

/** image_dfl.dcm's attributes, as dcmdump shows them. */
const DEFLATED_FILE = {
  sopInstanceUid: '1.3.6.1.4.1.5962.1.1.0.0.0.977067309.6001.0',
  studyInstanceUid: '1.3.6.1.4.1.5962.1.2.0.977067310.6001.0',
  seriesInstanceUid: '1.3.6.1.4.1.5962.1.3.0.0.977067310.6001.0',
};

const Tag = {
  SpecificCharacterSet: 0x00080005,
  SOPClassUID: 0x00080016,
  SOPInstanceUID: 0x00080018,
  StudyDate: 0x00080020,
  Modality: 0x00080060,
  PatientName: 0x00100010,
  PatientID: 0x00100020,
  StudyInstanceUID: 0x0020000d,
  SeriesInstanceUID: 0x0020000e,
  InstanceNumber: 0x00200013,
  ContentSequence: 0x0040a730,
  PixelData: 0x7fe00010,
} as const;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

// ---- waiting with deadlines -------------------------------------------------------------------

// ---- data sets --------------------------------------------------------------------------------

type Field = readonly [tag: number, vr: Vr, value: string | Buffer];

/** A value padded to even length as its VR wants (UI with NUL, text with space). */
function paddedValue(vr: Vr, value: string | Buffer): Buffer {
  if (Buffer.isBuffer(value)) return value;
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length % 2 === 0) return bytes;
  return Buffer.concat([bytes, Buffer.from(vr === 'UI' ? '\0' : ' ')]);
}

/** The bytes of a flat data set (fields sorted by tag here). */
function encodeFields(fields: readonly Field[], isExplicitVr = true): Buffer {
  const tokens: DatasetToken[] = [...fields]
    .sort((a, b) => a[0] - b[0])
    .map(([tag, vr, value]) => {
      const bytes = paddedValue(vr, value);
      return { type: 'element', tag, vr, length: bytes.length, offset: 0, value: bytes };
    });
  return encodeTokens(tokens, { isExplicitVr, isLittleEndian: true });
}

interface InstanceSpec {
  readonly sopClassUid?: string;
  readonly sopInstanceUid: string;
  readonly studyInstanceUid?: string;
  readonly seriesInstanceUid?: string;
  readonly patientId?: string;
  readonly patientName?: string;
  readonly pixelBytes?: number;
}

/** The fields of a small MR instance; `omit` leaves tags out. */
function instanceFields(spec: InstanceSpec, omit: readonly number[] = []): Field[] {
  const fields: Field[] = [
    [Tag.SOPClassUID, 'UI', spec.sopClassUid ?? MR_STORAGE],
    [Tag.SOPInstanceUID, 'UI', spec.sopInstanceUid],
    [Tag.StudyDate, 'DA', '20260102'],
    [Tag.Modality, 'CS', 'MR'],
    [Tag.PatientName, 'PN', spec.patientName ?? 'Doe^Jane'],
    [Tag.PatientID, 'LO', spec.patientId ?? 'PID-1'],
    [Tag.StudyInstanceUID, 'UI', spec.studyInstanceUid ?? `${ROOT}.1`],
    [Tag.SeriesInstanceUID, 'UI', spec.seriesInstanceUid ?? `${ROOT}.1.1`],
    [Tag.InstanceNumber, 'IS', '1'],
    [Tag.PixelData, 'OW', Buffer.alloc(spec.pixelBytes ?? 512, 0x5a)],
  ];
  return fields.filter(([tag]) => !omit.includes(tag));
}

function instance(spec: InstanceSpec): Buffer {
  return encodeFields(instanceFields(spec));
}

/** A data set whose Content Sequence nests `depth` sequences, each in an undefined-length item. */
function deeplyNested(spec: InstanceSpec, depth: number): Buffer {
  const head = encodeFields(instanceFields(spec, [Tag.PixelData]));
  const open = Buffer.alloc(20);
  open.writeUInt16LE(Tag.ContentSequence >>> 16, 0);
  open.writeUInt16LE(Tag.ContentSequence & 0xffff, 2);
  open.write('SQ', 4, 'latin1');
  open.writeUInt32LE(0xffffffff, 8);
  open.writeUInt16LE(0xfffe, 12);
  open.writeUInt16LE(0xe000, 14);
  open.writeUInt32LE(0xffffffff, 16);
  const close = Buffer.alloc(16);
  close.writeUInt16LE(0xfffe, 0);
  close.writeUInt16LE(0xe00d, 2);
  close.writeUInt16LE(0xfffe, 8);
  close.writeUInt16LE(0xe0dd, 10);
  return Buffer.concat([
    head,
    ...Array.from({ length: depth }, () => open),
    ...Array.from({ length: depth }, () => close),
  ]);
}

/** Deterministic pseudo-random bytes. */
function noise(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let state = seed;
  for (let i = 0; i < length; i++) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    out[i] = state >>> 16;
  }
  return out;
}

// ---- server and SCU ---------------------------------------------------------------------------

async function startServer(options: StoreServerOptions = {}): Promise<StoreTestServer> {
  const server = await startStoreServer(options);
  if (options.databaseUrl === undefined) {
    cleanups.push(() => server.stop());
    return server;
  }
  // The helper makes a fresh PostgreSQL schema; it goes when the test ends.
  const { rows: found } = await sql<{ schema: string }>`select current_schema() as schema`.execute(
    server.database.db,
  );
  const schema = found[0]!.schema;
  cleanups.push(async () => {
    await server.stop();
    const client = new pg.Client({ connectionString: options.databaseUrl });
    await client.connect();
    try {
      await client.query(`drop schema if exists ${schema} cascade`);
    } finally {
      await client.end();
    }
  });
  return server;
}

/** The contexts our SCU proposes: one transfer syntax each, so the test picks the encoding. */
const PROPOSED = [
  [MR_STORAGE, TransferSyntax.ExplicitVRLittleEndian],
  [MR_STORAGE, TransferSyntax.ImplicitVRLittleEndian],
  [CT_STORAGE, TransferSyntax.ExplicitVRLittleEndian],
  [SC_STORAGE, TransferSyntax.ExplicitVRLittleEndian],
  [SC_STORAGE, TransferSyntax.DeflatedExplicitVRLittleEndian],
  [SopClass.Verification, TransferSyntax.ExplicitVRLittleEndian],
] as const;

interface Scu {
  readonly association: Association;
  readonly channel: DimseChannel;
  contextId(abstractSyntax: string, transferSyntax?: string): number;
}

async function openScu(server: StoreTestServer): Promise<Scu> {
  const association = await within(
    requestAssociation({
      host: '127.0.0.1',
      port: server.port,
      callingAeTitle: SCU_AE,
      calledAeTitle: server.aeTitle,
      contexts: PROPOSED.map(([abstractSyntax, transferSyntax]) => ({
        abstractSyntax,
        transferSyntaxes: [transferSyntax],
      })),
    }),
    5_000,
    'association',
  );
  cleanups.push(async () => {
    association.abort();
    await within(association.closed, 5_000, 'close of the SCU association');
  });
  const channel = new DimseChannel(association, { dimseTimeoutMs: 15_000 });
  return {
    association,
    channel,
    contextId(abstractSyntax, transferSyntax = TransferSyntax.ExplicitVRLittleEndian) {
      const context = channel.findContext(abstractSyntax, transferSyntax);
      if (context === undefined) throw new Error(`no context for ${abstractSyntax}`);
      return context.id;
    },
  };
}

interface StoreRequest {
  readonly sopClassUid?: string;
  readonly sopInstanceUid: string;
  readonly dataset: Buffer;
  readonly transferSyntax?: string;
}

/** Sends one C-STORE-RQ and returns the final response's command. */
async function store(scu: Scu, request: StoreRequest): Promise<CommandSet> {
  const sopClassUid = request.sopClassUid ?? MR_STORAGE;
  const collect = async () => {
    const responses: CommandSet[] = [];
    for await (const response of scu.channel.request(
      scu.contextId(sopClassUid, request.transferSyntax),
      {
        commandField: CommandField.CStoreRq,
        affectedSopClassUid: sopClassUid,
        affectedSopInstanceUid: request.sopInstanceUid,
        priority: 0,
        hasDataset: true,
      },
      request.dataset,
    )) {
      responses.push(response.command);
    }
    return responses;
  };
  const responses = await within(collect(), 20_000, 'C-STORE response');
  expect(responses).toHaveLength(1);
  return responses[0]!;
}

/** The association still serves requests: a C-ECHO succeeds. */
async function expectAlive(scu: Scu): Promise<void> {
  const collect = async () => {
    const statuses: (number | undefined)[] = [];
    for await (const response of scu.channel.request(scu.contextId(SopClass.Verification), {
      commandField: CommandField.CEchoRq,
      affectedSopClassUid: SopClass.Verification,
      hasDataset: false,
    })) {
      statuses.push(response.command.status);
    }
    return statuses;
  };
  expect(await within(collect(), 5_000, 'C-ECHO response')).toEqual([Status.Success]);
}

// ---- what is on disk and in the index ---------------------------------------------------------

/** Temporary files of receptions in progress (or left behind), not the spares opened ahead. */
async function incoming(server: StoreTestServer): Promise<string[]> {
  const spares = new Set(await server.store.spareTempPaths());
  const entries = await readdir(join(server.storageRoot, INCOMING_FOLDER), {
    recursive: true,
    withFileTypes: true,
  });
  return entries
    .map((entry) => join(entry.parentPath, entry.name))
    .filter((path) => path.endsWith(TEMP_SUFFIX) && !spares.has(path));
}

/** Nothing was stored: no file, no index row, nothing left in the incoming folder. */
async function expectNothingStored(server: StoreTestServer): Promise<void> {
  expect(await storedFiles(server)).toEqual([]);
  expect(await incoming(server)).toEqual([]);
  expect(await server.index.counts()).toEqual({ patients: 0, studies: 0, series: 0, instances: 0 });
}

/** The data set bytes of a stored file (what follows its file meta group). */
async function storedDataset(server: StoreTestServer, filePath: string): Promise<Buffer> {
  const bytes = await readFile(join(server.storageRoot, filePath));
  return bytes.subarray(readFileMeta(bytes).datasetOffset);
}

function dump(logs: readonly LogLine[]): string {
  return logs.map((line) => JSON.stringify(line)).join('\n');
}

// ---- the tests --------------------------------------------------------------------------------

describe('C-STORE: a data set that does not match its command', () => {
  it('answers 0xA900 when the SOP Instance UID differs, stores nothing and goes on', async () => {
    const server = await startServer();
    const scu = await openScu(server);
    const response = await store(scu, {
      sopInstanceUid: `${ROOT}.1.1.1`,
      dataset: instance({ sopInstanceUid: `${ROOT}.1.1.2` }),
    });
    expect(response.status).toBe(Status.DataSetDoesNotMatchSopClass);
    expect(response.errorComment?.length ?? 0).toBeLessThanOrEqual(64);
    await expectNothingStored(server);
    await expectAlive(scu);
  });

  it('answers 0xA900 when the SOP Class differs, stores nothing and goes on', async () => {
    const server = await startServer();
    const scu = await openScu(server);
    const response = await store(scu, {
      sopInstanceUid: `${ROOT}.1.1.1`,
      dataset: instance({ sopInstanceUid: `${ROOT}.1.1.1`, sopClassUid: CT_STORAGE }),
    });
    expect(response.status).toBe(Status.DataSetDoesNotMatchSopClass);
    await expectNothingStored(server);
    const next = await store(scu, {
      sopInstanceUid: `${ROOT}.1.1.1`,
      dataset: instance({ sopInstanceUid: `${ROOT}.1.1.1` }),
    });
    expect(next.status).toBe(Status.Success);
  });

  it('answers 0xA900 when the data set has no SOP Instance UID', async () => {
    const server = await startServer();
    const scu = await openScu(server);
    const response = await store(scu, {
      sopInstanceUid: `${ROOT}.1.1.1`,
      dataset: encodeFields(
        instanceFields({ sopInstanceUid: `${ROOT}.1.1.1` }, [Tag.SOPInstanceUID]),
      ),
    });
    expect(response.status).toBe(Status.DataSetDoesNotMatchSopClass);
    await expectNothingStored(server);
    await expectAlive(scu);
  });
});

describe('C-STORE: a data set that cannot be understood', () => {
  const uid = `${ROOT}.1.1.1`;
  const valid = instance({ sopInstanceUid: uid });
  const badVr = Buffer.from(valid);
  // The VR of the first element (SOP Class UID) becomes "ZZ".
  badVr.write('ZZ', 4, 'latin1');
  const overrunning = Buffer.concat([
    encodeFields(instanceFields({ sopInstanceUid: uid }, [Tag.PixelData])).subarray(0, 40),
    Buffer.from([0x10, 0x00, 0x10, 0x00, 0x50, 0x4e, 0xf0, 0xff, 0x41, 0x42]),
  ]);

  it.each([
    ['an unknown VR', badVr, TransferSyntax.ExplicitVRLittleEndian, MR_STORAGE],
    [
      'an element longer than the data set',
      overrunning,
      TransferSyntax.ExplicitVRLittleEndian,
      MR_STORAGE,
    ],
    [
      'a data set cut inside an element',
      valid.subarray(0, valid.length - 100),
      TransferSyntax.ExplicitVRLittleEndian,
      MR_STORAGE,
    ],
    ['random bytes', noise(4_000, 7), TransferSyntax.ExplicitVRLittleEndian, MR_STORAGE],
    [
      'random bytes as Implicit VR',
      noise(4_000, 11),
      TransferSyntax.ImplicitVRLittleEndian,
      MR_STORAGE,
    ],
    [
      'bytes that do not inflate',
      noise(4_000, 13),
      TransferSyntax.DeflatedExplicitVRLittleEndian,
      SC_STORAGE,
    ],
  ])(
    'answers 0xC000 for %s and leaves nothing behind',
    async (_what, dataset, transferSyntax, sopClassUid) => {
      const server = await startServer();
      const scu = await openScu(server);
      const response = await store(scu, {
        sopClassUid,
        sopInstanceUid: uid,
        dataset,
        transferSyntax,
      });
      expect(response.status, dump(server.logs)).toBe(Status.CannotUnderstand);
      await expectNothingStored(server);
      await expectAlive(scu);
    },
  );

  it('answers 0xC000 for sequences nested 10,000 deep, and the server stays up', async () => {
    const server = await startServer();
    const scu = await openScu(server);
    const response = await store(scu, {
      sopInstanceUid: uid,
      dataset: deeplyNested({ sopInstanceUid: uid }, 10_000),
    });
    expect(response.status).toBe(Status.CannotUnderstand);
    await expectNothingStored(server);
    await expectAlive(scu);
    const other = await openScu(server);
    const next = await store(other, { sopInstanceUid: uid, dataset: valid });
    expect(next.status).toBe(Status.Success);
  });

  it('stores sequences nested within the limit', async () => {
    const server = await startServer();
    const scu = await openScu(server);
    const response = await store(scu, {
      sopInstanceUid: uid,
      dataset: deeplyNested({ sopInstanceUid: uid }, 20),
    });
    expect(response.status, dump(server.logs)).toBe(Status.Success);
    expect(await storedFiles(server)).toHaveLength(1);
  });
});

describe('C-STORE: UIDs and values that would make paths', () => {
  const invalidUids = [
    ['a path climbing out', '../../etc'],
    ['letters', 'abc'],
    ['65 digits', '1'.repeat(65)],
    ['a slash', '1.2/3'],
  ] as const;

  it.each(invalidUids)(
    'refuses a Study Instance UID with %s: 0xC000, nothing stored',
    async (_what, bad) => {
      const server = await startServer({ structure: 'study' });
      const scu = await openScu(server);
      const uid = `${ROOT}.1.1.1`;
      const response = await store(scu, {
        sopInstanceUid: uid,
        dataset: instance({ sopInstanceUid: uid, studyInstanceUid: bad }),
      });
      expect(response.status).toBe(Status.CannotUnderstand);
      await expectNothingStored(server);
      await expectAlive(scu);
    },
  );

  it.each(invalidUids)(
    'refuses a Series Instance UID with %s: 0xC000, nothing stored',
    async (_what, bad) => {
      const server = await startServer({ structure: 'series' });
      const scu = await openScu(server);
      const uid = `${ROOT}.1.1.1`;
      const response = await store(scu, {
        sopInstanceUid: uid,
        dataset: instance({ sopInstanceUid: uid, seriesInstanceUid: bad }),
      });
      expect(response.status).toBe(Status.CannotUnderstand);
      await expectNothingStored(server);
      await expectAlive(scu);
    },
  );

  it('refuses a SOP Instance UID that climbs out of the root: 0xC000, nothing stored', async () => {
    const server = await startServer({ structure: 'flat' });
    const scu = await openScu(server);
    const bad = '../../../tmp/x';
    const response = await store(scu, {
      sopInstanceUid: bad,
      dataset: instance({ sopInstanceUid: bad }),
    });
    expect(response.status).toBe(Status.CannotUnderstand);
    await expectNothingStored(server);
    await expectAlive(scu);
  });

  it('stores UIDs with leading zeros and trailing NUL padding', async () => {
    const server = await startServer({ structure: 'series' });
    const scu = await openScu(server);
    const uid = '1.2.826.0.1.3680043.9.7777.030.01.001';
    const response = await store(scu, {
      sopInstanceUid: uid,
      dataset: instance({
        sopInstanceUid: uid,
        studyInstanceUid: '1.2.826.0.1.3680043.9.7777.030',
        seriesInstanceUid: '1.2.826.0.1.3680043.9.7777.030.01',
      }),
    });
    expect(response.status, dump(server.logs)).toBe(Status.Success);
    expect(await storedFiles(server)).toEqual([
      join(
        'PID-1',
        '1.2.826.0.1.3680043.9.7777.030',
        '1.2.826.0.1.3680043.9.7777.030.01',
        `${uid}.dcm`,
      ),
    ]);
  });

  it.each([
    ['a path climbing out', 'SQLite', '../../etc/passwd'],
    ['a slash and a NUL', 'SQLite', 'a/b\u0000c'],
    ['only dots', 'SQLite', '..'],
    ['a path climbing out', 'PostgreSQL', '../../etc/passwd'],
    ['a slash and a NUL', 'PostgreSQL', 'a/b\u0000c'],
  ])(
    'encodes a Patient ID with %s into one folder inside the root (%s index)',
    async (_what, database, patientId) => {
      const server = await startServer({
        structure: 'patient',
        ...(database === 'PostgreSQL' && { databaseUrl: POSTGRES_URL }),
      });
      const scu = await openScu(server);
      const uid = `${ROOT}.1.1.1`;
      const response = await store(scu, {
        sopInstanceUid: uid,
        dataset: instance({ sopInstanceUid: uid, patientId }),
      });
      expect(response.status, dump(server.logs)).toBe(Status.Success);
      const files = await storedFiles(server);
      expect(files).toHaveLength(1);
      const parts = files[0]!.split(sep);
      expect(parts).toHaveLength(2);
      expect(parts[1]).toBe(`${uid}.dcm`);
      expect(parts[0]!.startsWith('.')).toBe(false);
      expect([...parts[0]!].some((ch) => ch === '/' || ch === '\\' || ch < ' ')).toBe(false);
      const [row] = await indexedInstances(server);
      expect(row?.file_path).toBe(files[0]);
      expect(isAbsolute(row!.file_path)).toBe(false);
      // The index keeps the text, an embedded NUL (invalid in LO) as U+FFFD; the file its bytes.
      expect(row?.patient_id).toBe(patientId.replace(/\0/g, '\uFFFD'));
      // Nothing beside the storage root and the database in the data directory.
      const top = (await readdir(server.dataDir)).filter(
        (name) => !name.startsWith('dicom-server.sqlite'),
      );
      expect(top).toEqual(['storage']);
    },
  );
});

describe('C-STORE: storage full', () => {
  it('answers 0xA700 when an instance would pass the limit, with nothing partial on disk', async () => {
    const server = await startServer({ maxStorageBytes: 2_000 });
    const scu = await openScu(server);
    const uid = `${ROOT}.1.1.1`;
    const response = await store(scu, {
      sopInstanceUid: uid,
      dataset: instance({ sopInstanceUid: uid, pixelBytes: 4_000 }),
    });
    expect(response.status).toBe(Status.OutOfResources);
    await expectNothingStored(server);
    await expectAlive(scu);
    const small = await store(scu, {
      sopInstanceUid: uid,
      dataset: instance({ sopInstanceUid: uid, pixelBytes: 64 }),
    });
    expect(small.status, dump(server.logs)).toBe(Status.Success);
  });

  it('answers 0xA700 once the limit is reached, and counts only what was stored', async () => {
    const first = instance({ sopInstanceUid: `${ROOT}.1.1.1` });
    const firstSize =
      buildFileMeta({
        sopClassUid: MR_STORAGE,
        sopInstanceUid: `${ROOT}.1.1.1`,
        transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian,
        sourceAeTitle: SCU_AE,
      }).length + first.length;
    const server = await startServer({ maxStorageBytes: firstSize });
    const scu = await openScu(server);
    expect((await store(scu, { sopInstanceUid: `${ROOT}.1.1.1`, dataset: first })).status).toBe(
      Status.Success,
    );
    expect(server.store.usedBytes).toBe(firstSize);
    const response = await store(scu, {
      sopInstanceUid: `${ROOT}.1.1.2`,
      dataset: instance({ sopInstanceUid: `${ROOT}.1.1.2`, pixelBytes: 2 }),
    });
    expect(response.status).toBe(Status.OutOfResources);
    expect(await storedFiles(server)).toHaveLength(1);
    expect(await incoming(server)).toEqual([]);
    expect((await indexedInstances(server)).map((row) => row.sop_instance_uid)).toEqual([
      `${ROOT}.1.1.1`,
    ]);
    expect(server.store.usedBytes).toBe(firstSize);
    await expectAlive(scu);
  });
});

describe('C-STORE: storage full with cleanup enabled', () => {
  /** The file size of a small MR instance of this suite. */
  function fileSize(uid: string, dataset: Buffer): number {
    return (
      buildFileMeta({
        sopClassUid: MR_STORAGE,
        sopInstanceUid: uid,
        transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian,
        sourceAeTitle: SCU_AE,
      }).length + dataset.length
    );
  }

  it('removes the oldest whole studies older than the retention period to make room', async () => {
    const uids = [`${ROOT}.2.1.1`, `${ROOT}.2.1.2`, `${ROOT}.2.1.3`];
    // One study each: cleanup removes whole studies (test/integration/storage-lifecycle.test.ts).
    const datasets = uids.map((uid, i) =>
      instance({
        sopInstanceUid: uid,
        studyInstanceUid: `${ROOT}.2.9.${i}`,
        seriesInstanceUid: `${ROOT}.2.9.${i}.1`,
      }),
    );
    const size = fileSize(uids[0]!, datasets[0]!);
    // Room for two: the third makes the first go (retention 0 days: every instance is old enough).
    const server = await startServer({ maxStorageBytes: size * 2, cleanup: { retentionDays: 0 } });
    const scu = await openScu(server);
    for (const [i, uid] of uids.entries()) {
      expect((await store(scu, { sopInstanceUid: uid, dataset: datasets[i]! })).status).toBe(
        Status.Success,
      );
    }
    expect((await indexedInstances(server)).map((row) => row.sop_instance_uid).sort()).toEqual(
      uids.slice(1).sort(),
    );
    expect(await storedFiles(server)).toHaveLength(2);
    expect(server.store.usedBytes).toBe(size * 2);
    expect((await server.index.counts()).instances).toBe(2);
    await expectAlive(scu);
  });

  it('still answers 0xA700 when nothing is older than the retention period', async () => {
    const uids = [`${ROOT}.2.2.1`, `${ROOT}.2.2.2`];
    const datasets = uids.map((uid) => instance({ sopInstanceUid: uid }));
    const server = await startServer({
      maxStorageBytes: fileSize(uids[0]!, datasets[0]!),
      cleanup: { retentionDays: 30 },
    });
    const scu = await openScu(server);
    expect((await store(scu, { sopInstanceUid: uids[0]!, dataset: datasets[0]! })).status).toBe(
      Status.Success,
    );
    expect((await store(scu, { sopInstanceUid: uids[1]!, dataset: datasets[1]! })).status).toBe(
      Status.OutOfResources,
    );
    expect((await indexedInstances(server)).map((row) => row.sop_instance_uid)).toEqual([uids[0]]);
    expect(await incoming(server)).toEqual([]);
  });
});

describe('C-STORE: a SOP Instance UID already stored', () => {
  const uid = `${ROOT}.1.1.1`;
  const first = instance({ sopInstanceUid: uid, patientName: 'First^Sent' });
  const second = instance({ sopInstanceUid: uid, patientName: 'Second^Sent', pixelBytes: 1_024 });

  it('keep_first: answers success and leaves the first file unchanged', async () => {
    const server = await startServer({ duplicatePolicy: 'keep_first' });
    const scu = await openScu(server);
    expect((await store(scu, { sopInstanceUid: uid, dataset: first })).status).toBe(Status.Success);
    expect((await store(scu, { sopInstanceUid: uid, dataset: second })).status).toBe(
      Status.Success,
    );
    const found = await indexedInstances(server);
    expect(found).toHaveLength(1);
    expect(found[0]?.patient_name).toBe('First^Sent');
    expect((await storedDataset(server, found[0]!.file_path)).equals(first)).toBe(true);
    expect(await storedFiles(server)).toEqual([found[0]!.file_path]);
    expect(await incoming(server)).toEqual([]);
  });

  it('overwrite: stores the new bytes under one row', async () => {
    const server = await startServer({ duplicatePolicy: 'overwrite' });
    const scu = await openScu(server);
    expect((await store(scu, { sopInstanceUid: uid, dataset: first })).status).toBe(Status.Success);
    const usedAfterFirst = server.store.usedBytes;
    expect((await store(scu, { sopInstanceUid: uid, dataset: second })).status).toBe(
      Status.Success,
    );
    const found = await indexedInstances(server);
    expect(found).toHaveLength(1);
    expect(found[0]?.patient_name).toBe('Second^Sent');
    expect((await storedDataset(server, found[0]!.file_path)).equals(second)).toBe(true);
    expect(await storedFiles(server)).toEqual([found[0]!.file_path]);
    expect(found[0]?.file_size).toBe(usedAfterFirst + (second.length - first.length));
    expect(server.store.usedBytes).toBe(found[0]?.file_size);
    expect(await server.index.counts()).toEqual({
      patients: 1,
      studies: 1,
      series: 1,
      instances: 1,
    });
  });

  it('overwrite: moves the file and the row when the instance comes back in another series', async () => {
    const server = await startServer({ duplicatePolicy: 'overwrite', structure: 'series' });
    const scu = await openScu(server);
    expect((await store(scu, { sopInstanceUid: uid, dataset: first })).status).toBe(Status.Success);
    const moved = instance({ sopInstanceUid: uid, seriesInstanceUid: `${ROOT}.1.2` });
    expect((await store(scu, { sopInstanceUid: uid, dataset: moved })).status).toBe(Status.Success);
    const found = await indexedInstances(server);
    expect(found.map((row) => row.series_instance_uid)).toEqual([`${ROOT}.1.2`]);
    expect(await storedFiles(server)).toEqual([
      join('PID-1', `${ROOT}.1`, `${ROOT}.1.2`, `${uid}.dcm`),
    ]);
    expect((await storedDataset(server, found[0]!.file_path)).equals(moved)).toBe(true);
    expect(await server.index.counts()).toEqual({
      patients: 1,
      studies: 1,
      series: 1,
      instances: 1,
    });
  });

  it('reject: answers a failure status and leaves the first file unchanged', async () => {
    const server = await startServer({ duplicatePolicy: 'reject' });
    const scu = await openScu(server);
    expect((await store(scu, { sopInstanceUid: uid, dataset: first })).status).toBe(Status.Success);
    const response = await store(scu, { sopInstanceUid: uid, dataset: second });
    expect(statusCategory(response.status ?? 0)).toBe('failure');
    const found = await indexedInstances(server);
    expect(found).toHaveLength(1);
    expect(found[0]?.patient_name).toBe('First^Sent');
    expect((await storedDataset(server, found[0]!.file_path)).equals(first)).toBe(true);
    expect(await storedFiles(server)).toEqual([found[0]!.file_path]);
    expect(await incoming(server)).toEqual([]);
    await expectAlive(scu);
  });
});

describe('C-STORE: the same new SOP Instance UID from two associations at once', () => {
  /** Sends a C-STORE whose data set stops half-way until `release` resolves. */
  async function storeHeldHalfWay(scu: Scu, uid: string, dataset: Buffer, release: Promise<void>) {
    async function* halves(): AsyncGenerator<Buffer> {
      yield dataset.subarray(0, dataset.length / 2);
      await release;
      yield dataset.subarray(dataset.length / 2);
    }
    const statuses: (number | undefined)[] = [];
    for await (const response of scu.channel.request(
      scu.contextId(MR_STORAGE),
      {
        commandField: CommandField.CStoreRq,
        affectedSopClassUid: MR_STORAGE,
        affectedSopInstanceUid: uid,
        priority: 0,
        hasDataset: true,
      },
      halves(),
    )) {
      statuses.push(response.command.status);
    }
    return statuses;
  }

  for (const [policy, secondStatus, isFirstKept] of [
    ['keep_first', Status.Success, true],
    ['reject', Status.DuplicateSopInstance, true],
    ['overwrite', Status.Success, false],
  ] as const) {
    it(`${policy}: the one finishing second is handled by the duplicate policy, one file and one row remain`, async () => {
      const uid = `${ROOT}.3.1.1`;
      const first = instance({ sopInstanceUid: uid, pixelBytes: 64 });
      const second = instance({ sopInstanceUid: uid, pixelBytes: 128 });
      const server = await startServer({ duplicatePolicy: policy });
      const [a, b] = [await openScu(server), await openScu(server)];
      let release!: () => void;
      const held = storeHeldHalfWay(
        a,
        uid,
        second,
        new Promise<void>((resolve) => {
          release = resolve;
        }),
      );
      // The second reception is under way (it passed its duplicate check) when the first is stored.
      const receiving = async () => {
        while ((await incoming(server)).length === 0)
          await new Promise((resolve) => setTimeout(resolve, 5));
      };
      await within(receiving(), 5_000, 'the held reception to start');
      expect((await store(b, { sopInstanceUid: uid, dataset: first })).status).toBe(Status.Success);
      release();
      expect(await within(held, 10_000, 'the held store')).toEqual([secondStatus]);
      const stored = await storedFiles(server);
      expect(stored).toHaveLength(1);
      expect((await indexedInstances(server)).map((row) => row.sop_instance_uid)).toEqual([uid]);
      const kept = await storedDataset(server, stored[0]!);
      expect(kept.equals(isFirstKept ? first : second)).toBe(true);
      expect(await incoming(server)).toEqual([]);
    });
  }
});

describe('C-STORE: an association ended in the middle of a data set', () => {
  /**
   * Starts a C-STORE of a 200 KB instance and sends 96 KB of its data set; resolves once the
   * server is receiving it (its temporary file is in the incoming folder).
   */
  async function unfinishedStore(server: StoreTestServer, uid: string) {
    const scu = await openScu(server);
    const dataset = instance({ sopInstanceUid: uid, pixelBytes: 200_000 });
    const contextId = scu.contextId(MR_STORAGE);
    const command = encodeCommand({
      commandField: CommandField.CStoreRq,
      messageId: 1,
      affectedSopClassUid: MR_STORAGE,
      affectedSopInstanceUid: uid,
      priority: 0,
      hasDataset: true,
    });
    scu.association.sendPData(contextId, true, true, command);
    for (let offset = 0; offset < 96 * 1024; offset += 16 * 1024) {
      scu.association.sendPData(
        contextId,
        false,
        false,
        dataset.subarray(offset, offset + 16 * 1024),
      );
    }
    await within(
      (async () => {
        while ((await incoming(server)).length === 0) await new Promise((r) => setTimeout(r, 10));
      })(),
      5_000,
      'temporary file in the incoming folder',
    );
    return { scu, dataset };
  }

  /** The operation ended without a trace, and the same instance can be stored afresh. */
  async function expectCleanEnd(
    server: StoreTestServer,
    uid: string,
    dataset: Buffer,
  ): Promise<void> {
    await waitFor(
      () =>
        server.logs.some((line) => line.msg === 'operation failed' && line.sopInstanceUid === uid),
      5_000,
      'the unfinished operation to end',
    );
    await expectNothingStored(server);
    const other = await openScu(server);
    expect((await store(other, { sopInstanceUid: uid, dataset })).status).toBe(Status.Success);
  }

  it('by an abort: leaves no file, no index row and an empty incoming folder', async () => {
    const server = await startServer();
    const uid = `${ROOT}.1.1.1`;
    const { scu, dataset } = await unfinishedStore(server, uid);

    scu.association.abort();

    await expectCleanEnd(server, uid, dataset);
  });

  it('by a release: released, the unfinished data set failing without a trace', async () => {
    const server = await startServer();
    const uid = `${ROOT}.1.1.2`;
    const { scu, dataset } = await unfinishedStore(server, uid);

    // After its A-RELEASE-RQ a peer may send no more P-DATA: the data set cannot end.
    const released = await within(
      scu.association.release().then(
        () => 'released',
        (error: unknown) => (error as { code?: string }).code,
      ),
      5_000,
      'the answer to the release request',
    );

    expect(released).toBe('released');
    await expectCleanEnd(server, uid, dataset);
  });
});

describe('C-STORE: a deflated data set', () => {
  it('is indexed from the inflated header while the stored bytes stay deflated', async () => {
    const server = await startServer();
    const scu = await openScu(server);
    const file = await readFile(join(TESTDATA, 'image_dfl.dcm'));
    const dataset = file.subarray(readFileMeta(file).datasetOffset);
    const response = await store(scu, {
      sopClassUid: SC_STORAGE,
      sopInstanceUid: DEFLATED_FILE.sopInstanceUid,
      dataset,
      transferSyntax: TransferSyntax.DeflatedExplicitVRLittleEndian,
    });
    expect(response.status, dump(server.logs)).toBe(Status.Success);
    const [row] = await indexedInstances(server);
    expect(row).toMatchObject({
      sop_instance_uid: DEFLATED_FILE.sopInstanceUid,
      sop_class_uid: SC_STORAGE,
      transfer_syntax_uid: TransferSyntax.DeflatedExplicitVRLittleEndian,
      study_instance_uid: DEFLATED_FILE.studyInstanceUid,
      series_instance_uid: DEFLATED_FILE.seriesInstanceUid,
      modality: 'OT',
      patient_name: '^^^^',
      calling_ae: SCU_AE,
    });
    const stored = await readFile(join(server.storageRoot, row!.file_path));
    const meta = readFileMeta(stored);
    expect(meta.transferSyntaxUid).toBe(TransferSyntax.DeflatedExplicitVRLittleEndian);
    expect(stored.subarray(meta.datasetOffset).equals(dataset)).toBe(true);
    expect(row?.file_size).toBe(stored.length);
  });
});

describe('C-STORE: one association through every kind of failure', () => {
  it('answers each request and stores only the good ones', async () => {
    const server = await startServer({ maxStorageBytes: 50_000 });
    const scu = await openScu(server);
    const good = (n: number) => ({
      sopInstanceUid: `${ROOT}.1.1.${n}`,
      dataset: instance({ sopInstanceUid: `${ROOT}.1.1.${n}` }),
    });
    const outcomes: (number | undefined)[] = [];
    const send = async (request: StoreRequest) => outcomes.push((await store(scu, request)).status);
    await send(good(1));
    await send({
      sopInstanceUid: `${ROOT}.1.1.2`,
      dataset: instance({ sopInstanceUid: `${ROOT}.1.1.9` }),
    });
    await send({ sopInstanceUid: `${ROOT}.1.1.3`, dataset: noise(3_000, 3) });
    await send({
      sopInstanceUid: `${ROOT}.1.1.4`,
      dataset: deeplyNested({ sopInstanceUid: `${ROOT}.1.1.4` }, 10_000),
    });
    await send({
      sopInstanceUid: `${ROOT}.1.1.5`,
      dataset: instance({ sopInstanceUid: `${ROOT}.1.1.5`, studyInstanceUid: '../../etc' }),
    });
    await send({
      sopInstanceUid: `${ROOT}.1.1.6`,
      dataset: instance({ sopInstanceUid: `${ROOT}.1.1.6`, pixelBytes: 60_000 }),
    });
    await send(good(7));
    expect(outcomes).toEqual([
      Status.Success,
      Status.DataSetDoesNotMatchSopClass,
      Status.CannotUnderstand,
      Status.CannotUnderstand,
      Status.CannotUnderstand,
      Status.OutOfResources,
      Status.Success,
    ]);
    expect((await indexedInstances(server)).map((row) => row.sop_instance_uid)).toEqual([
      `${ROOT}.1.1.1`,
      `${ROOT}.1.1.7`,
    ]);
    expect(await storedFiles(server)).toHaveLength(2);
    expect(await incoming(server)).toEqual([]);
    await expectAlive(scu);
  });
});
