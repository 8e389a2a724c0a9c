/**
 * The instance index on both databases it runs on: SQLite in a temporary directory and
 * PostgreSQL (127.0.0.1:5432, database `test`) in a fresh schema. The same suite runs on each:
 * patients, studies and series rows with their related counts, Modalities in Study and SOP
 * Classes in Study as instances arrive, are re-sent (overwrite) and move between series; the
 * items of sequence keys kept, replaced and removed with their entity; the persistent counter;
 * migrations run twice.
 *
 * Layer: integration test (db).
 */

import { tmpdir } from 'node:os';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrate, type OpenDatabase, openDatabase } from '../../src/db/dialect.js';
import {
  IndexRepository,
  type InstanceRecord,
} from '../../src/db/repositories/index-repository.js';
import { firstRowOf, rowsOf } from '../../src/db/transactions.js';
import type { SequenceValues } from '../../src/dicom/query/model.js';
import { type Backend, POSTGRES_URL, postgresBackend, sqliteBackend } from '../helpers/postgres.js';

const MR = '1.2.840.10008.5.1.4.1.1.4';
const CT = '1.2.840.10008.5.1.4.1.1.2';
const SR = '1.2.840.10008.5.1.4.1.1.88.33';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const ROOT = '1.2.826.0.1.3680043.9.7777.20';

/** An instance record: a patient, study, series and instance under the test root. */
function record(
  n: number,
  overrides: Partial<InstanceRecord> & { study?: number; series?: number } = {},
): InstanceRecord {
  const { study = 1, series = 1, ...rest } = overrides;
  return {
    patientId: 'PID-1',
    issuerOfPatientId: '',
    patientName: 'Doe^Jane',
    patientBirthDate: '19700101',
    patientSex: 'F',
    studyInstanceUid: `${ROOT}.${study}`,
    studyDate: '20260102',
    studyTime: '193000',
    accessionNumber: `ACC${study}`,
    studyId: `S${study}`,
    studyDescription: 'Brain',
    referringPhysicianName: 'Who^Doctor',
    patientAge: '055Y',
    seriesInstanceUid: `${ROOT}.${study}.${series}`,
    modality: 'MR',
    seriesNumber: series,
    seriesDescription: `series ${series}`,
    bodyPartExamined: 'HEAD',
    seriesDate: '20260102',
    seriesTime: '193000',
    protocolName: 'T1',
    sopInstanceUid: `${ROOT}.${study}.${series}.${n}`,
    sopClassUid: MR,
    instanceNumber: n,
    transferSyntaxUid: EXPLICIT_LE,
    filePath: `p/${study}/${series}/${n}.dcm`,
    fileSize: 1_000 + n,
    callingAe: 'STORESCU',
    receivedAt: new Date(Date.UTC(2026, 0, 2, 19, 30, n)).toISOString(),
    ...rest,
  };
}

interface StudyRow {
  num_series: number;
  num_instances: number;
  modalities_in_study: string[];
  sop_classes_in_study: string[];
}

