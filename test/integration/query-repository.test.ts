/**
 * C-FIND, C-MOVE and C-GET on the index, on both databases it runs on: SQLite in a temporary
 * directory and PostgreSQL (127.0.0.1:5432, database `test`) in a fresh schema. The index is
 * filled through IndexRepository, the receive path's own code; then every level of both roots,
 * each kind of matching (single value, wildcard, range, list), case sensitivity, the computed
 * keys, wildcard and SQL characters in the data, NULLs, the match limit, abort, and the order
 * of the instances a retrieve sends; sequence keys matched item by item, with the items each
 * match returns, at and above their level.
 *
 * Layer: integration test (db).
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpenDatabase } from '../../src/db/dialect.js';
import {
  IndexRepository,
  type InstanceRecord,
} from '../../src/db/repositories/index-repository.js';
import { QueryRepository } from '../../src/db/repositories/query-repository.js';
import type {
  IndexMatch,
  IndexQuery,
  QueryCondition,
  QueryKeyword,
  QueryLevel,
  QueryRoot,
  SequenceCondition,
  SequenceValues,
  ValueMatch,
} from '../../src/dicom/query/model.js';
import { hasCode } from '../../src/errors.js';
import { type Backend, postgresBackend, sqliteBackend } from '../helpers/postgres.js';

const CT = '1.2.840.10008.5.1.4.1.1.2';
const MR = '1.2.840.10008.5.1.4.1.1.4';
const SR = '1.2.840.10008.5.1.4.1.1.88.33';
const ROOT = '1.2.826.0.1.3680043.9.7777.60';

type PatientAttributes = Pick<
  InstanceRecord,
  'patientId' | 'patientName' | 'patientBirthDate' | 'patientSex'
>;
type StudyAttributes = Pick<
  InstanceRecord,
  'studyDate' | 'studyTime' | 'accessionNumber' | 'studyDescription'
>;

const PATIENTS = {
  smithJohn: {
    patientId: 'PID-1',
    patientName: 'Smith^John',
    patientBirthDate: '19600101',
    patientSex: 'M',
  },
  smithJane: {
    patientId: 'PID-2',
    patientName: 'smith^jane',
    patientBirthDate: '19700202',
    patientSex: 'F',
  },
  percent: {
    patientId: 'A%1',
    patientName: "O'Brien^Sean",
    patientBirthDate: '19800303',
    patientSex: 'M',
  },
  underscore: {
    patientId: 'A_1',
    patientName: 'Back\\slash^Bo',
    patientBirthDate: null,
    patientSex: 'O',
  },
  noName: { patientId: 'AB1', patientName: null, patientBirthDate: null, patientSex: null },
  bracket: {
    patientId: 'B[1]',
    patientName: "Quote'; drop table patients; --",
    patientBirthDate: '19900404',
    patientSex: 'F',
  },
} satisfies Record<string, PatientAttributes>;

type PatientName = keyof typeof PATIENTS;

/** A series to index: its study and patient, and the instance numbers in arrival order. */
interface SeriesFixture {
  readonly patient: PatientName;
  readonly study: number;
  readonly studyAttributes: StudyAttributes;
  readonly series: number;
  readonly seriesNumber: number | null;
  readonly modality: string | null;
  readonly sopClassUid: string;
  readonly instanceNumbers: readonly (number | null)[];
}

const S1: StudyAttributes = {
  studyDate: '20240115',
  studyTime: '093000',
  accessionNumber: 'ACC-1',
  studyDescription: 'Chest CT',
};
const S2: StudyAttributes = {
  studyDate: '20240220',
  studyTime: '1200',
  accessionNumber: 'ACC-2',
  studyDescription: 'Brain MR',
};
const S3: StudyAttributes = {
  studyDate: '20231231',
  studyTime: '120059.999',
  accessionNumber: null,
  studyDescription: 'chest ct',
};
const S4: StudyAttributes = {
  studyDate: null,
  studyTime: null,
  accessionNumber: 'ACC_4',
  studyDescription: '100% done',
};
const S5: StudyAttributes = {
  studyDate: '2024-03-01',
  studyTime: '12:01:00',
  accessionNumber: 'ACC%5',
  studyDescription: 'C:\\path\\*',
};
const S6: StudyAttributes = {
  studyDate: '20240301',
  studyTime: '120100',
  accessionNumber: 'ACC\\6',
  studyDescription: null,
};
const S7: StudyAttributes = {
  studyDate: '20240131',
  studyTime: '235959.999999',
  accessionNumber: "ACC'7",
  studyDescription: 'Bracket',
};

/** In arrival order; study 1's second series (number 1) arrives after its first (number 2). */
const SERIES: readonly SeriesFixture[] = [
  fixture('smithJohn', 1, S1, 1, 2, 'CT', CT, [3, 1, 2]),
  fixture('smithJohn', 1, S1, 2, 1, 'SR', SR, [1]),
  fixture('smithJohn', 2, S2, 1, 1, 'MR', MR, [2, 1]),
  fixture('smithJane', 3, S3, 1, 1, 'CT', CT, [1]),
  fixture('percent', 4, S4, 1, null, 'MR', MR, [null, 1]),
  fixture('underscore', 5, S5, 1, 1, 'OT', CT, [1]),
  fixture('noName', 6, S6, 1, 1, null, CT, [1]),
  fixture('bracket', 7, S7, 1, 1, 'CT', CT, [1]),
];

function fixture(
  patient: PatientName,
  study: number,
  studyAttributes: StudyAttributes,
  series: number,
  seriesNumber: number | null,
  modality: string | null,
  sopClassUid: string,
  instanceNumbers: readonly (number | null)[],
): SeriesFixture {
  return {
    patient,
    study,
    studyAttributes,
    series,
    seriesNumber,
    modality,
    sopClassUid,
    instanceNumbers,
  };
}

const studyUid = (study: number) => `${ROOT}.${study}`;
const seriesUid = (study: number, series: number) => `${ROOT}.${study}.${series}`;
const instanceUid = (study: number, series: number, n: number) => `${ROOT}.${study}.${series}.${n}`;

/** Item key tags of the sequences the fixtures carry. */
const ItemTag = {
  PatientID: 0x00100020,
  IssuerOfPatientID: 0x00100021,
  TypeOfPatientID: 0x00100022,
  CodeValue: 0x00080100,
  CodingSchemeDesignator: 0x00080102,
  CodeMeaning: 0x00080104,
  LocalNamespaceEntityID: 0x00400031,
  UniversalEntityID: 0x00400032,
  UniversalEntityIDType: 0x00400033,
  RequestedProcedureID: 0x00401001,
  ScheduledProcedureStepID: 0x00400009,
  AccessionNumber: 0x00080050,
} as const;

