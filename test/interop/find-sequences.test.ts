/**
 * Interop: sequence matching (PS3.4 §C.2.2.2.6) with DCMTK's `findscu` against our server.
 * Instances carrying Other Patient IDs, Procedure Code, Issuer of Accession Number and Request
 * Attributes sequences are written with our data set writer and stored with `storescu`; then
 * `findscu` asks with sequence keys (`-k "ProcedureCodeSequence[0].CodeValue=CT*"`), and the
 * responses it writes (`-X`) are read back by `dcmdump`, items and all.
 *
 * Layer: test (interop). Everything on 127.0.0.1; every tool run has a deadline.
 */

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFileMeta } from '../../src/dicom/part10.js';
import type { DatasetToken } from '../../src/dicom/reader/dataset-reader.js';
import { TransferSyntax } from '../../src/dicom/transfer-syntax.js';
import type { Vr } from '../../src/dicom/vr.js';
import { encodeTokens } from '../../src/dicom/writer/dataset-writer.js';
import { type DumpTree, datasetTree } from '../helpers/dcmdump.js';
import { runFindscu, runTool, SCU_TIMEOUTS, type ToolRun } from '../helpers/dcmtk.js';
import { type StoreTestServer, startStoreServer } from '../helpers/server.js';
import { indexedInstances } from '../helpers/stored.js';

const SECONDARY_CAPTURE = '1.2.840.10008.5.1.4.1.1.7';

function uid(): string {
  return `2.25.${BigInt(`0x${randomBytes(16).toString('hex')}`).toString()}`;
}

/** An element token with a text value, padded to even length. */
function element(tag: number, vr: Vr, text: string): DatasetToken {
  const pad = vr === 'UI' ? '\0' : ' ';
  const value = Buffer.from(text.length % 2 === 0 ? text : text + pad, 'latin1');
  return { type: 'element', tag, vr, length: value.length, offset: 0, value };
}

/** A sequence's tokens, its items given as their element tokens. */
function sequence(tag: number, ...items: DatasetToken[][]): DatasetToken[] {
  return [
    { type: 'sequence-start', tag, vr: 'SQ', length: undefined, offset: 0 },
    ...items.flatMap((item): DatasetToken[] => [
      { type: 'item-start', length: undefined, offset: 0 },
      ...item,
      { type: 'item-end', hasDelimiter: true },
    ]),
    { type: 'sequence-end', hasDelimiter: true },
  ];
}

const code = (value: string, scheme: string, meaning: string): DatasetToken[] => [
  element(0x00080100, 'SH', value),
  element(0x00080102, 'SH', scheme),
  element(0x00080104, 'LO', meaning),
];

const PATIENT_ID = 'SEQ-PAT-1';
const STUDY_A = uid();
const STUDY_B = uid();
const SERIES_A = uid();
const SERIES_B = uid();

/** What each stored instance carries beside its UIDs. */
interface InstanceSpec {
  readonly studyUid: string;
  readonly seriesUid: string;
  readonly instanceNumber: number;
  /** Top-level sequences, each as its tokens. */
  readonly sequences: DatasetToken[][];
}

const INSTANCES: readonly InstanceSpec[] = [
  {
    studyUid: STUDY_A,
    seriesUid: SERIES_A,
    instanceNumber: 1,
    sequences: [
      sequence(0x00080051, [element(0x00400031, 'UT', 'HOSP-A')]),
      sequence(
        0x00081032,
        code('CTCHEST', 'LOCAL', 'CT Chest'),
        code('CTABD', 'DCM', 'CT Abdomen'),
      ),
      sequence(
        0x00400275,
        [
          element(0x00080050, 'SH', 'ACC-A'),
          element(0x00400009, 'SH', 'SPS1'),
          element(0x00401001, 'SH', 'RP1'),
        ],
        [element(0x00400009, 'SH', 'SPS2'), element(0x00401001, 'SH', 'RP2')],
      ),
    ],
  },
  // The second instance of the series carries no sequences: the stored items stay.
  {
    studyUid: STUDY_A,
    seriesUid: SERIES_A,
    instanceNumber: 2,
    sequences: [],
  },
  {
    studyUid: STUDY_B,
    seriesUid: SERIES_B,
    instanceNumber: 1,
    sequences: [sequence(0x00081032, code('MRBRAIN', 'LOCAL', 'MR Brain'))],
  },
];