describe.each([
  ['SQLite', () => sqliteBackend('index-repository-test')],
  ['PostgreSQL', () => postgresBackend('index')],
])('the index on %s', (_name, makeBackend) => {
  let backend: Backend;
  let database: OpenDatabase;
  let index: IndexRepository;
  const opened: OpenDatabase[] = [];

  async function open(): Promise<OpenDatabase> {
    const db = await backend.open();
    opened.push(db);
    return db;
  }

  async function closeAll(): Promise<void> {
    for (const db of opened.splice(0)) await db.close();
  }

  beforeEach(async () => {
    backend = makeBackend();
    database = await open();
    index = new IndexRepository(database);
  });

  afterEach(async () => {
    await closeAll();
    await backend.dispose();
  });

  afterAll(async () => {
    await closeAll();
  });

  async function study(n: number): Promise<StudyRow | undefined> {
    const row = await database.db
      .selectFrom('studies')
      .select(['num_series', 'num_instances', 'modalities_in_study', 'sop_classes_in_study'])
      .where('study_instance_uid', '=', `${ROOT}.${n}`)
      .executeTakeFirst();
    if (row === undefined) return undefined;
    const list = (text: string) => (text === '' ? [] : text.split('\\').sort());
    return {
      num_series: Number(row.num_series),
      num_instances: Number(row.num_instances),
      modalities_in_study: list(row.modalities_in_study),
      sop_classes_in_study: list(row.sop_classes_in_study),
    };
  }

  async function seriesCount(
    studyNumber: number,
    seriesNumber: number,
  ): Promise<number | undefined> {
    const row = await database.db
      .selectFrom('series')
      .select('num_instances')
      .where('series_instance_uid', '=', `${ROOT}.${studyNumber}.${seriesNumber}`)
      .executeTakeFirst();
    return row === undefined ? undefined : Number(row.num_instances);
  }

  /** Related counts recomputed from the instance rows: what the kept counts must equal. */
  async function expectCountsMatchRows(): Promise<void> {
    const series = await database.db
      .selectFrom('series')
      .select(['id', 'study_fk', 'num_instances'])
      .execute();
    const instances = await database.db.selectFrom('instances').select(['series_fk']).execute();
    for (const s of series) {
      const actual = instances.filter((i) => i.series_fk === s.id).length;
      expect(Number(s.num_instances), `series ${s.id}`).toBe(actual);
    }
    const studies = await database.db
      .selectFrom('studies')
      .select(['id', 'num_series', 'num_instances'])
      .execute();
    for (const st of studies) {
      const itsSeries = series.filter((s) => s.study_fk === st.id);
      const actual = itsSeries.reduce((sum, s) => sum + Number(s.num_instances), 0);
      expect(Number(st.num_instances), `study ${st.id}`).toBe(actual);
      expect(Number(st.num_series), `study ${st.id}`).toBe(itsSeries.length);
    }
    // Nothing empty is left for C-FIND to report.
    for (const s of series) expect(Number(s.num_instances), `series ${s.id}`).toBeGreaterThan(0);
    for (const st of studies) expect(Number(st.num_series), `study ${st.id}`).toBeGreaterThan(0);
  }

  it('builds patient, study and series rows with the related counts', async () => {
    await index.addInstances([record(1), record(2)]);
    await index.addInstances([
      record(3, { series: 2, modality: 'CT', sopClassUid: CT }),
      record(4, { study: 2, modality: 'SR', sopClassUid: SR }),
    ]);
    expect(await index.counts()).toEqual({ patients: 1, studies: 2, series: 3, instances: 4 });
    expect(await study(1)).toEqual({
      num_series: 2,
      num_instances: 3,
      modalities_in_study: ['CT', 'MR'],
      sop_classes_in_study: [CT, MR].sort(),
    });
    expect(await study(2)).toEqual({
      num_series: 1,
      num_instances: 1,
      modalities_in_study: ['SR'],
      sop_classes_in_study: [SR],
    });
    expect(await seriesCount(1, 1)).toBe(2);
    expect(await seriesCount(1, 2)).toBe(1);
    expect(await seriesCount(2, 1)).toBe(1);
    await expectCountsMatchRows();
  });

  it('keeps the attributes of each level in its own row', async () => {
    await index.addInstances([record(1)]);
    const row = await database.db
      .selectFrom('instances')
      .innerJoin('series', 'series.id', 'instances.series_fk')
      .innerJoin('studies', 'studies.id', 'series.study_fk')
      .innerJoin('patients', 'patients.id', 'studies.patient_fk')
      .select([
        'patients.patient_id',
        'patients.patient_name',
        'patients.patient_birth_date',
        'studies.study_instance_uid',
        'studies.accession_number',
        'studies.patient_age',
        'series.modality',
        'series.series_number',
        'series.body_part_examined',
        'instances.sop_class_uid',
        'instances.instance_number',
        'instances.transfer_syntax_uid',
        'instances.file_path',
        'instances.file_size',
        'instances.calling_ae',
      ])
      .executeTakeFirstOrThrow();
    expect({ ...row, file_size: Number(row.file_size) }).toEqual({
      patient_id: 'PID-1',
      patient_name: 'Doe^Jane',
      patient_birth_date: '19700101',
      study_instance_uid: `${ROOT}.1`,
      accession_number: 'ACC1',
      patient_age: '055Y',
      modality: 'MR',
      series_number: 1,
      body_part_examined: 'HEAD',
      sop_class_uid: MR,
      instance_number: 1,
      transfer_syntax_uid: EXPLICIT_LE,
      file_path: 'p/1/1/1.dcm',
      file_size: 1_001,
      calling_ae: 'STORESCU',
    });
    expect(await index.findInstance(`${ROOT}.1.1.1`)).toEqual({
      sopInstanceUid: `${ROOT}.1.1.1`,
      sopClassUid: MR,
      transferSyntaxUid: EXPLICIT_LE,
      filePath: 'p/1/1/1.dcm',
      fileSize: 1_001,
      receivedAt: record(1).receivedAt,
    });
    expect(await index.findInstance(`${ROOT}.9.9.9`)).toBeUndefined();
  });

  it('keeps one patient per Patient ID and Issuer, and a known name when a later one is empty', async () => {
    await index.addInstances([record(1), record(2, { patientName: null })]);
    await index.addInstances([record(3, { study: 2, issuerOfPatientId: 'HOSP-B' })]);
    const patients = await database.db
      .selectFrom('patients')
      .select(['patient_id', 'issuer_of_patient_id', 'patient_name'])
      .orderBy('id')
      .execute();
    expect(patients).toEqual([
      { patient_id: 'PID-1', issuer_of_patient_id: '', patient_name: 'Doe^Jane' },
      { patient_id: 'PID-1', issuer_of_patient_id: 'HOSP-B', patient_name: 'Doe^Jane' },
    ]);
  });

  it('does not count an instance twice when it is added again (overwrite)', async () => {
    await index.addInstances([record(1), record(2)]);
    await index.addInstances([record(1, { filePath: 'p/1/1/1_1.dcm', fileSize: 5_000 })]);
    await index.addInstances([record(2), record(2, { fileSize: 6_000 })]);
    expect(await index.counts()).toEqual({ patients: 1, studies: 1, series: 1, instances: 2 });
    expect(await study(1)).toMatchObject({ num_series: 1, num_instances: 2 });
    expect(await seriesCount(1, 1)).toBe(2);
    expect(await index.findInstance(`${ROOT}.1.1.1`)).toMatchObject({
      filePath: 'p/1/1/1_1.dcm',
      fileSize: 5_000,
    });
    expect(await index.totals()).toEqual({ instances: 2, bytes: 5_000 + 6_000 });
    await expectCountsMatchRows();
  });

  it('moves the counts when an instance comes back in another series of its study', async () => {
    const moved = record(1);
    await index.addInstances([
      moved,
      record(2),
      record(3, { series: 2, modality: 'CT', sopClassUid: CT }),
    ]);
    await index.addInstances([
      { ...moved, seriesInstanceUid: `${ROOT}.1.2`, modality: 'CT', seriesNumber: 2 },
    ]);
    expect(await seriesCount(1, 1)).toBe(1);
    expect(await seriesCount(1, 2)).toBe(2);
    expect(await study(1)).toMatchObject({ num_series: 2, num_instances: 3 });
    expect(await index.counts()).toMatchObject({ series: 2, instances: 3 });
    await expectCountsMatchRows();
  });

  it('moves the counts and lists when an instance comes back in a series of another study', async () => {
    const moved = record(1, { series: 2, modality: 'CT', sopClassUid: CT });
    await index.addInstances([record(2), moved]);
    expect(await study(1)).toMatchObject({
      num_series: 2,
      num_instances: 2,
      modalities_in_study: ['CT', 'MR'],
    });
    await index.addInstances([
      {
        ...moved,
        studyInstanceUid: `${ROOT}.2`,
        seriesInstanceUid: `${ROOT}.2.1`,
      },
    ]);
    // The series it left is now empty: it is no longer reported, nor is its modality or class.
    expect(await seriesCount(1, 2)).toBeUndefined();
    expect(await study(1)).toEqual({
      num_series: 1,
      num_instances: 1,
      modalities_in_study: ['MR'],
      sop_classes_in_study: [MR],
    });
    expect(await study(2)).toEqual({
      num_series: 1,
      num_instances: 1,
      modalities_in_study: ['CT'],
      sop_classes_in_study: [CT],
    });
    expect(await seriesCount(2, 1)).toBe(1);
    expect(await index.counts()).toEqual({ patients: 1, studies: 2, series: 2, instances: 2 });
    await expectCountsMatchRows();
  });

  it('keeps a study whose only instance moves to a new series of that study', async () => {
    const moved = record(1);
    await index.addInstances([moved]);
    await index.addInstances([
      { ...moved, seriesInstanceUid: `${ROOT}.1.2`, modality: 'CT', sopClassUid: CT },
    ]);
    expect(await seriesCount(1, 1)).toBeUndefined();
    expect(await seriesCount(1, 2)).toBe(1);
    expect(await study(1)).toEqual({
      num_series: 1,
      num_instances: 1,
      modalities_in_study: ['CT'],
      sop_classes_in_study: [CT],
    });
    await expectCountsMatchRows();
  });

  it('removes a study left without instances when its last instance moves away', async () => {
    const moved = record(1);
    await index.addInstances([moved]);
    await index.addInstances([
      { ...moved, studyInstanceUid: `${ROOT}.2`, seriesInstanceUid: `${ROOT}.2.1` },
    ]);
    expect(await study(1)).toBeUndefined();
    expect(await study(2)).toMatchObject({ num_series: 1, num_instances: 1 });
    expect(await index.counts()).toEqual({ patients: 1, studies: 1, series: 1, instances: 1 });
    await expectCountsMatchRows();
  });

  it('keeps the related counts right over a random sequence of adds and re-adds', async () => {
    // A fixed pseudo-random sequence: instances land in 3 studies x 2 series, often re-sent.
    let seed = 12345;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let batch = 0; batch < 12; batch++) {
      const records: InstanceRecord[] = [];
      for (let i = 0; i < 5; i++) {
        const n = next(15);
        const studyNumber = 1 + next(3);
        const seriesNumber = 1 + next(2);
        records.push({
          ...record(n, { study: studyNumber, series: seriesNumber }),
          sopInstanceUid: `${ROOT}.instance.${n}`,
        });
      }
      await index.addInstances(records);
      await expectCountsMatchRows();
    }
  });

  /** The stored items of an entity's sequence, as [item number, tag, value] rows in order. */
  async function items(
    entity: 'patient' | 'study' | 'series',
    sequenceTag: number,
    uid?: string,
  ): Promise<[number, number, string][]> {
    const owner =
      entity === 'patient'
        ? database.db
            .selectFrom('patients')
            .select('id')
            .where('patient_id', '=', uid ?? 'PID-1')
        : entity === 'study'
          ? database.db
              .selectFrom('studies')
              .select('id')
              .where('study_instance_uid', '=', uid ?? `${ROOT}.1`)
          : database.db
              .selectFrom('series')
              .select('id')
              .where('series_instance_uid', '=', uid ?? `${ROOT}.1.1`);
    const rows = await database.db
      .selectFrom('sequence_items')
      .select(['item_number', 'element_tag', 'value'])
      .where('entity', '=', entity)
      .where('sequence_tag', '=', sequenceTag)
      .where('owner_fk', 'in', owner)
      .orderBy('item_number')
      .orderBy('element_tag')
      .execute();
    return rows.map((row) => [Number(row.item_number), Number(row.element_tag), row.value]);
  }

  async function itemRowIds(): Promise<number[]> {
    const rows = await database.db
      .selectFrom('sequence_items')
      .select('id')
      .orderBy('id')
      .execute();
    return rows.map((row) => Number(row.id));
  }

  const Sequence = {
    OtherPatientIDs: 0x00101002,
    ProcedureCode: 0x00081032,
    RequestAttributes: 0x00400275,
  } as const;
  const Item = {
    PatientID: 0x00100020,
    TypeOfPatientID: 0x00100022,
    CodeValue: 0x00080100,
    CodingSchemeDesignator: 0x00080102,
    RequestedProcedureID: 0x00401001,
  } as const;
  const procedure = (...codes: [string, string][]): SequenceValues => ({
    tag: Sequence.ProcedureCode,
    items: codes.map(([code, scheme]) => [
      { tag: Item.CodingSchemeDesignator, value: scheme },
      { tag: Item.CodeValue, value: code },
    ]),
  });
  const ALL_SEQUENCES: SequenceValues[] = [
    { tag: Sequence.OtherPatientIDs, items: [[{ tag: Item.PatientID, value: 'OTHER-1' }]] },
    procedure(['P1', 'LOCAL'], ['P2', 'DCM']),
    {
      tag: Sequence.RequestAttributes,
      items: [[{ tag: Item.RequestedProcedureID, value: 'RP1' }]],
    },
  ];

  it('keeps the items of each sequence with the patient, study or series it belongs to', async () => {
    await index.addInstances([record(1), record(2, { sequences: ALL_SEQUENCES })]);
    expect(await items('patient', Sequence.OtherPatientIDs)).toEqual([
      [1, Item.PatientID, 'OTHER-1'],
    ]);
    expect(await items('study', Sequence.ProcedureCode)).toEqual([
      [1, Item.CodeValue, 'P1'],
      [1, Item.CodingSchemeDesignator, 'LOCAL'],
      [2, Item.CodeValue, 'P2'],
      [2, Item.CodingSchemeDesignator, 'DCM'],
    ]);
    expect(await items('series', Sequence.RequestAttributes)).toEqual([
      [1, Item.RequestedProcedureID, 'RP1'],
    ]);
    // Nothing else: each sequence under its own entity only.
    expect(await itemRowIds()).toHaveLength(6);
  });

  it('keeps stored items when an instance carries none, and rewrites nothing when they are the same', async () => {
    await index.addInstances([record(1, { sequences: ALL_SEQUENCES })]);
    const before = await itemRowIds();
    // Without sequences (new series: the rows are written again), then the same ones again.
    await index.addInstances([record(2, { series: 2 })]);
    await index.addInstances([record(3, { series: 3, sequences: ALL_SEQUENCES })]);
    // The rows written first are all still there; only series 3's Request Attributes are new.
    const after = await itemRowIds();
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after).toHaveLength(before.length + 1);
    expect(await items('study', Sequence.ProcedureCode)).toHaveLength(4);
    expect(await items('series', Sequence.RequestAttributes, `${ROOT}.1.2`)).toEqual([]);
  });

  it('replaces the items when a later instance of the same series brings other ones, cached or not', async () => {
    // One batch, then one at a time: both go through the series cache.
    await index.addInstances([
      record(1, { sequences: [procedure(['P1', 'LOCAL'])] }),
      record(2, { sequences: [procedure(['P9', 'DCM'], ['P8', 'DCM'])] }),
    ]);
    expect(await items('study', Sequence.ProcedureCode)).toEqual([
      [1, Item.CodeValue, 'P9'],
      [1, Item.CodingSchemeDesignator, 'DCM'],
      [2, Item.CodeValue, 'P8'],
      [2, Item.CodingSchemeDesignator, 'DCM'],
    ]);
    await index.addInstances([record(3)]);
    await index.addInstances([record(4, { sequences: [procedure(['P1', 'LOCAL'])] })]);
    expect(await items('study', Sequence.ProcedureCode)).toEqual([
      [1, Item.CodeValue, 'P1'],
      [1, Item.CodingSchemeDesignator, 'LOCAL'],
    ]);
    // The patient's and series' items are untouched by a study sequence.
    expect(await items('patient', Sequence.OtherPatientIDs)).toEqual([]);
    await expectCountsMatchRows();
  });

  it('keeps the first value of a tag repeated in one item', async () => {
    await index.addInstances([
      record(1, {
        sequences: [
          {
            tag: Sequence.ProcedureCode,
            items: [
              [
                { tag: Item.CodeValue, value: 'FIRST' },
                { tag: Item.CodeValue, value: 'SECOND' },
              ],
            ],
          },
        ],
      }),
    ]);
    expect(await items('study', Sequence.ProcedureCode)).toEqual([[1, Item.CodeValue, 'FIRST']]);
  });

  it('removes the items of a series and a study whose last instance goes', async () => {
    await index.addInstances([
      record(1, { sequences: ALL_SEQUENCES }),
      record(2, { study: 2, sequences: [procedure(['P3', 'LOCAL'])] }),
    ]);
    await index.removeInstances([`${ROOT}.1.1.1`]);
    expect(await items('study', Sequence.ProcedureCode)).toEqual([]);
    expect(await items('series', Sequence.RequestAttributes)).toEqual([]);
    expect(await items('study', Sequence.ProcedureCode, `${ROOT}.2`)).toHaveLength(2);
    // Patients stay (as their rows do), with their items.
    expect(await items('patient', Sequence.OtherPatientIDs)).toHaveLength(1);
  });

  it('counts up a named counter from 1, each name on its own', async () => {
    expect(await index.nextCounter('file_sequence')).toBe(1);
    expect(await index.nextCounter('file_sequence')).toBe(2);
    expect(await index.nextCounter('other')).toBe(1);
    expect(await index.nextCounter('file_sequence')).toBe(3);
  });

  it('never hands out a counter value twice, even to concurrent callers', async () => {
    const values = await Promise.all(
      Array.from({ length: 20 }, () => index.nextCounter('file_sequence')),
    );
    expect([...values].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('keeps the counter across a close and reopen', async () => {
    await index.nextCounter('file_sequence');
    await index.nextCounter('file_sequence');
    await database.close();
    opened.splice(opened.indexOf(database), 1);
    const reopened = await open();
    expect(await new IndexRepository(reopened).nextCounter('file_sequence')).toBe(3);
  });

  it('runs the migrations once: opening twice keeps the schema and the data', async () => {
    await index.addInstances([record(1)]);
    expect(await migrate(database.db)).toEqual([]);
    const second = await open();
    expect(await migrate(second.db)).toEqual([]);
    const again = new IndexRepository(second);
    expect(await again.counts()).toEqual({ patients: 1, studies: 1, series: 1, instances: 1 });
    const migrations = await sql<{ name: string }>`select name from kysely_migration`.execute(
      second.db,
    );
    expect(migrations.rows.map((row) => row.name)).toEqual([
      '0001-initial',
      '0002-administration',
      '0003-users',
      '0004-query',
      '0005-sequence-items',
      '0006-handoff',
      '0007-routing',
      '0008-tls',
    ]);
  });

  it('commits a transaction body that returns, with every query it yielded', async () => {
    const db = database.db;
    const result = await database.runner.runTransaction(function* () {
      yield* rowsOf(db.insertInto('counters').values({ name: 'a', value: 1 }).compile());
      yield* rowsOf(db.insertInto('counters').values({ name: 'b', value: 2 }).compile());
      return yield* firstRowOf(
        db
          .selectFrom('counters')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .compile(),
      );
    });
    expect(Number(result.n)).toBe(2);
    expect(await index.nextCounter('b')).toBe(3);
  });

  it('rolls a transaction body back whole when it throws, and the next one runs', async () => {
    const db = database.db;
    const failing = database.runner.runTransaction(function* () {
      yield* rowsOf(db.insertInto('counters').values({ name: 'a', value: 1 }).compile());
      // The same name again: the primary key refuses it.
      yield* rowsOf(db.insertInto('counters').values({ name: 'a', value: 2 }).compile());
    });
    await expect(failing).rejects.toThrow();
    expect(await index.nextCounter('a')).toBe(1);
    await index.addInstances([record(1)]);
    expect(await index.counts()).toEqual({ patients: 1, studies: 1, series: 1, instances: 1 });
  });
});

describe('the index on PostgreSQL beside other schemas', () => {
  const schemas = [
    `t_index_other_${process.pid}_${Date.now()}`,
    `t_index_fresh_${process.pid}_${Date.now()}`,
  ];

  afterAll(async () => {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      for (const schema of schemas) await client.query(`drop schema if exists ${schema} cascade`);
    } finally {
      await client.end();
    }
  });

  it('migrates a fresh schema while another schema of the database holds migration tables', async () => {
    const [other, fresh] = schemas as [string, string];
    const first = await openDatabase({ url: POSTGRES_URL, schema: other, dataDir: tmpdir() });
    await first.close();
    const second = await openDatabase({ url: POSTGRES_URL, schema: fresh, dataDir: tmpdir() });
    try {
      const tables = await sql<{ table_name: string }>`
        select table_name from information_schema.tables
        where table_schema = ${fresh} order by table_name`.execute(second.db);
      expect(tables.rows.map((row) => row.table_name)).toEqual([
        'allowed_ae_titles',
        'api_tokens',
        'audit_log',
        'counters',
        'forward_destinations',
        'forward_jobs',
        'handoff_events',
        'handoff_jobs',
        'instances',
        'kysely_migration',
        'kysely_migration_lock',
        'patients',
        'routing_rules',
        'sequence_items',
        'series',
        'series_states',
        'service_status',
        'sessions',
        'settings',
        'studies',
        'transactions',
        'users',
      ]);
      expect(await new IndexRepository(second).nextCounter('file_sequence')).toBe(1);
      // Introspection (the migrator's) sees our schema only: another client's schema dropped
      // meanwhile cannot fail it (Kysely's own checks every schema of the database).
      const seen = await second.db.introspection.getTables({ withInternalKyselyTables: true });
      expect(new Set(seen.map((table) => table.schema))).toEqual(new Set([fresh]));
      expect(seen.map((table) => table.name)).toContain('kysely_migration');
      expect(await second.db.introspection.getSchemas()).toEqual([{ name: fresh }]);
    } finally {
      await second.close();
    }
  });
});
