/**
 * The query benchmark (issue: Query/Retrieve): an index of 1,000,000 synthetic instances
 * (5,000 patients, 10,000 studies, 4 series a study, 25 instances a series) built by bulk
 * inserts straight into the tables, on SQLite (a file in a temporary directory, opened as the
 * server opens it) and on PostgreSQL (a scratch schema, dropped at the end); then C-FIND's
 * queries through QueryRepository.find, each run with varying values, timed to the last match.
 * Prints p50 and p99 per query for both databases side by side, with the SQLite targets.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { type OpenDatabase, openDatabase } from '../src/db/dialect.js';
import { QueryRepository } from '../src/db/repositories/query-repository.js';
import type { IndexQuery, QueryKeyword } from '../src/dicom/query/model.js';
import {
  buildQueryIndex,
  DAYS,
  dicomDate,
  FIRST_DAY,
  type Fixture,
  INSTANCES_PER_SERIES,
  PATIENTS,
  random,
  SERIES_PER_STUDY,
  STUDIES,
  SURNAMES,
} from './query-index.js';

const RUNS = 200;
const WARM_UP_RUNS = 10;
const TARGET_P50_MS = 10;
const TARGET_P99_MS = 50;

const STUDY_KEYS: readonly QueryKeyword[] = [
  'PatientName',
  'PatientID',
  'PatientBirthDate',
  'PatientSex',
  'StudyDate',
  'StudyTime',
  'AccessionNumber',
  'StudyID',
  'StudyInstanceUID',
  'StudyDescription',
  'ReferringPhysicianName',
  'ModalitiesInStudy',
  'NumberOfStudyRelatedSeries',
  'NumberOfStudyRelatedInstances',
];
const SERIES_KEYS: readonly QueryKeyword[] = [
  'SeriesInstanceUID',
  'Modality',
  'SeriesNumber',
  'SeriesDescription',
  'BodyPartExamined',
  'NumberOfSeriesRelatedInstances',
];
const IMAGE_KEYS: readonly QueryKeyword[] = ['SOPInstanceUID', 'SOPClassUID', 'InstanceNumber'];

/** A kind of query: its label, and its query with values picked anew for each run. */
interface QueryKind {
  readonly label: string;
  readonly query: (pick: () => number) => IndexQuery;
  /** Timed as a retrieve (the instances a C-MOVE or C-GET sends) rather than as a C-FIND. */
  readonly isRetrieve?: boolean;
  /** A study-level C-FIND: the targets apply. */
  readonly isTargeted?: boolean;
}

function queryKinds(fixture: Fixture): QueryKind[] {
  const any = <T>(list: readonly T[], pick: () => number) =>
    list[Math.floor(pick() * list.length)]!;
  const study = (conditions: IndexQuery['conditions'], isPersonNameCaseInsensitive = false) => ({
    root: 'study' as const,
    level: 'STUDY' as const,
    conditions,
    returnKeys: STUDY_KEYS,
    isPersonNameCaseInsensitive,
  });
  const prefix = (pick: () => number) => any(SURNAMES, pick).slice(0, 3);
  const month = (pick: () => number) => {
    const day = new Date(FIRST_DAY + Math.floor(pick() * DAYS) * 864e5);
    const start = new Date(Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), 1));
    const end = new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 0));
    return {
      kind: 'range' as const,
      from: dicomDate(start.getTime()),
      to: dicomDate(end.getTime()),
    };
  };
  const underStudy =
    (level: 'STUDY' | 'SERIES' | 'IMAGE', returnKeys: readonly QueryKeyword[]) =>
    (pick: () => number): IndexQuery => ({
      root: 'study',
      level,
      returnKeys,
      conditions: [
        {
          keyword: 'StudyInstanceUID',
          match: { kind: 'single', value: any(fixture.studyUids, pick) },
        },
      ],
    });
  const kinds: QueryKind[] = [
    {
      label: 'study by Patient ID',
      query: (pick) =>
        study([
          { keyword: 'PatientID', match: { kind: 'single', value: any(fixture.patientIds, pick) } },
        ]),
    },
    {
      label: 'study by name wildcard (Smi*)',
      query: (pick) =>
        study([
          { keyword: 'PatientName', match: { kind: 'wildcard', pattern: `${prefix(pick)}*` } },
        ]),
    },
    {
      label: 'study by name wildcard (SMI*), case-insens.',
      query: (pick) =>
        study(
          [
            {
              keyword: 'PatientName',
              match: { kind: 'wildcard', pattern: `${prefix(pick).toUpperCase()}*` },
            },
          ],
          true,
        ),
    },
    {
      label: 'study by Study Date range (a month)',
      query: (pick) => study([{ keyword: 'StudyDate', match: month(pick) }]),
    },
    {
      label: 'study by Accession Number',
      query: (pick) =>
        study([
          {
            keyword: 'AccessionNumber',
            match: { kind: 'single', value: any(fixture.accessionNumbers, pick) },
          },
        ]),
    },
    { label: 'series under one study (4 series)', query: underStudy('SERIES', SERIES_KEYS) },
    { label: 'images under one study (100 images)', query: underStudy('IMAGE', IMAGE_KEYS) },
    {
      label: 'retrieve: instances of one study (C-MOVE)',
      query: underStudy('STUDY', []),
      isRetrieve: true,
    },
  ];
  return kinds.map((kind) => ({ ...kind, isTargeted: kind.label.startsWith('study ') }));
}

