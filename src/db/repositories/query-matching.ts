/**
 * C-FIND matching (PS3.4 §C.2.2.2) as SQL on the index: where each query key's value is held
 * (a column, a kept count, a backslash list, or a count over the patient's studies) and the
 * condition each kind of match becomes. Values are always bound parameters; only our own
 * column names and fixed operators are SQL text. Wildcards are in query-wildcards.ts, person
 * names by component group in query-person-names.ts, sequence keys in
 * query-matching-sequences.ts.
 *
 * Written once for SQLite and PostgreSQL, which differ in these places:
 * - wildcards (see query-wildcards.ts): GLOB with a prefix range, or LIKE with ESCAPE.
 * - case-insensitive person names compare upper(column) with upper(value): SQLite's upper()
 *   folds ASCII letters only, PostgreSQL's folds every letter its locale knows.
 * - a backslash list's items: a recursive split on SQLite, unnest(string_to_array()) on
 *   PostgreSQL.
 * - a list of single values (a UID list of thousands, as a C-MOVE of a large series sends) is
 *   one bound parameter: a JSON array read by json_each on SQLite, a text[] compared with
 *   `= any` on PostgreSQL. Not a chain of ORs, which SQLite refuses past 1000 deep
 *   (SQLITE_MAX_EXPR_DEPTH), nor a parameter per value, which meets SQLite's limit of 32766
 *   (SQLITE_MAX_VARIABLE_NUMBER of better-sqlite3's build). Measured retrieving a series of
 *   5,000 instances by their 5,000 SOP Instance UIDs among 100,000 indexed: some 20 ms on
 *   SQLite (each UID a search of the UID's unique index), 20 to 140 ms on PostgreSQL (a hashed
 *   `= any`), as fast as IN lists of 1,000 parameters each. A person name list is looked up
 *   whole and by alphabetic group, which costs a scan of the patients.
 *
 * Dates and times are compared as text, as DICOM writes them (YYYYMMDD, HHMMSS.FFFFFF or a
 * prefix of it); values stored in another form (e.g. 2026-01-02 or 12:00:00, as old ACR-NEMA
 * peers sent) simply do not match a range.
 *
 * Layer: db (repositories hold all SQL).
 */

import { type RawBuilder, type SqlBool, sql } from 'kysely';
import { QUERY_KEYS, type QueryKeyword, type ValueMatch } from '../../dicom/query/model.js';
import type { Vr } from '../../dicom/vr.js';
import { componentGroup, personNameCondition } from './query-person-names.js';
import {
  ALWAYS,
  anyOf,
  globPattern,
  hasWildcard,
  isUniversalPattern,
  likePattern,
  NEVER,
  prefixSuccessor,
  type SqlKind,
  type TextCompare,
  wildcardCondition,
} from './query-wildcards.js';

export type { SqlKind } from './query-wildcards.js';

/** An index table, named as in schema.ts. */
export type IndexTable = 'patients' | 'studies' | 'series' | 'instances';

/** Where a key's value is held, and so how it is compared. */
export type KeyColumn =
  /** A text column (dates and times included). */
  | { readonly kind: 'text'; readonly table: IndexTable; readonly column: string }
  /** An integer column: an IS attribute or a kept count. */
  | { readonly kind: 'integer'; readonly table: IndexTable; readonly column: string }
  /** A backslash-separated list: matches when any item matches. */
  | { readonly kind: 'list'; readonly table: IndexTable; readonly column: string }
  /** A count or sum over the patient's studies, computed when asked. */
  | { readonly kind: 'patient-total'; readonly of: 'studies' | 'num_series' | 'num_instances' };

const text = (table: IndexTable, column: string): KeyColumn => ({ kind: 'text', table, column });
const integer = (table: IndexTable, column: string): KeyColumn => ({
  kind: 'integer',
  table,
  column,
});