/** Writes an instance as a Part 10 file in `dir`; returns its path. */
async function writeInstance(dir: string, spec: InstanceSpec): Promise<string> {
  const sopInstanceUid = uid();
  const topLevel: DatasetToken[][] = [
    [element(0x00080016, 'UI', SECONDARY_CAPTURE)],
    [element(0x00080018, 'UI', sopInstanceUid)],
    [element(0x00080050, 'SH', spec.studyUid === STUDY_A ? 'ACC-A' : 'ACC-B')],
    [element(0x00080060, 'CS', 'OT')],
    [element(0x00100010, 'PN', 'SEQUENCE^PATIENT')],
    [element(0x00100020, 'LO', PATIENT_ID)],
    sequence(0x00101002, [
      element(0x00100020, 'LO', 'ALT-1'),
      element(0x00100021, 'LO', 'SITE-B'),
      element(0x00100022, 'CS', 'TEXT'),
    ]),
    [element(0x0020000d, 'UI', spec.studyUid)],
    [element(0x0020000e, 'UI', spec.seriesUid)],
    [element(0x00200013, 'IS', String(spec.instanceNumber))],
    ...spec.sequences,
  ];
  // In tag order, as a data set must be (PS3.5 §7.1).
  const tagOf = (tokens: DatasetToken[]) => {
    const first = tokens[0];
    return first !== undefined && 'tag' in first ? first.tag : 0;
  };
  const dataset = encodeTokens(topLevel.sort((a, b) => tagOf(a) - tagOf(b)).flat(), {
    isExplicitVr: true,
    isLittleEndian: true,
  });
  const meta = buildFileMeta({
    sopClassUid: SECONDARY_CAPTURE,
    sopInstanceUid,
    transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian,
    sourceAeTitle: 'SEQTEST',
  });
  const path = join(dir, `${sopInstanceUid}.dcm`);
  await writeFile(path, Buffer.concat([meta, dataset]));
  return path;
}

let server: StoreTestServer;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dicom-server-find-sequences-'));
  server = await startStoreServer({ isQueryRetrieve: true });
  const files: string[] = [];
  for (const spec of INSTANCES) files.push(await writeInstance(work, spec));
  const stored = await runTool('storescu', [
    '-aet',
    'STORESCU',
    '-aec',
    server.aeTitle,
    ...SCU_TIMEOUTS,
    '127.0.0.1',
    String(server.port),
    ...files,
  ]);
  expect(stored.exitCode, stored.output).toBe(0);
  expect(await indexedInstances(server)).toHaveLength(INSTANCES.length);
}, 60_000);