/** A sequence's items from item key keywords and values. */
function sequence(
  tag: number,
  ...items: Partial<Record<keyof typeof ItemTag, string>>[]
): SequenceValues {
  return {
    tag,
    items: items.map((item) =>
      Object.entries(item).map(([keyword, value]) => ({
        tag: ItemTag[keyword as keyof typeof ItemTag],
        value: value as string,
      })),
    ),
  };
}

const OTHER_PATIENT_IDS = 0x00101002;
const PROCEDURE_CODE = 0x00081032;
const ISSUER_OF_ACCESSION_NUMBER = 0x00080051;
const REQUEST_ATTRIBUTES = 0x00400275;

/** The sequences of the fixtures' patients, studies and series. */
const PATIENT_SEQUENCES: Partial<Record<PatientName, SequenceValues[]>> = {
  smithJohn: [
    sequence(
      OTHER_PATIENT_IDS,
      { PatientID: 'OTHER-1', IssuerOfPatientID: 'SITE-B', TypeOfPatientID: 'TEXT' },
      { PatientID: 'OTHER-2', IssuerOfPatientID: 'SITE-C' },
    ),
  ],
  smithJane: [sequence(OTHER_PATIENT_IDS, { PatientID: 'OTHER-1', IssuerOfPatientID: 'SITE-X' })],
};
const CT_CHEST = {
  CodeValue: 'CT-CHEST',
  CodingSchemeDesignator: 'LOCAL',
  CodeMeaning: 'CT Chest',
};
const CT_ABDOMEN = {
  CodeValue: 'CT_ABD%',
  CodingSchemeDesignator: 'DCM',
  CodeMeaning: "abdomen'; drop table sequence_items; --",
};
const STUDY_SEQUENCES: Readonly<Record<number, SequenceValues[]>> = {
  1: [sequence(PROCEDURE_CODE, CT_CHEST, CT_ABDOMEN)],
  2: [
    sequence(PROCEDURE_CODE, { CodeValue: 'MR-BRAIN', CodingSchemeDesignator: 'LOCAL' }),
    sequence(ISSUER_OF_ACCESSION_NUMBER, {
      LocalNamespaceEntityID: 'HOSP-A',
      UniversalEntityID: '1.2.3',
      UniversalEntityIDType: 'ISO',
    }),
  ],
  3: [sequence(PROCEDURE_CODE, { CodeValue: 'ct-chest', CodingSchemeDesignator: 'DCM' })],
};
const SERIES_SEQUENCES: Readonly<Record<string, SequenceValues[]>> = {
  '1.1': [
    sequence(
      REQUEST_ATTRIBUTES,
      {
        RequestedProcedureID: 'RP1',
        ScheduledProcedureStepID: 'SPS1',
        AccessionNumber: 'ACC-1',
      },
      { RequestedProcedureID: 'RP2', ScheduledProcedureStepID: 'SPS2' },
    ),
  ],
  '2.1': [sequence(REQUEST_ATTRIBUTES, { RequestedProcedureID: 'RP3' })],
};

/**
 * The sequences an instance carries: its patient's, study's and series'; study 2's only on its
 * first instance (the second carries none, and leaves them stored).
 */
function sequencesOf(s: SeriesFixture, index: number): { sequences?: SequenceValues[] } {
  const sequences = [
    ...(PATIENT_SEQUENCES[s.patient] ?? []),
    ...(s.study === 2 && index > 0 ? [] : (STUDY_SEQUENCES[s.study] ?? [])),
    ...(SERIES_SEQUENCES[`${s.study}.${s.series}`] ?? []),
  ];
  return sequences.length === 0 ? {} : { sequences };
}

function records(): InstanceRecord[] {
  return SERIES.flatMap((s) =>
    s.instanceNumbers.map((instanceNumber, i) => ({
      ...sequencesOf(s, i),
      ...PATIENTS[s.patient],
      issuerOfPatientId: '',
      studyInstanceUid: studyUid(s.study),
      ...s.studyAttributes,
      studyId: `S${s.study}`,
      referringPhysicianName: 'Who^Doctor',
      patientAge: '055Y',
      seriesInstanceUid: seriesUid(s.study, s.series),
      modality: s.modality,
      seriesNumber: s.seriesNumber,
      seriesDescription: `series ${s.series}`,
      bodyPartExamined: 'CHEST',
      seriesDate: s.studyAttributes.studyDate,
      seriesTime: s.studyAttributes.studyTime,
      protocolName: null,
      sopInstanceUid: instanceUid(s.study, s.series, i + 1),
      sopClassUid: s.sopClassUid,
      instanceNumber,
      transferSyntaxUid: '1.2.840.10008.1.2.1',
      filePath: `p/${s.study}/${s.series}/${i + 1}.dcm`,
      fileSize: 1_000 + i,
      callingAe: 'STORESCU',
      receivedAt: '2026-01-02T19:30:00.000Z',
    })),
  );
}

const single = (value: string): ValueMatch => ({ kind: 'single', value });
const wildcard = (pattern: string): ValueMatch => ({ kind: 'wildcard', pattern });
const range = (from?: string, to?: string): ValueMatch => ({
  kind: 'range',
  ...(from !== undefined && { from }),
  ...(to !== undefined && { to }),
});
const list = (...values: string[]): ValueMatch => ({ kind: 'list', values });