/** Every key the index holds, and where (the compiler checks that none is missing). */
export const KEY_COLUMNS: Readonly<Record<QueryKeyword, KeyColumn>> = {
  PatientName: text('patients', 'patient_name'),
  PatientID: text('patients', 'patient_id'),
  IssuerOfPatientID: text('patients', 'issuer_of_patient_id'),
  PatientBirthDate: text('patients', 'patient_birth_date'),
  PatientSex: text('patients', 'patient_sex'),
  NumberOfPatientRelatedStudies: { kind: 'patient-total', of: 'studies' },
  NumberOfPatientRelatedSeries: { kind: 'patient-total', of: 'num_series' },
  NumberOfPatientRelatedInstances: { kind: 'patient-total', of: 'num_instances' },
  StudyDate: text('studies', 'study_date'),
  StudyTime: text('studies', 'study_time'),
  AccessionNumber: text('studies', 'accession_number'),
  StudyID: text('studies', 'study_id'),
  StudyInstanceUID: text('studies', 'study_instance_uid'),
  StudyDescription: text('studies', 'study_description'),
  ReferringPhysicianName: text('studies', 'referring_physician_name'),
  PatientAge: text('studies', 'patient_age'),
  ModalitiesInStudy: { kind: 'list', table: 'studies', column: 'modalities_in_study' },
  SOPClassesInStudy: { kind: 'list', table: 'studies', column: 'sop_classes_in_study' },
  NumberOfStudyRelatedSeries: integer('studies', 'num_series'),
  NumberOfStudyRelatedInstances: integer('studies', 'num_instances'),
  Modality: text('series', 'modality'),
  SeriesNumber: integer('series', 'series_number'),
  SeriesInstanceUID: text('series', 'series_instance_uid'),
  SeriesDescription: text('series', 'series_description'),
  BodyPartExamined: text('series', 'body_part_examined'),
  SeriesDate: text('series', 'series_date'),
  SeriesTime: text('series', 'series_time'),
  ProtocolName: text('series', 'protocol_name'),
  NumberOfSeriesRelatedInstances: integer('series', 'num_instances'),
  InstanceNumber: integer('instances', 'instance_number'),
  SOPInstanceUID: text('instances', 'sop_instance_uid'),
  SOPClassUID: text('instances', 'sop_class_uid'),
};

/** The SQL expression of a key's value (the table is joined, or is the subquery's outer row). */
export function keyExpression(keyword: QueryKeyword): RawBuilder<unknown> {
  const column = KEY_COLUMNS[keyword];
  if (column.kind !== 'patient-total') return sql.ref(`${column.table}.${column.column}`);
  const total =
    column.of === 'studies'
      ? sql`count(*)`
      : sql`coalesce(sum(${sql.ref(`related.${column.of}`)}), 0)`;
  return sql`(select ${total} from studies as related where related.patient_fk = patients.id)`;
}

/** The table a key's value comes from (computed patient totals are the patient's). */
export function tableOfKey(keyword: QueryKeyword): IndexTable {
  const column = KEY_COLUMNS[keyword];
  return column.kind === 'patient-total' ? 'patients' : column.table;
}

/** How a condition is written. */
export interface MatchOptions {
  readonly kind: SqlKind;
  /** Person names compared without regard to case. */
  readonly isPersonNameCaseInsensitive: boolean;
}

/** The SQL condition that a key's value matches (PS3.4 §C.2.2.2). */
export function conditionSql(
  keyword: QueryKeyword,
  match: ValueMatch,
  options: MatchOptions,
): RawBuilder<SqlBool> {
  const key = QUERY_KEYS.get(keyword);
  if (key === undefined) return NEVER;
  const column = KEY_COLUMNS[keyword];
  const expression = keyExpression(keyword);
  switch (column.kind) {
    case 'text': {
      const isFolded = key.vr === 'PN' && options.isPersonNameCaseInsensitive;
      return textCondition(expression, key, match, { kind: options.kind, isFolded });
    }
    case 'integer':
    case 'patient-total':
      return integerCondition(expression, match, options.kind);
    case 'list':
      return listItemCondition(expression, match, options.kind);
    default: {
      const never: never = column;
      return never;
    }
  }
}

/** What the comparisons need to know of a key: its VR. */
interface TypedKey {
  readonly vr: Vr;
}

/**
 * A text value (a column, or an item's value) matches: as written, or for a case-insensitive
 * PN with both sides in upper case; person names by component group (query-person-names.ts).
 */
