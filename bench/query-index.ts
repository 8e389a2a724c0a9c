/**
 * The query benchmark's index: 1,000,000 synthetic instances (5,000 patients, 10,000 studies,
 * 4 series a study, 25 instances a series) with realistic variety in every column the queries
 * use (names, IDs, dates over five years, times, modalities), written by bulk inserts straight
 * into the tables: multi-row inserts on SQLite, unnest() of column arrays on PostgreSQL.
 */

import { CompiledQuery, sql } from 'kysely';
import type { OpenDatabase } from '../src/db/dialect.js';
import { rowsOf } from '../src/db/transactions.js';

export const PATIENTS = 5_000;
export const STUDIES = 10_000;
export const SERIES_PER_STUDY = 4;
export const INSTANCES_PER_SERIES = 25;
const UID_ROOT = '1.2.826.0.1.3680043.9.7777.99';
export const FIRST_DAY = Date.UTC(2021, 0, 1);
export const DAYS = 5 * 365;

/** A deterministic pseudo-random sequence (mulberry32): the same index on every run. */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export const SURNAMES = (
  'Smith Smithson Smits Johnson Jones Brown Williams Miller Davis Garcia Rodriguez Wilson ' +
  'Martinez Anderson Taylor Thomas Hernandez Moore Martin Jackson Thompson White Lopez Lee ' +
  'Gonzalez Harris Clark Lewis Robinson Walker Perez Hall Young Allen Sanchez Wright King ' +
  'Scott Green Baker Adams Nelson Hill Ramirez Campbell Mitchell Roberts Carter Phillips ' +
  'Evans Turner Torres Parker Collins Edwards Stewart Flores Morris Nguyen Murphy Rivera Cook ' +
  'Rogers Morgan Peterson Cooper Reed Bailey Bell Gomez Kelly Howard Ward Cox Diaz Richardson ' +
  'Wood Watson Brooks Bennett Gray James Reyes Cruz Hughes Price Myers Long Foster Sanders ' +
  'Ross Morales Powell Sullivan Russell Ortiz Jenkins Gutierrez Perry Butler Barnes Fisher ' +
  "Henderson Coleman Simmons Patterson Jordan Reynolds Hamilton Graham Kim O'Brien Muller " +
  'Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Rossi Russo Ferrari'
).split(' ');
const GIVEN_NAMES = (
  'James Mary John Patricia Robert Jennifer Michael Linda William Elizabeth David Barbara ' +
  'Richard Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Nancy Matthew Lisa Anthony ' +
  'Betty Mark Margaret Donald Sandra Steven Ashley Paul Kimberly Andrew Emily Joshua Donna'
).split(' ');
/** Modalities with their share of studies and their SOP class. */
const MODALITIES: readonly (readonly [string, number, string])[] = [
  ['CT', 0.3, '1.2.840.10008.5.1.4.1.1.2'],
  ['MR', 0.2, '1.2.840.10008.5.1.4.1.1.4'],
  ['CR', 0.15, '1.2.840.10008.5.1.4.1.1.1'],
  ['US', 0.1, '1.2.840.10008.5.1.4.1.1.6.1'],
  ['DX', 0.1, '1.2.840.10008.5.1.4.1.1.1.1'],
  ['MG', 0.08, '1.2.840.10008.5.1.4.1.1.1.2'],
  ['PT', 0.04, '1.2.840.10008.5.1.4.1.1.128'],
  ['NM', 0.03, '1.2.840.10008.5.1.4.1.1.20'],
];
const SR_CLASS = '1.2.840.10008.5.1.4.1.1.88.33';

type ColumnType = 'text' | 'integer' | 'bigint';
type Row = readonly (string | number | null)[];

/** One table's rows to insert, with the columns' names and types (for PostgreSQL's unnest). */
interface TableRows {
  readonly table: 'patients' | 'studies' | 'series' | 'instances';
  readonly columns: readonly (readonly [string, ColumnType])[];
  readonly rows: Iterable<Row>;
}

/** What the queries pick their values from. */
export interface Fixture {
  readonly patientIds: readonly string[];
  readonly studyUids: readonly string[];
  readonly accessionNumbers: readonly string[];
}

const pad = (n: number, width: number) => String(n).padStart(width, '0');
export const dicomDate = (ms: number) =>
  new Date(ms).toISOString().slice(0, 10).replaceAll('-', '');