describe.each([
  ['SQLite', () => sqliteBackend('query-repository-test')],
  ['PostgreSQL', () => postgresBackend('query')],
])('queries on the index on %s', (_name, makeBackend) => {
  let backend: Backend;
  let database: OpenDatabase;
  let repository: QueryRepository;

  beforeAll(async () => {
    backend = makeBackend();
    database = await backend.open();
    await new IndexRepository(database).addInstances(records());
    repository = new QueryRepository(database);
  });

  afterAll(async () => {
    await database?.close();
    await backend?.dispose();
  });

  async function collect(
    query: IndexQuery,
    on: QueryRepository = repository,
    signal?: AbortSignal,
  ): Promise<IndexMatch[]> {
    const matches: IndexMatch[] = [];
    for await (const match of on.find(query, signal)) matches.push(match);
    return matches;
  }

  /** The values of one key over the matches of a query with these conditions. */
  async function values(
    level: QueryLevel,
    keyword: QueryKeyword,
    conditions: Partial<Record<QueryKeyword, ValueMatch>>,
    options: { root?: QueryRoot; isPersonNameCaseInsensitive?: boolean } = {},
  ): Promise<IndexMatch[QueryKeyword][]> {
    const matches = await collect({
      root: options.root ?? 'study',
      level,
      conditions: Object.entries(conditions).map(
        ([k, match]) => ({ keyword: k, match }) as QueryCondition,
      ),
      returnKeys: [keyword],
      isPersonNameCaseInsensitive: options.isPersonNameCaseInsensitive ?? false,
    });
    return matches.map((m) => m[keyword]);
  }

  const accessions = (conditions: Partial<Record<QueryKeyword, ValueMatch>>) =>
    values('STUDY', 'StudyInstanceUID', conditions);
  const studies = (...numbers: number[]) => numbers.map(studyUid);

  it('answers the PATIENT level of Patient Root with the computed patient keys', async () => {
    const matches = await collect({
      root: 'patient',
      level: 'PATIENT',
      conditions: [],
      returnKeys: [
        'PatientID',
        'PatientName',
        'PatientBirthDate',
        'NumberOfPatientRelatedStudies',
        'NumberOfPatientRelatedSeries',
        'NumberOfPatientRelatedInstances',
        'StudyInstanceUID',
      ],
    });
    expect(matches.map((m) => m.PatientID)).toEqual([
      'PID-1',
      'PID-2',
      'A%1',
      'A_1',
      'AB1',
      'B[1]',
    ]);
    // Study keys are below the PATIENT level: not returned.
    expect(matches[0]).toEqual({
      PatientID: 'PID-1',
      PatientName: 'Smith^John',
      PatientBirthDate: '19600101',
      NumberOfPatientRelatedStudies: 2,
      NumberOfPatientRelatedSeries: 3,
      NumberOfPatientRelatedInstances: 6,
    });
    expect(matches[4]).toMatchObject({ PatientName: null, PatientBirthDate: null });
  });

  it('answers the STUDY level of Patient Root with the patient keys from the parent', async () => {
    const matches = await collect({
      root: 'patient',
      level: 'STUDY',
      conditions: [{ keyword: 'PatientID', match: single('PID-1') }],
      returnKeys: [
        'StudyInstanceUID',
        'PatientName',
        'StudyDate',
        'ModalitiesInStudy',
        'SOPClassesInStudy',
        'NumberOfStudyRelatedSeries',
        'NumberOfStudyRelatedInstances',
        'NumberOfPatientRelatedStudies',
        'Modality',
      ],
    });
    expect(matches).toEqual([
      {
        StudyInstanceUID: studyUid(1),
        PatientName: 'Smith^John',
        StudyDate: '20240115',
        ModalitiesInStudy: 'CT\\SR',
        SOPClassesInStudy: `${CT}\\${SR}`,
        NumberOfStudyRelatedSeries: 2,
        NumberOfStudyRelatedInstances: 4,
        NumberOfPatientRelatedStudies: 2,
      },
      {
        StudyInstanceUID: studyUid(2),
        PatientName: 'Smith^John',
        StudyDate: '20240220',
        ModalitiesInStudy: 'MR',
        SOPClassesInStudy: MR,
        NumberOfStudyRelatedSeries: 1,
        NumberOfStudyRelatedInstances: 2,
        NumberOfPatientRelatedStudies: 2,
      },
    ]);
  });

  it('holds the patient keys at the STUDY level of Study Root', async () => {
    const matches = await collect({
      root: 'study',
      level: 'STUDY',
      conditions: [
        { keyword: 'PatientName', match: wildcard('Smith*') },
        { keyword: 'StudyDate', match: range('20240201') },
      ],
      returnKeys: ['StudyInstanceUID', 'PatientID', 'NumberOfPatientRelatedInstances'],
    });
    expect(matches).toEqual([
      { StudyInstanceUID: studyUid(2), PatientID: 'PID-1', NumberOfPatientRelatedInstances: 6 },
    ]);
    expect(await values('STUDY', 'ModalitiesInStudy', { PatientID: single('AB1') })).toEqual([
      null,
    ]);
  });

  it('refuses the PATIENT level in Study Root', async () => {
    const query: IndexQuery = { root: 'study', level: 'PATIENT', conditions: [], returnKeys: [] };
    await expect(collect(query)).rejects.toSatisfy((e) => hasCode(e, 'ERR_INVALID_ARGUMENT'));
    await expect(repository.retrievable(query)).rejects.toSatisfy((e) =>
      hasCode(e, 'ERR_INVALID_ARGUMENT'),
    );
  });

  it.each([
    ['patient', 'SERIES'],
    ['study', 'SERIES'],
  ] as const)('answers the %s root SERIES level under one study', async (root, level) => {
    const matches = await collect({
      root,
      level,
      conditions: [
        { keyword: 'PatientID', match: single('PID-1') },
        { keyword: 'StudyInstanceUID', match: single(studyUid(1)) },
      ],
      returnKeys: [
        'SeriesInstanceUID',
        'Modality',
        'SeriesNumber',
        'NumberOfSeriesRelatedInstances',
        'StudyDate',
        'SOPInstanceUID',
      ],
    });
    expect(matches).toEqual([
      {
        SeriesInstanceUID: seriesUid(1, 1),
        Modality: 'CT',
        SeriesNumber: 2,
        NumberOfSeriesRelatedInstances: 3,
        StudyDate: '20240115',
      },
      {
        SeriesInstanceUID: seriesUid(1, 2),
        Modality: 'SR',
        SeriesNumber: 1,
        NumberOfSeriesRelatedInstances: 1,
        StudyDate: '20240115',
      },
    ]);
  });

  it.each(['patient', 'study'] as const)(
    'answers the %s root IMAGE level under one series',
    async (root) => {
      const matches = await collect({
        root,
        level: 'IMAGE',
        conditions: [
          { keyword: 'StudyInstanceUID', match: single(studyUid(1)) },
          { keyword: 'SeriesInstanceUID', match: single(seriesUid(1, 1)) },
        ],
        returnKeys: ['SOPInstanceUID', 'SOPClassUID', 'InstanceNumber', 'Modality', 'PatientID'],
      });
      expect(matches).toEqual(
        [3, 1, 2].map((instanceNumber, i) => ({
          SOPInstanceUID: instanceUid(1, 1, i + 1),
          SOPClassUID: CT,
          InstanceNumber: instanceNumber,
          Modality: 'CT',
          PatientID: 'PID-1',
        })),
      );
      expect(
        await values('IMAGE', 'SOPInstanceUID', {
          SOPInstanceUID: list(instanceUid(1, 1, 2), instanceUid(4, 1, 1), `${ROOT}.99`),
        }),
      ).toEqual([instanceUid(1, 1, 2), instanceUid(4, 1, 1)]);
      expect(
        await values('IMAGE', 'InstanceNumber', { StudyInstanceUID: single(studyUid(4)) }),
      ).toEqual([null, 1]);
    },
  );

  it('matches single values exactly and case-sensitively', async () => {
    expect(await accessions({ PatientName: single('Smith^John') })).toEqual(studies(1, 2));
    expect(await accessions({ PatientName: single('smith^john') })).toEqual([]);
    expect(await accessions({ PatientName: single('Smith') })).toEqual([]);
    expect(await accessions({ StudyDescription: single('Chest CT') })).toEqual(studies(1));
    expect(await accessions({ AccessionNumber: single('ACC-1') })).toEqual(studies(1));
    expect(await accessions({ StudyDate: single('20240115') })).toEqual(studies(1));
    expect(await values('SERIES', 'SeriesNumber', { SeriesNumber: single('2') })).toEqual([2]);
  });

  it('matches person names without regard to case when asked, and nothing else', async () => {
    const insensitive = { isPersonNameCaseInsensitive: true };
    expect(
      await values('STUDY', 'StudyInstanceUID', { PatientName: single('SMITH^JOHN') }, insensitive),
    ).toEqual(studies(1, 2));
    expect(
      await values('STUDY', 'StudyInstanceUID', { PatientName: wildcard('SMITH*') }, insensitive),
    ).toEqual(studies(1, 2, 3));
    expect(
      await values(
        'STUDY',
        'StudyInstanceUID',
        { PatientName: list('smith^JOHN', 'o*') },
        insensitive,
      ),
    ).toEqual(studies(1, 2, 4));
    // Not a PN: stays case-sensitive.
    expect(
      await values(
        'STUDY',
        'StudyInstanceUID',
        { StudyDescription: single('chest ct') },
        insensitive,
      ),
    ).toEqual(studies(3));
    expect(await accessions({ PatientName: wildcard('SMITH*') })).toEqual([]);
    expect(await accessions({ PatientName: wildcard('smith*') })).toEqual(studies(3));
  });

  it('matches wildcards: * any run, ? one character, anywhere in the pattern', async () => {
    expect(await accessions({ PatientName: wildcard('Smi*') })).toEqual(studies(1, 2));
    expect(await accessions({ PatientName: wildcard('?mith^*') })).toEqual(studies(1, 2, 3));
    expect(await accessions({ PatientName: wildcard('*^J*') })).toEqual(studies(1, 2));
    expect(await accessions({ PatientName: wildcard('*n') })).toEqual(studies(1, 2, 4));
    expect(await accessions({ PatientName: wildcard('Smith^Joh?') })).toEqual(studies(1, 2));
    expect(await accessions({ PatientName: wildcard('Smith^Jo?') })).toEqual([]);
    expect(await accessions({ StudyTime: wildcard('12*') })).toEqual(studies(2, 3, 5, 6));
    // Study 4's series has no number: 7 of the 8 series.
    expect(await values('SERIES', 'SeriesNumber', { SeriesNumber: wildcard('?') })).toHaveLength(7);
  });

  it('treats %, _, quotes, backslashes and brackets in the data as data', async () => {
    expect(await accessions({ PatientID: wildcard('A%*') })).toEqual(studies(4));
    expect(await accessions({ PatientID: wildcard('A_*') })).toEqual(studies(5));
    expect(await accessions({ PatientID: wildcard('A?1') })).toEqual(studies(4, 5, 6));
    expect(await accessions({ PatientID: single('A%1') })).toEqual(studies(4));
    expect(await accessions({ PatientID: wildcard('B[*') })).toEqual(studies(7));
    expect(await accessions({ PatientID: wildcard('B[1?') })).toEqual(studies(7));
    expect(await accessions({ PatientName: wildcard("O'Brien*") })).toEqual(studies(4));
    expect(await accessions({ PatientName: single("Quote'; drop table patients; --") })).toEqual(
      studies(7),
    );
    expect(await accessions({ PatientName: wildcard('Back\\*') })).toEqual(studies(5));
    expect(await accessions({ PatientName: wildcard('*\\slash*') })).toEqual(studies(5));
    expect(await accessions({ AccessionNumber: single('ACC\\6') })).toEqual(studies(6));
    expect(await accessions({ AccessionNumber: wildcard('ACC\\*') })).toEqual(studies(6));
    expect(await accessions({ AccessionNumber: wildcard("*'*") })).toEqual(studies(7));
    expect(await accessions({ StudyDescription: wildcard('100%*') })).toEqual(studies(4));
    expect(await accessions({ StudyDescription: wildcard('C:\\path\\?') })).toEqual(studies(5));
    expect(await accessions({ StudyDescription: wildcard('1_0*') })).toEqual([]);
    // Still all there.
    expect(await values('PATIENT', 'PatientID', {}, { root: 'patient' })).toHaveLength(6);
  });

  it('matches date ranges, open-ended either side, inclusive', async () => {
    expect(await accessions({ StudyDate: range('20240101', '20240131') })).toEqual(studies(1, 7));
    expect(await accessions({ StudyDate: range('20240115', '20240220') })).toEqual(
      studies(1, 2, 7),
    );
    expect(await accessions({ StudyDate: range(undefined, '20231231') })).toEqual(studies(3));
    // Study 5's date is written 2024-03-01: not a DICOM date, so no range takes it in.
    expect(await accessions({ StudyDate: range('20240201') })).toEqual(studies(2, 6));
    expect(await accessions({ StudyDate: range() })).toHaveLength(7);
    expect(await accessions({ PatientBirthDate: range('19650101', '19850101') })).toEqual(
      studies(3, 4),
    );
  });

  it('matches time ranges whatever the precision each side is written with', async () => {
    // Stored: 093000, 1200, 120059.999, null, 12:01:00, 120100, 235959.999999.
    expect(await accessions({ StudyTime: range(undefined, '1200') })).toEqual(studies(1, 2, 3));
    expect(await accessions({ StudyTime: range(undefined, '120059') })).toEqual(studies(1, 2, 3));
    expect(await accessions({ StudyTime: range(undefined, '120058') })).toEqual(studies(1, 2));
    expect(await accessions({ StudyTime: range('1200', '1200') })).toEqual(studies(2, 3));
    expect(await accessions({ StudyTime: range('120000.000') })).toEqual(studies(2, 3, 5, 6, 7));
    expect(await accessions({ StudyTime: range('1201') })).toEqual(studies(5, 6, 7));
    expect(await accessions({ StudyTime: range('2359', '235959.999999') })).toEqual(studies(7));
    expect(await accessions({ StudyTime: range('0930', '093000') })).toEqual(studies(1));
  });

  it('matches lists: any of the values, each matched by its own kind', async () => {
    expect(
      await accessions({ StudyInstanceUID: list(studyUid(3), studyUid(1), `${ROOT}.99`) }),
    ).toEqual(studies(1, 3));
    expect(await accessions({ AccessionNumber: list('ACC-2', 'ACC_*') })).toEqual(studies(2, 4));
    expect(await accessions({ StudyDate: list('20231231', '20240201-20240301') })).toEqual(
      studies(2, 3, 6),
    );
    expect(await accessions({ AccessionNumber: list() })).toEqual([]);
  });

  it('matches Modalities in Study and SOP Classes in Study on any of their values', async () => {
    expect(await accessions({ ModalitiesInStudy: single('SR') })).toEqual(studies(1));
    expect(await accessions({ ModalitiesInStudy: single('CT') })).toEqual(studies(1, 3, 7));
    // Whole values only: R is in SR and MR but is not one of the study's modalities.
    expect(await accessions({ ModalitiesInStudy: single('R') })).toEqual([]);
    expect(await accessions({ ModalitiesInStudy: single('CT\\SR') })).toEqual([]);
    expect(await accessions({ ModalitiesInStudy: wildcard('S*') })).toEqual(studies(1));
    expect(await accessions({ ModalitiesInStudy: wildcard('?R') })).toEqual(studies(1, 2, 4));
    expect(await accessions({ ModalitiesInStudy: wildcard('C*R') })).toEqual([]);
    expect(await accessions({ ModalitiesInStudy: list('SR', 'OT') })).toEqual(studies(1, 5));
    expect(await accessions({ ModalitiesInStudy: list('M*', 'OT') })).toEqual(studies(2, 4, 5));
    expect(await accessions({ SOPClassesInStudy: single(SR) })).toEqual(studies(1));
    expect(await accessions({ SOPClassesInStudy: list(MR, SR) })).toEqual(studies(1, 2, 4));
    // Study 6's series has no modality: its list is empty and returned as none.
    expect(
      await values('STUDY', 'ModalitiesInStudy', { ModalitiesInStudy: wildcard('*') }),
    ).toEqual(['CT\\SR', 'MR', 'CT', 'MR', 'OT', null, 'CT']);
  });

  it('matches the computed counts', async () => {
    expect(await accessions({ NumberOfStudyRelatedInstances: single('4') })).toEqual(studies(1));
    expect(await accessions({ NumberOfStudyRelatedSeries: single('2') })).toEqual(studies(1));
    expect(await accessions({ NumberOfPatientRelatedStudies: single('2') })).toEqual(studies(1, 2));
    expect(await accessions({ NumberOfStudyRelatedSeries: single('two') })).toEqual([]);
    expect(
      await values('SERIES', 'SeriesInstanceUID', { NumberOfSeriesRelatedInstances: single('2') }),
    ).toEqual([seriesUid(2, 1), seriesUid(4, 1)]);
  });

  it('never matches a NULL with a value, but does with a universal pattern', async () => {
    expect(await accessions({ PatientName: wildcard('*?*') })).toEqual(studies(1, 2, 3, 4, 5, 7));
    expect(await accessions({ PatientName: wildcard('*') })).toHaveLength(7);
    expect(await accessions({ AccessionNumber: wildcard('*') })).toHaveLength(7);
    // Study 4 has no date; study 5's 2024-03-01 compares as text, before 20240101.
    expect(await accessions({ StudyDate: range('20240101', '20241231') })).toEqual(
      studies(1, 2, 6, 7),
    );
    expect(await values('SERIES', 'SeriesInstanceUID', { Modality: wildcard('?*') })).toHaveLength(
      7,
    );
  });

  it('ignores keys below the level in conditions and return keys', async () => {
    expect(
      await values('STUDY', 'StudyInstanceUID', {
        Modality: single('XX'),
        SOPClassUID: single('1'),
      }),
    ).toHaveLength(7);
  });

  it('pages through the matches and stops at the limit', async () => {
    const paged = new QueryRepository(database, { pageSize: 2 });
    const all = await collect(
      { root: 'study', level: 'IMAGE', conditions: [], returnKeys: ['SOPInstanceUID'] },
      paged,
    );
    expect(all).toHaveLength(12);
    expect(new Set(all.map((m) => m.SOPInstanceUID)).size).toBe(12);
    const limited = await collect(
      { root: 'study', level: 'IMAGE', conditions: [], returnKeys: ['SOPInstanceUID'], limit: 5 },
      paged,
    );
    expect(limited).toEqual(all.slice(0, 5));
    expect(
      await collect({ root: 'study', level: 'STUDY', conditions: [], returnKeys: [], limit: 0 }),
    ).toEqual([]);
  });

  it('stops when the signal aborts, and when the caller stops', async () => {
    const paged = new QueryRepository(database, { pageSize: 2 });
    const query: IndexQuery = { root: 'study', level: 'IMAGE', conditions: [], returnKeys: [] };
    const controller = new AbortController();
    let seen = 0;
    await expect(
      (async () => {
        for await (const _ of paged.find(query, controller.signal)) {
          seen++;
          if (seen === 3) controller.abort();
        }
      })(),
    ).rejects.toMatchObject({ name: 'AbortError' });
    expect(seen).toBe(3);
    await expect(collect(query, paged, AbortSignal.abort())).rejects.toMatchObject({
      name: 'AbortError',
    });
    await expect(repository.retrievable(query, AbortSignal.abort())).rejects.toMatchObject({
      name: 'AbortError',
    });
    let taken = 0;
    for await (const _ of paged.find(query)) if (++taken === 3) break;
    expect(taken).toBe(3);
  });

  it('lists the instances to retrieve by study, series number and instance number', async () => {
    const instances = await repository.retrievable({
      root: 'patient',
      level: 'PATIENT',
      conditions: [{ keyword: 'PatientID', match: single('PID-1') }],
      returnKeys: [],
    });
    expect(instances.map((i) => i.sopInstanceUid)).toEqual([
      // Study 1: series number 1 (the SR) first, then the CT by instance number 1, 2, 3.
      instanceUid(1, 2, 1),
      instanceUid(1, 1, 2),
      instanceUid(1, 1, 3),
      instanceUid(1, 1, 1),
      instanceUid(2, 1, 2),
      instanceUid(2, 1, 1),
    ]);
    expect(instances[0]).toEqual({
      sopClassUid: SR,
      sopInstanceUid: instanceUid(1, 2, 1),
      transferSyntaxUid: '1.2.840.10008.1.2.1',
      filePath: 'p/1/2/1.dcm',
      fileSize: 1_000,
    });
    // An instance without a number comes after those with one.
    const study4 = await repository.retrievable({
      root: 'study',
      level: 'STUDY',
      conditions: [{ keyword: 'StudyInstanceUID', match: single(studyUid(4)) }],
      returnKeys: [],
    });
    expect(study4.map((i) => i.sopInstanceUid)).toEqual([
      instanceUid(4, 1, 2),
      instanceUid(4, 1, 1),
    ]);
  });

  it('retrieves at the SERIES and IMAGE levels, and nothing for no match', async () => {
    const series = await repository.retrievable({
      root: 'study',
      level: 'SERIES',
      conditions: [{ keyword: 'SeriesInstanceUID', match: list(seriesUid(3, 1), seriesUid(2, 1)) }],
      returnKeys: [],
    });
    expect(series.map((i) => i.sopInstanceUid)).toEqual([
      instanceUid(2, 1, 2),
      instanceUid(2, 1, 1),
      instanceUid(3, 1, 1),
    ]);
    const image = await repository.retrievable({
      root: 'patient',
      level: 'IMAGE',
      conditions: [{ keyword: 'SOPInstanceUID', match: single(instanceUid(7, 1, 1)) }],
      returnKeys: [],
    });
    expect(image.map((i) => i.filePath)).toEqual(['p/7/1/1.dcm']);
    const none = await repository.retrievable({
      root: 'study',
      level: 'STUDY',
      conditions: [{ keyword: 'StudyInstanceUID', match: single(`${ROOT}.99`) }],
      returnKeys: [],
    });
    expect(none).toEqual([]);
  });
  /** The matches of a query at `level` with one sequence condition and the sequences returned. */
  async function withSequence(
    level: QueryLevel,
    condition: SequenceCondition | undefined,
    options: {
      root?: QueryRoot;
      returnKeys?: QueryKeyword[];
      returnSequences?: IndexQuery['returnSequences'];
      conditions?: QueryCondition[];
      on?: QueryRepository;
    } = {},
  ): Promise<IndexMatch[]> {
    return collect(
      {
        root: options.root ?? 'study',
        level,
        conditions: options.conditions ?? [],
        returnKeys: options.returnKeys ?? ['StudyInstanceUID'],
        ...(condition !== undefined && { sequenceConditions: [condition] }),
        returnSequences:
          options.returnSequences ?? (condition === undefined ? [] : [condition.keyword]),
      },
      options.on,
    );
  }

  /** The studies with a Procedure Code Sequence item matching all these item conditions. */
  async function studiesWithProcedure(
    itemConditions: SequenceCondition['itemConditions'],
  ): Promise<unknown[]> {
    const matches = await withSequence(
      'STUDY',
      { keyword: 'ProcedureCodeSequence', itemConditions },
      { returnSequences: [] },
    );
    return matches.map((m) => m.StudyInstanceUID);
  }

  it('matches a sequence key on an item key and returns the items that match', async () => {
    const matches = await withSequence('STUDY', {
      keyword: 'ProcedureCodeSequence',
      itemConditions: [{ keyword: 'CodeValue', match: single('CT-CHEST') }],
    });
    expect(matches).toEqual([
      { StudyInstanceUID: studyUid(1), sequences: { ProcedureCodeSequence: [CT_CHEST] } },
    ]);
  });

  it('matches all the item keys within one stored item, never across items', async () => {
    const code = (match: ValueMatch) => ({ keyword: 'CodeValue', match }) as const;
    const scheme = (match: ValueMatch) => ({ keyword: 'CodingSchemeDesignator', match }) as const;
    expect(await studiesWithProcedure([code(single('CT-CHEST')), scheme(single('DCM'))])).toEqual(
      [],
    );
    expect(await studiesWithProcedure([code(wildcard('*CHEST')), scheme(single('DCM'))])).toEqual(
      [],
    );
    expect(await studiesWithProcedure([code(wildcard('*chest')), scheme(single('DCM'))])).toEqual(
      studies(3),
    );
    const matches = await withSequence('STUDY', {
      keyword: 'ProcedureCodeSequence',
      itemConditions: [code(wildcard('CT*')), scheme(single('DCM'))],
    });
    expect(matches).toEqual([
      { StudyInstanceUID: studyUid(1), sequences: { ProcedureCodeSequence: [CT_ABDOMEN] } },
    ]);
  });

  it('matches item keys by single value, wildcard and list, with SQL and wildcard characters as data', async () => {
    const code = (match: ValueMatch) => [{ keyword: 'CodeValue', match }] as const;
    expect(await studiesWithProcedure(code(single('CT_ABD%')))).toEqual(studies(1));
    expect(await studiesWithProcedure(code(single('CT_ABD_')))).toEqual([]);
    expect(await studiesWithProcedure(code(single('CT%')))).toEqual([]);
    expect(await studiesWithProcedure(code(wildcard('CT_A*')))).toEqual(studies(1));
    expect(await studiesWithProcedure(code(wildcard('CT?ABD%')))).toEqual(studies(1));
    expect(await studiesWithProcedure(code(wildcard('CT-*')))).toEqual(studies(1));
    expect(await studiesWithProcedure(code(wildcard('*-*')))).toEqual(studies(1, 2, 3));
    expect(await studiesWithProcedure(code(list('MR-BRAIN', 'ct-chest')))).toEqual(studies(2, 3));
    expect(
      await studiesWithProcedure([
        { keyword: 'CodeMeaning', match: single("abdomen'; drop table sequence_items; --") },
      ]),
    ).toEqual(studies(1));
  });

  it('returns every stored item of a sequence asked for without a condition, none where none is stored', async () => {
    const matches = await withSequence('STUDY', undefined, {
      returnSequences: ['ProcedureCodeSequence', 'IssuerOfAccessionNumberSequence'],
    });
    expect(matches.map((m) => m.sequences)).toEqual([
      { ProcedureCodeSequence: [CT_CHEST, CT_ABDOMEN], IssuerOfAccessionNumberSequence: [] },
      {
        ProcedureCodeSequence: [{ CodeValue: 'MR-BRAIN', CodingSchemeDesignator: 'LOCAL' }],
        IssuerOfAccessionNumberSequence: [
          {
            LocalNamespaceEntityID: 'HOSP-A',
            UniversalEntityID: '1.2.3',
            UniversalEntityIDType: 'ISO',
          },
        ],
      },
      {
        ProcedureCodeSequence: [{ CodeValue: 'ct-chest', CodingSchemeDesignator: 'DCM' }],
        IssuerOfAccessionNumberSequence: [],
      },
      ...[4, 5, 6, 7].map(() => ({
        ProcedureCodeSequence: [],
        IssuerOfAccessionNumberSequence: [],
      })),
    ]);
    // The same over pages of one match, items and all.
    const paged = new QueryRepository(database, { pageSize: 1 });
    expect(
      await withSequence('STUDY', undefined, {
        returnSequences: ['ProcedureCodeSequence', 'IssuerOfAccessionNumberSequence'],
        on: paged,
      }),
    ).toEqual(matches);
  });

  it('matches patient sequences at the PATIENT level, and from the patient at the STUDY level of Study Root', async () => {
    const otherIds = (...itemConditions: SequenceCondition['itemConditions']) =>
      ({ keyword: 'OtherPatientIDsSequence', itemConditions }) as const;
    const patients = await withSequence(
      'PATIENT',
      otherIds({ keyword: 'PatientID', match: single('OTHER-1') }),
      { root: 'patient', returnKeys: ['PatientID'], returnSequences: [] },
    );
    expect(patients.map((m) => m.PatientID)).toEqual(['PID-1', 'PID-2']);
    expect(
      await withSequence('PATIENT', otherIds({ keyword: 'PatientID', match: single('OTHER-2') }), {
        root: 'patient',
        returnKeys: ['PatientID'],
      }),
    ).toEqual([
      {
        PatientID: 'PID-1',
        sequences: {
          OtherPatientIDsSequence: [{ PatientID: 'OTHER-2', IssuerOfPatientID: 'SITE-C' }],
        },
      },
    ]);
    const fromPatient = await withSequence(
      'STUDY',
      otherIds(
        { keyword: 'PatientID', match: single('OTHER-1') },
        { keyword: 'IssuerOfPatientID', match: wildcard('SITE-?') },
      ),
      { conditions: [{ keyword: 'StudyDate', match: range('20240201') }] },
    );
    expect(fromPatient).toEqual([
      {
        StudyInstanceUID: studyUid(2),
        sequences: {
          OtherPatientIDsSequence: [
            { PatientID: 'OTHER-1', IssuerOfPatientID: 'SITE-B', TypeOfPatientID: 'TEXT' },
          ],
        },
      },
    ]);
  });

  it('matches series sequences at the SERIES level, and returns a study sequence from the parent', async () => {
    const matches = await withSequence(
      'SERIES',
      {
        keyword: 'RequestAttributesSequence',
        itemConditions: [
          { keyword: 'ScheduledProcedureStepID', match: wildcard('SPS*') },
          { keyword: 'RequestedProcedureID', match: single('RP2') },
        ],
      },
      {
        conditions: [{ keyword: 'StudyInstanceUID', match: single(studyUid(1)) }],
        returnKeys: ['SeriesInstanceUID'],
        returnSequences: ['RequestAttributesSequence', 'ProcedureCodeSequence'],
      },
    );
    expect(matches).toEqual([
      {
        SeriesInstanceUID: seriesUid(1, 1),
        sequences: {
          RequestAttributesSequence: [
            { RequestedProcedureID: 'RP2', ScheduledProcedureStepID: 'SPS2' },
          ],
          ProcedureCodeSequence: [CT_CHEST, CT_ABDOMEN],
        },
      },
    ]);
  });

  it('matches a study sequence at the IMAGE level of a relational query', async () => {
    const matches = await withSequence(
      'IMAGE',
      {
        keyword: 'ProcedureCodeSequence',
        itemConditions: [{ keyword: 'CodeValue', match: single('MR-BRAIN') }],
      },
      { returnKeys: ['SOPInstanceUID'], returnSequences: [] },
    );
    expect(matches.map((m) => m.SOPInstanceUID)).toEqual([
      instanceUid(2, 1, 1),
      instanceUid(2, 1, 2),
    ]);
  });

  it('ignores sequence keys below the level; a universal item pattern matches every entity', async () => {
    const below = await withSequence('STUDY', {
      keyword: 'RequestAttributesSequence',
      itemConditions: [{ keyword: 'RequestedProcedureID', match: single('RP1') }],
    });
    expect(below).toEqual(studies(1, 2, 3, 4, 5, 6, 7).map((uid) => ({ StudyInstanceUID: uid })));
    const universal = await withSequence('STUDY', {
      keyword: 'ProcedureCodeSequence',
      itemConditions: [{ keyword: 'CodeValue', match: wildcard('**') }],
    });
    expect(universal.map((m) => m.sequences?.ProcedureCodeSequence?.length)).toEqual([
      2, 1, 1, 0, 0, 0, 0,
    ]);
  });
});