export function textCondition(
  column: RawBuilder<unknown>,
  key: TypedKey,
  match: ValueMatch,
  compare: TextCompare,
): RawBuilder<SqlBool> {
  const value = compare.isFolded ? sql`upper(${column})` : column;
  switch (match.kind) {
    case 'single':
      if (key.vr === 'PN') return personNameCondition(value, match, compare);
      return sql<SqlBool>`${value} = ${compare.isFolded ? sql`upper(${match.value})` : match.value}`;
    case 'wildcard':
      if (key.vr === 'PN') return personNameCondition(value, match, compare);
      return wildcardCondition(value, match.pattern, compare);
    case 'range':
      return rangeCondition(column, key, match);
    case 'list':
      return textListCondition(column, key, match.values, compare);
    default: {
      const never: never = match;
      return never;
    }
  }
}

/**
 * Any value of a list matches (PS3.4 §C.2.2.2.8: each as the single value, wildcard or range
 * it is on its own). Single values are looked up together (`inList`); a person name among
 * them in its whole or by its alphabetic group. Others, which C-FIND does not send in a list,
 * are each a condition of their own.
 */
function textListCondition(
  column: RawBuilder<unknown>,
  key: TypedKey,
  values: readonly string[],
  compare: TextCompare,
): RawBuilder<SqlBool> {
  const matches = values.map((item) => listItemMatch(item, key));
  const isPlain = (match: ValueMatch): match is Extract<ValueMatch, { kind: 'single' }> =>
    match.kind === 'single' && !(key.vr === 'PN' && match.value.includes('='));
  const singles = [...new Set(matches.filter(isPlain).map((match) => match.value))];
  const others = matches.filter((match) => !isPlain(match));
  const value = compare.isFolded ? sql`upper(${column})` : column;
  const conditions = others.map((match) => textCondition(column, key, match, compare));
  if (singles.length > 0) {
    conditions.push(inList(value, singles, compare));
    if (key.vr === 'PN')
      conditions.push(inList(componentGroup(value, 1, compare), singles, compare));
  }
  return anyOf(conditions);
}

/**
 * `value` is one of `values`, bound as one parameter (see the module comment); folded values
 * are compared with the list in upper case.
 */
function inList(
  value: RawBuilder<unknown>,
  values: readonly string[] | readonly number[],
  compare: TextCompare,
): RawBuilder<SqlBool> {
  const isText = typeof values[0] !== 'number';
  if (compare.kind === 'sqlite') {
    const item = compare.isFolded ? sql`upper(list_item.value)` : sql`list_item.value`;
    return sql<SqlBool>`${value} in (select ${item} from json_each(${JSON.stringify(values)}) as list_item)`;
  }
  const array = isText ? sql`${values}::text[]` : sql`${values}::bigint[]`;
  if (!compare.isFolded) return sql<SqlBool>`${value} = any(${array})`;
  return sql<SqlBool>`${value} in (select upper(list_item) from unnest(${array}) as list_item)`;
}

/**
 * A list's item as the match it asks for (PS3.4 §C.2.2.2.8: each value of a list is matched as
 * a single value, wildcard or range would be on its own).
 */
function listItemMatch(item: string, key: TypedKey): ValueMatch {
  if ((key.vr === 'DA' || key.vr === 'TM') && item.includes('-')) {
    const [from = '', to = ''] = item.split('-');
    return { kind: 'range', ...(from !== '' && { from }), ...(to !== '' && { to }) };
  }
  if (key.vr !== 'UI' && hasWildcard(item)) return { kind: 'wildcard', pattern: item };
  return { kind: 'single', value: item };
}

/**
 * The earliest text form of a time: trailing zero fields and fraction digits removed, so that
 * `120000` and `120000.000` begin where the stored `1200` (12:00, to the minute) does.
 */
export function earliestTimeForm(time: string): string {
  let form = time.replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');
  while (form.length > 2 && form.endsWith('00') && !form.includes('.')) form = form.slice(0, -2);
  return form;
}

function rangeCondition(
  column: RawBuilder<unknown>,
  key: TypedKey,
  match: Extract<ValueMatch, { kind: 'range' }>,
): RawBuilder<SqlBool> {
  const bounds: RawBuilder<SqlBool>[] = [];
  if (match.from !== undefined && match.from !== '') {
    const from = key.vr === 'TM' ? earliestTimeForm(match.from) : match.from;
    bounds.push(sql<SqlBool>`${column} >= ${from}`);
  }
  if (match.to !== undefined && match.to !== '') {
    // A time's upper bound takes in everything within it: `1200` ends at 12:00:59.999999,
    // which as text is everything that starts with `1200`.
    const next = key.vr === 'TM' ? prefixSuccessor(match.to) : undefined;
    bounds.push(
      next === undefined
        ? sql<SqlBool>`${column} <= ${match.to}`
        : sql<SqlBool>`${column} < ${next}`,
    );
  }
  // `-` alone is universal; NULL is out of any range with a bound.
  if (bounds.length === 0) return ALWAYS;
  return sql<SqlBool>`(${sql.join(bounds, sql` and `)})`;
}