function pickModality(r: number): readonly [string, number, string] {
  let total = 0;
  for (const modality of MODALITIES) {
    total += modality[1];
    if (r < total) return modality;
  }
  return MODALITIES[0]!;
}

/** The synthetic index, table by table; rows are generated as they are inserted. */
function synthesize(): { tables: TableRows[]; fixture: Fixture } {
  const next = random(20_260_102);
  const now = new Date().toISOString();
  const patientIds = Array.from(
    { length: PATIENTS },
    (_, i) => `PID${pad(i * 7_919 + 104_729, 8)}`,
  );
  const patients = patientIds.map((id, i): Row => {
    const surname = SURNAMES[Math.floor(next() * SURNAMES.length)]!;
    const given = GIVEN_NAMES[Math.floor(next() * GIVEN_NAMES.length)]!;
    const born = Date.UTC(1930 + Math.floor(next() * 80), 0, 1) + Math.floor(next() * 365) * 864e5;
    return [
      i + 1,
      id,
      '',
      `${surname}^${given}`,
      dicomDate(born),
      next() < 0.5 ? 'F' : 'M',
      now,
      now,
    ];
  });
  // Every patient has a study; the other half go to patients at random.
  const studyPatient = Array.from({ length: STUDIES }, (_, s) =>
    s < PATIENTS ? s + 1 : 1 + Math.floor(next() * PATIENTS),
  );
  const studyModality = studyPatient.map(() => pickModality(next()));
  const hasReport = studyPatient.map(() => next() < 0.3);
  const studyUids = studyPatient.map((_, s) => `${UID_ROOT}.${s + 1}`);
  const accessionNumbers = studyPatient.map((_, s) => `A${pad(s * 104_729 + 7, 10)}`);
  const studies = studyPatient.map((patient, s): Row => {
    const [modality, , sopClass] = studyModality[s]!;
    const day = FIRST_DAY + Math.floor(next() * DAYS) * 864e5;
    const time = `${pad(7 + Math.floor(next() * 12), 2)}${pad(Math.floor(next() * 60), 2)}${pad(Math.floor(next() * 60), 2)}`;
    const [modalities, classes] = hasReport[s]
      ? [`${modality}\\SR`, `${sopClass}\\${SR_CLASS}`]
      : [modality, sopClass];
    const description = `${modality} ${['HEAD', 'CHEST', 'ABDOMEN', 'SPINE', 'KNEE'][s % 5]}`;
    const referring = `${SURNAMES[s % SURNAMES.length]}^${GIVEN_NAMES[s % GIVEN_NAMES.length]}`;
    return [
      s + 1,
      studyUids[s]!,
      patient,
      dicomDate(day),
      time,
      accessionNumbers[s]!,
      `S${s + 1}`,
      description,
      referring,
      `0${pad(20 + (s % 70), 2)}Y`,
      modalities,
      classes,
      SERIES_PER_STUDY,
      SERIES_PER_STUDY * INSTANCES_PER_SERIES,
      now,
      now,
    ];
  });
  const seriesOf = (s: number, k: number) => {
    const isReport = hasReport[s] && k === SERIES_PER_STUDY - 1;
    return isReport ? (['SR', 0, SR_CLASS] as const) : studyModality[s]!;
  };
  function* series(): Generator<Row> {
    for (let s = 0; s < STUDIES; s++) {
      const date = studies[s]![3] as string;
      for (let k = 0; k < SERIES_PER_STUDY; k++) {
        const id = s * SERIES_PER_STUDY + k + 1;
        const [modality] = seriesOf(s, k);
        yield [
          id,
          `${studyUids[s]}.${k + 1}`,
          s + 1,
          modality,
          k + 1,
          `${modality} series ${k + 1}`,
          'CHEST',
          date,
          studies[s]![4] as string,
          `protocol ${k + 1}`,
          INSTANCES_PER_SERIES,
          now,
          now,
        ];
      }
    }
  }
  function* instances(): Generator<Row> {
    for (let s = 0; s < STUDIES; s++) {
      for (let k = 0; k < SERIES_PER_STUDY; k++) {
        const seriesId = s * SERIES_PER_STUDY + k + 1;
        const sopClass = seriesOf(s, k)[2];
        for (let n = 1; n <= INSTANCES_PER_SERIES; n++) {
          const uid = `${studyUids[s]}.${k + 1}.${n}`;
          yield [
            (seriesId - 1) * INSTANCES_PER_SERIES + n,
            uid,
            seriesId,
            sopClass,
            n,
            '1.2.840.10008.1.2.1',
            `${studyUids[s]}/${k + 1}/${n}.dcm`,
            526_000 + n,
            'MODALITY',
            now,
          ];
        }
      }
    }
  }
  const text = (name: string) => [name, 'text'] as const;
  const integer = (name: string) => [name, 'integer'] as const;
  const tables: TableRows[] = [
    {
      table: 'patients',
      columns: [
        integer('id'),
        ...[
          'patient_id',
          'issuer_of_patient_id',
          'patient_name',
          'patient_birth_date',
          'patient_sex',
          'created_at',
          'updated_at',
        ].map(text),
      ],
      rows: patients,
    },
    {
      table: 'studies',
      columns: [
        integer('id'),
        text('study_instance_uid'),
        integer('patient_fk'),
        ...[
          'study_date',
          'study_time',
          'accession_number',
          'study_id',
          'study_description',
          'referring_physician_name',
          'patient_age',
          'modalities_in_study',
          'sop_classes_in_study',
        ].map(text),
        integer('num_series'),
        integer('num_instances'),
        text('created_at'),
        text('updated_at'),
      ],
      rows: studies,
    },
    {
      table: 'series',
      columns: [
        integer('id'),
        text('series_instance_uid'),
        integer('study_fk'),
        text('modality'),
        integer('series_number'),
        text('series_description'),
        text('body_part_examined'),
        text('series_date'),
        text('series_time'),
        text('protocol_name'),
        integer('num_instances'),
        text('created_at'),
        text('updated_at'),
      ],
      rows: series(),
    },
    {
      table: 'instances',
      columns: [
        integer('id'),
        text('sop_instance_uid'),
        integer('series_fk'),
        text('sop_class_uid'),
        integer('instance_number'),
        text('transfer_syntax_uid'),
        text('file_path'),
        ['file_size', 'bigint'],
        text('calling_ae'),
        text('received_at'),
      ],
      rows: instances(),
    },
  ];
  return { tables, fixture: { patientIds, studyUids, accessionNumbers } };
}