/** One instance of a patient, study and series, with defaults for what a test does not set. */
function record(
  attributes: Partial<InstanceRecord> &
    Pick<InstanceRecord, 'patientId' | 'studyInstanceUid' | 'seriesInstanceUid' | 'sopInstanceUid'>,
): InstanceRecord {
  return {
    issuerOfPatientId: '',
    patientName: null,
    patientBirthDate: null,
    patientSex: null,
    studyDate: '20250101',
    studyTime: null,
    accessionNumber: null,
    studyId: null,
    studyDescription: null,
    referringPhysicianName: null,
    patientAge: null,
    modality: 'CT',
    seriesNumber: 1,
    seriesDescription: null,
    bodyPartExamined: null,
    seriesDate: null,
    seriesTime: null,
    protocolName: null,
    sopClassUid: CT,
    instanceNumber: null,
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    filePath: `${attributes.sopInstanceUid}.dcm`,
    fileSize: 1_000,
    callingAe: 'STORESCU',
    receivedAt: '2026-01-02T19:30:00.000Z',
    ...attributes,
  };
}

/** A series of 5,000 instances, as a C-MOVE of a large series by SOP Instance UID list meets. */
const LARGE = 5_000;
const LARGE_ROOT = '1.2.826.0.1.3680043.9.7777.61';
const largeInstanceUid = (n: number) => `${LARGE_ROOT}.1.1.${n}`;