interface Timing {
  readonly p50: number;
  readonly p99: number;
  readonly meanMatches: number;
}

/** Runs a kind of query RUNS times (after a warm-up), each to its last match. */
async function time(repository: QueryRepository, kind: QueryKind): Promise<Timing> {
  // The same values for every kind: the two name wildcards ask for the same names.
  const pick = random(7_919);
  const durations: number[] = [];
  let matches = 0;
  for (let run = 0; run < WARM_UP_RUNS + RUNS; run++) {
    const query = kind.query(pick);
    const started = performance.now();
    let count = 0;
    if (kind.isRetrieve) count = (await repository.retrievable(query)).length;
    else for await (const _ of repository.find(query)) count++;
    if (run < WARM_UP_RUNS) continue;
    durations.push(performance.now() - started);
    matches += count;
  }
  durations.sort((a, b) => a - b);
  const at = (q: number) =>
    durations[Math.min(durations.length - 1, Math.floor(q * durations.length))]!;
  return { p50: at(0.5), p99: at(0.99), meanMatches: matches / RUNS };
}

/** Builds the index on one database and times every kind of query. */
async function measure(
  open: () => Promise<OpenDatabase>,
  dispose: (database: OpenDatabase) => Promise<void>,
): Promise<{ populateSeconds: number; timings: Timing[] }> {
  const database = await open();
  try {
    const { populateSeconds, fixture } = await buildQueryIndex(database);
    const repository = new QueryRepository(database);
    const timings: Timing[] = [];
    for (const kind of queryKinds(fixture)) timings.push(await time(repository, kind));
    return { populateSeconds, timings };
  } finally {
    await dispose(database);
  }
}

/** Whether PostgreSQL answers at the test URL. */
async function isPostgresReachable(url: string): Promise<boolean> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

const cell = (value: number | undefined) =>
  (value === undefined ? '-' : value.toFixed(2)).padStart(8);

/** Whether a SQLite timing meets the targets. */
function meetsTargets(timing: Timing): boolean {
  return timing.p50 < TARGET_P50_MS && timing.p99 < TARGET_P99_MS;
}

function printTable(sqlite: readonly Timing[], postgres: readonly Timing[] | undefined): void {
  const kinds = queryKinds({ patientIds: [], studyUids: [], accessionNumbers: [] });
  console.log(
    `\nC-FIND on the index: ${STUDIES * SERIES_PER_STUDY * INSTANCES_PER_SERIES} instances, ${STUDIES} studies, ${PATIENTS} patients; ${RUNS} runs a query, ms to the last match\n`,
  );
  console.log(`${''.padEnd(46)} ${''.padStart(8)} ${'SQLite'.padEnd(26)} ${'PostgreSQL'}`);
  console.log(
    `${'query'.padEnd(46)} ${'matches'.padStart(8)} ${'p50'.padStart(8)} ${'p99'.padStart(8)} ${'target'.padStart(8)} ${'p50'.padStart(8)} ${'p99'.padStart(8)}`,
  );
  kinds.forEach((kind, i) => {
    const a = sqlite[i];
    const b = postgres?.[i];
    const target = !kind.isTargeted || a === undefined ? '' : meetsTargets(a) ? 'met' : 'MISSED';
    console.log(
      `${kind.label.padEnd(46)} ${(a?.meanMatches ?? 0).toFixed(1).padStart(8)} ${cell(a?.p50)} ${cell(a?.p99)} ${target.padStart(8)} ${cell(b?.p50)} ${cell(b?.p99)}`,
    );
  });
  console.log(
    `\ntarget on SQLite (study-level queries): p50 < ${TARGET_P50_MS} ms, p99 < ${TARGET_P99_MS} ms`,
  );
}

/** Runs the query benchmark and prints its table. */
export async function runQueryBenchmark(): Promise<void> {
  const started = performance.now();
  const dataDir = await mkdtemp(join(tmpdir(), 'dicom-server-bench-query-'));
  const sqlite = await measure(
    () => openDatabase({ dataDir }),
    async (database) => {
      await database.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  );
  const url = process.env.DICOM_SERVER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const schema = `bench_query_${process.pid}`;
  const postgres = (await isPostgresReachable(url))
    ? await measure(
        () => openDatabase({ url, schema, dataDir: tmpdir() }),
        async (database) => {
          await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(database.db);
          await database.close();
        },
      )
    : undefined;
  printTable(sqlite.timings, postgres?.timings);
  console.log(
    `populating: SQLite ${sqlite.populateSeconds.toFixed(1)} s, PostgreSQL ${postgres === undefined ? `skipped (${url.replace(/\/\/[^@]*@/, '//')} unreachable)` : `${postgres.populateSeconds.toFixed(1)} s`}`,
  );
  console.log(`query benchmark took ${((performance.now() - started) / 1000).toFixed(0)} s`);
}