/** An IS value as an integer; undefined when it is not one. */
function integerOf(text: string): number | undefined {
  const trimmed = text.trim();
  return /^[+-]?\d+$/.test(trimmed) ? Number(trimmed) : undefined;
}

function integerCondition(
  column: RawBuilder<unknown>,
  match: ValueMatch,
  kind: SqlKind,
): RawBuilder<SqlBool> {
  switch (match.kind) {
    case 'single': {
      const value = integerOf(match.value);
      return value === undefined ? NEVER : sql<SqlBool>`${column} = ${value}`;
    }
    case 'wildcard': {
      if (isUniversalPattern(match.pattern)) return ALWAYS;
      const asText = sql`cast(${column} as text)`;
      return kind === 'postgres'
        ? sql<SqlBool>`${asText} like ${likePattern(match.pattern)} escape '\\'`
        : sql<SqlBool>`${asText} glob ${globPattern(match.pattern)}`;
    }
    case 'range': {
      const from = match.from === undefined ? undefined : integerOf(match.from);
      const to = match.to === undefined ? undefined : integerOf(match.to);
      const bounds = [
        ...(from === undefined ? [] : [sql<SqlBool>`${column} >= ${from}`]),
        ...(to === undefined ? [] : [sql<SqlBool>`${column} <= ${to}`]),
      ];
      return bounds.length === 0 ? ALWAYS : sql<SqlBool>`(${sql.join(bounds, sql` and `)})`;
    }
    case 'list': {
      const values = [...new Set(match.values.map(integerOf))].filter((v) => v !== undefined);
      return values.length === 0 ? NEVER : inList(column, values, { kind, isFolded: false });
    }
    default: {
      const never: never = match;
      return never;
    }
  }
}

/** True when any item of a backslash list matches a wildcard pattern. */
function anyItemLike(
  list: RawBuilder<unknown>,
  pattern: string,
  kind: SqlKind,
): RawBuilder<SqlBool> {
  if (kind === 'postgres') {
    return sql<SqlBool>`exists (
      select 1 from unnest(string_to_array(${list}, '\\')) as item(value)
      where item.value like ${likePattern(pattern)} escape '\\')`;
  }
  // SQLite has no split: items are peeled off one by one, up to each backslash.
  return sql<SqlBool>`exists (
    with recursive split(item, rest) as (
      select null, ${list} || '\\'
      union all
      select substr(rest, 1, instr(rest, '\\') - 1), substr(rest, instr(rest, '\\') + 1)
      from split where rest <> ''
    )
    select 1 from split where item glob ${globPattern(pattern)})`;
}

/**
 * A backslash list (Modalities in Study, SOP Classes in Study) matches when any of its items
 * matches (PS3.4 §C.6.2.1.2). A single value is looked up as `\value\` inside `\list\`; a
 * wildcard is tried on each item.
 */
function listItemCondition(
  list: RawBuilder<unknown>,
  match: ValueMatch,
  kind: SqlKind,
): RawBuilder<SqlBool> {
  switch (match.kind) {
    case 'single': {
      // An item holds no backslash: a value with one is not any item.
      if (match.value.includes('\\')) return NEVER;
      const position = kind === 'postgres' ? sql.raw('strpos') : sql.raw('instr');
      return sql<SqlBool>`${position}('\\' || ${list} || '\\', ${`\\${match.value}\\`}) > 0`;
    }
    case 'wildcard':
      return isUniversalPattern(match.pattern) ? ALWAYS : anyItemLike(list, match.pattern, kind);
    case 'range':
      // Ranges are for dates and times; a list of codes or UIDs has none.
      return NEVER;
    case 'list':
      return anyOf(
        match.values.map((item) =>
          listItemCondition(
            list,
            hasWildcard(item)
              ? { kind: 'wildcard', pattern: item }
              : { kind: 'single', value: item },
            kind,
          ),
        ),
      );
    default: {
      const never: never = match;
      return never;
    }
  }
}