/** Person names with component groups (PS3.5 §6.2.1.2), each in a study of its own. */
const NAMES: Readonly<Record<string, string>> = {
  'JP-TAROU': 'Yamada^Tarou=山田^太郎=やまだ^たろう',
  'JP-HANAKO': 'Yamada^Hanako=山田^花子=やまだ^はなこ',
  PLAIN: 'Yamada^Tarou',
  LONGER: 'Yamada^Tarou2',
  SUZUKI: 'Suzuki^Ichiro=鈴木^一郎',
  TANAKA: 'Tanaka^Jiro=Yamada^Tarou',
};

function largeRecords(): InstanceRecord[] {
  const series = Array.from({ length: LARGE }, (_, i) =>
    record({
      patientId: 'LARGE',
      patientName: 'Large^Series',
      studyInstanceUid: `${LARGE_ROOT}.1`,
      seriesInstanceUid: `${LARGE_ROOT}.1.1`,
      sopInstanceUid: largeInstanceUid(i + 1),
      instanceNumber: i + 1,
    }),
  );
  const names = Object.entries(NAMES).map(([patientId, patientName], i) =>
    record({
      patientId,
      patientName,
      studyInstanceUid: `${LARGE_ROOT}.${i + 2}`,
      referringPhysicianName: patientName,
      seriesInstanceUid: `${LARGE_ROOT}.${i + 2}.1`,
      sopInstanceUid: `${LARGE_ROOT}.${i + 2}.1.1`,
    }),
  );
  return [...series, ...names];
}