afterAll(async () => {
  await server?.stop();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

/** findscu with `keys`; the responses as dcmdump trees, in the order they came. */
async function find(
  root: '-P' | '-S',
  keys: readonly string[],
): Promise<{ run: ToolRun; responses: DumpTree[] }> {
  const { run, files } = await runFindscu(server, root, keys, await mkdtemp(join(work, 'find-')));
  return { run, responses: await Promise.all(files.map(datasetTree)) };
}

describe('C-FIND sequence matching with findscu', () => {
  it('matches item keys within one item and answers the matching item with the requested keys', async () => {
    const { run, responses } = await find('-S', [
      'QueryRetrieveLevel=STUDY',
      'StudyInstanceUID',
      'ProcedureCodeSequence[0].CodeValue=CT*',
      'ProcedureCodeSequence[0].CodingSchemeDesignator=DCM',
      'ProcedureCodeSequence[0].CodeMeaning',
    ]);
    expect(run.exitCode, run.output).toBe(0);
    expect(responses, run.output).toEqual([
      {
        QueryRetrieveLevel: 'STUDY',
        StudyInstanceUID: STUDY_A,
        ProcedureCodeSequence: [
          { CodeValue: 'CTABD', CodingSchemeDesignator: 'DCM', CodeMeaning: 'CT Abdomen' },
        ],
      },
    ]);
    // No item holds both a CT code and LOCAL and MR: the keys match within one item only.
    const across = await find('-S', [
      'QueryRetrieveLevel=STUDY',
      'StudyInstanceUID',
      'ProcedureCodeSequence[0].CodeValue=CTABD',
      'ProcedureCodeSequence[0].CodingSchemeDesignator=LOCAL',
    ]);
    expect(across.run.exitCode, across.run.output).toBe(0);
    expect(across.responses).toEqual([]);
  });

  it('answers a sequence asked for without values with all its items, and empty where none is stored', async () => {
    const { run, responses } = await find('-S', [
      'QueryRetrieveLevel=STUDY',
      `PatientID=${PATIENT_ID}`,
      'StudyInstanceUID',
      // An empty sequence asks for all of it; an item of empty keys for those keys.
      'ProcedureCodeSequence',
      'IssuerOfAccessionNumberSequence[0].LocalNamespaceEntityID',
    ]);
    expect(run.exitCode, run.output).toBe(0);
    const byStudy = new Map(responses.map((r) => [r.StudyInstanceUID, r]));
    expect(byStudy.get(STUDY_A)).toMatchObject({
      ProcedureCodeSequence: [
        { CodeValue: 'CTCHEST', CodingSchemeDesignator: 'LOCAL', CodeMeaning: 'CT Chest' },
        { CodeValue: 'CTABD', CodingSchemeDesignator: 'DCM', CodeMeaning: 'CT Abdomen' },
      ],
      IssuerOfAccessionNumberSequence: [{ LocalNamespaceEntityID: 'HOSP-A' }],
    });
    expect(byStudy.get(STUDY_B)).toMatchObject({
      ProcedureCodeSequence: [
        { CodeValue: 'MRBRAIN', CodingSchemeDesignator: 'LOCAL', CodeMeaning: 'MR Brain' },
      ],
      IssuerOfAccessionNumberSequence: [],
    });
    expect(responses).toHaveLength(2);
  });

  it('matches Other Patient IDs at the PATIENT level of Patient Root', async () => {
    const { run, responses } = await find('-P', [
      'QueryRetrieveLevel=PATIENT',
      'PatientID',
      'OtherPatientIDsSequence[0].PatientID=ALT-1',
      'OtherPatientIDsSequence[0].IssuerOfPatientID=SITE-?',
      'OtherPatientIDsSequence[0].TypeOfPatientID',
    ]);
    expect(run.exitCode, run.output).toBe(0);
    expect(responses).toEqual([
      {
        QueryRetrieveLevel: 'PATIENT',
        PatientID: PATIENT_ID,
        OtherPatientIDsSequence: [
          { PatientID: 'ALT-1', IssuerOfPatientID: 'SITE-B', TypeOfPatientID: 'TEXT' },
        ],
      },
    ]);
    const none = await find('-P', [
      'QueryRetrieveLevel=PATIENT',
      'PatientID',
      'OtherPatientIDsSequence[0].PatientID=ALT-2',
    ]);
    expect(none.run.exitCode, none.run.output).toBe(0);
    expect(none.responses).toEqual([]);
  });

  it('matches Request Attributes at the SERIES level, answering the matching item only', async () => {
    const { run, responses } = await find('-S', [
      'QueryRetrieveLevel=SERIES',
      `StudyInstanceUID=${STUDY_A}`,
      'SeriesInstanceUID',
      'RequestAttributesSequence[0].RequestedProcedureID=RP2',
      'RequestAttributesSequence[0].ScheduledProcedureStepID',
      'RequestAttributesSequence[0].AccessionNumber',
    ]);
    expect(run.exitCode, run.output).toBe(0);
    expect(responses).toEqual([
      {
        QueryRetrieveLevel: 'SERIES',
        StudyInstanceUID: STUDY_A,
        SeriesInstanceUID: SERIES_A,
        RequestAttributesSequence: [
          { RequestedProcedureID: 'RP2', ScheduledProcedureStepID: 'SPS2', AccessionNumber: '' },
        ],
      },
    ]);
  });

  it('warns (0xFF01) of an item key it does not hold that carries a value, and matches the rest', async () => {
    const { run, responses } = await find('-S', [
      'QueryRetrieveLevel=STUDY',
      'StudyInstanceUID',
      'ProcedureCodeSequence[0].CodeValue=MRBRAIN',
      'ProcedureCodeSequence[0].CodingSchemeVersion=2',
    ]);
    expect(run.exitCode, run.output).toBe(0);
    expect(run.output).toMatch(/Pending: WarningUnsupportedOptionalKeys/);
    expect(responses).toEqual([
      {
        QueryRetrieveLevel: 'STUDY',
        StudyInstanceUID: STUDY_B,
        ProcedureCodeSequence: [{ CodeValue: 'MRBRAIN', CodingSchemeVersion: '' }],
      },
    ]);
  });
});