/** Groups rows into batches of `size`. */
function* batches(rows: Iterable<Row>, size: number): Generator<Row[]> {
  let batch: Row[] = [];
  for (const row of rows) {
    batch.push(row);
    if (batch.length === size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

/** SQLite: multi-row inserts, 100,000 rows a transaction (each statement prepared once). */
async function insertSqlite(database: OpenDatabase, { table, columns, rows }: TableRows) {
  const rowsPerStatement = Math.floor(30_000 / columns.length);
  const names = columns.map(([name]) => name).join(', ');
  const placeholders = `(${columns.map(() => '?').join(', ')})`;
  const statement = (count: number) =>
    `insert into ${table} (${names}) values ${Array(count).fill(placeholders).join(', ')}`;
  for (const group of batches(rows, rowsPerStatement * 40)) {
    await database.runner.runTransaction(function* () {
      for (const batch of batches(group, rowsPerStatement)) {
        yield* rowsOf(CompiledQuery.raw(statement(batch.length), batch.flat()));
      }
    });
  }
}

/** PostgreSQL: one insert from unnest() of a parameter array per column, 50,000 rows each. */
async function insertPostgres(database: OpenDatabase, { table, columns, rows }: TableRows) {
  const names = columns.map(([name]) => name).join(', ');
  const arrays = columns.map(([, type], i) => `$${i + 1}::${type}[]`).join(', ');
  const text = `insert into ${table} (${names}) select * from unnest(${arrays})`;
  for (const batch of batches(rows, 50_000)) {
    const parameters = columns.map((_, i) => batch.map((row) => row[i]));
    await database.db.executeQuery(CompiledQuery.raw(text, parameters));
  }
}

/** Fills the index; returns how long it took in seconds. */
async function populate(database: OpenDatabase, tables: readonly TableRows[]): Promise<number> {
  const started = performance.now();
  for (const table of tables) {
    await (database.kind === 'sqlite' ? insertSqlite : insertPostgres)(database, table);
  }
  // What autovacuum would do after such a load; SQLite is left as the server leaves it.
  if (database.kind === 'postgres') await sql`analyze`.execute(database.db);
  return (performance.now() - started) / 1000;
}

/** Builds the synthetic index in an open (migrated, empty) database. */
export async function buildQueryIndex(
  database: OpenDatabase,
): Promise<{ populateSeconds: number; fixture: Fixture }> {
  const { tables, fixture } = synthesize();
  return { populateSeconds: await populate(database, tables), fixture };
}