describe.each([
  ['SQLite', () => sqliteBackend('query-repository-large')],
  ['PostgreSQL', () => postgresBackend('query_large')],
])('long value lists, counts and person name groups on %s', (_name, makeBackend) => {
  let backend: Backend;
  let database: OpenDatabase;
  let repository: QueryRepository;

  beforeAll(async () => {
    backend = makeBackend();
    database = await backend.open();
    await new IndexRepository(database).addInstances(largeRecords());
    repository = new QueryRepository(database);
  }, 60_000);

  afterAll(async () => {
    await database?.close();
    await backend?.dispose();
  });

  async function collect(query: IndexQuery): Promise<IndexMatch[]> {
    const matches: IndexMatch[] = [];
    for await (const match of repository.find(query)) matches.push(match);
    return matches;
  }

  const uids = Array.from({ length: LARGE }, (_, i) => largeInstanceUid(i + 1));

  it('retrieves a series by a list of 5,000 SOP Instance UIDs', async () => {
    // Reversed, and with 1,000 UIDs that match nothing: the order is the index's, not the list's.
    const unknown = Array.from({ length: 1_000 }, (_, i) => `${LARGE_ROOT}.9.${i}`);
    const instances = await repository.retrievable({
      root: 'patient',
      level: 'IMAGE',
      conditions: [{ keyword: 'SOPInstanceUID', match: list(...uids.toReversed(), ...unknown) }],
      returnKeys: [],
    });
    expect(instances.map((i) => i.sopInstanceUid)).toEqual(uids);
  });

  it('finds by lists of 5,000 UIDs, integers and person names', async () => {
    const matches = await collect({
      root: 'study',
      level: 'IMAGE',
      conditions: [{ keyword: 'SOPInstanceUID', match: list(...uids) }],
      returnKeys: ['InstanceNumber'],
    });
    expect(matches.map((m) => m.InstanceNumber)).toEqual(uids.map((_, i) => i + 1));
    const numbers = Array.from({ length: LARGE }, (_, i) => String(2 * i + 1));
    const odd = await collect({
      root: 'study',
      level: 'IMAGE',
      conditions: [{ keyword: 'InstanceNumber', match: list(...numbers) }],
      returnKeys: ['InstanceNumber'],
    });
    expect(odd).toHaveLength(LARGE / 2);
    const names = Array.from({ length: LARGE }, (_, i) => `Nobody^${i}`);
    for (const isPersonNameCaseInsensitive of [false, true]) {
      const found = await collect({
        root: 'study',
        level: 'STUDY',
        conditions: [{ keyword: 'PatientName', match: list(...names, 'Suzuki^Ichiro') }],
        returnKeys: ['PatientID'],
        isPersonNameCaseInsensitive,
      });
      expect(found.map((m) => m.PatientID)).toEqual(['SUZUKI']);
    }
  });

  it('counts matches up to a limit, in chunks, honouring the signal', async () => {
    const chunked = new QueryRepository(database, { countChunkRows: 700 });
    const all: IndexQuery = { root: 'study', level: 'IMAGE', conditions: [], returnKeys: [] };
    const total = LARGE + Object.keys(NAMES).length;
    for (const on of [repository, chunked]) {
      expect(await on.count(all, 10_000_000)).toBe(total);
      expect(await on.count(all, 4_321)).toBe(4_321);
      expect(await on.count(all, 1_400)).toBe(1_400);
      expect(await on.count(all, 0)).toBe(0);
      const some: IndexQuery = {
        ...all,
        conditions: [{ keyword: 'InstanceNumber', match: range('101', '2100') }],
        limit: 3,
      };
      expect(await on.count(some, LARGE)).toBe(2_000);
    }
    await expect(chunked.count(all, LARGE, AbortSignal.abort())).rejects.toMatchObject({
      name: 'AbortError',
    });
  });

  /** The Patient IDs of the studies whose patient name matches. */
  async function namesMatching(match: ValueMatch, isPersonNameCaseInsensitive = false) {
    const matches = await collect({
      root: 'study',
      level: 'STUDY',
      conditions: [{ keyword: 'PatientName', match }],
      returnKeys: ['PatientID'],
      isPersonNameCaseInsensitive,
    });
    return matches.map((m) => m.PatientID).sort();
  }

  it('matches a name without `=` against the whole value and the alphabetic group', async () => {
    expect(await namesMatching(single('Yamada^Tarou'))).toEqual(['JP-TAROU', 'PLAIN']);
    expect(await namesMatching(wildcard('Yamada^Tar*'))).toEqual(['JP-TAROU', 'LONGER', 'PLAIN']);
    expect(await namesMatching(wildcard('*^Tarou'))).toEqual(['JP-TAROU', 'PLAIN', 'TANAKA']);
    expect(await namesMatching(wildcard('Yamada^Tar?u'))).toEqual(['JP-TAROU', 'PLAIN']);
    expect(await namesMatching(wildcard('Yamada*'))).toEqual([
      'JP-HANAKO',
      'JP-TAROU',
      'LONGER',
      'PLAIN',
    ]);
    expect(await namesMatching(single('Yamada'))).toEqual([]);
  });

  it('matches a name with `=` group by group, an empty group asking nothing', async () => {
    expect(await namesMatching(single('Yamada^Tarou=山田^太郎'))).toEqual(['JP-TAROU']);
    expect(await namesMatching(single('Yamada^Tarou=山田^太郎=やまだ^たろう'))).toEqual([
      'JP-TAROU',
    ]);
    expect(await namesMatching(single('Yamada^Tarou='))).toEqual(['JP-TAROU', 'PLAIN']);
    expect(await namesMatching(wildcard('=山田*'))).toEqual(['JP-HANAKO', 'JP-TAROU']);
    expect(await namesMatching(wildcard('*=*太郎'))).toEqual(['JP-TAROU']);
    expect(await namesMatching(single('=Yamada^Tarou'))).toEqual(['TANAKA']);
    expect(await namesMatching(single('Yamada^Tarou=山田^花子'))).toEqual([]);
  });

  it('matches name groups without regard to case when asked, in lists too', async () => {
    expect(await namesMatching(single('yamada^tarou'), true)).toEqual(['JP-TAROU', 'PLAIN']);
    expect(await namesMatching(single('YAMADA^TAROU=山田^太郎'), true)).toEqual(['JP-TAROU']);
    expect(await namesMatching(wildcard('*^TAROU'), true)).toEqual(['JP-TAROU', 'PLAIN', 'TANAKA']);
    expect(await namesMatching(single('yamada^tarou'))).toEqual([]);
    expect(await namesMatching(list('Yamada^Tarou', 'Suzuki^Ichiro'))).toEqual([
      'JP-TAROU',
      'PLAIN',
      'SUZUKI',
    ]);
    expect(await namesMatching(list('suzuki^ichiro=鈴木^一郎', 'yamada^hanako'), true)).toEqual([
      'JP-HANAKO',
      'SUZUKI',
    ]);
  });

  it('matches Referring Physician Name by group as well', async () => {
    const matches = await collect({
      root: 'study',
      level: 'STUDY',
      conditions: [{ keyword: 'ReferringPhysicianName', match: single('Suzuki^Ichiro') }],
      returnKeys: ['PatientID'],
    });
    expect(matches.map((m) => m.PatientID)).toEqual(['SUZUKI']);
  });
});
