/**
 * C-FIND matching (PS3.4 §C.2.2.2) as SQL on the index: where each query key's value is held
 * (a column, a kept count, a backslash list, or a count over the patient's studies) and the
 * condition each kind of match becomes. Values are always bound parameters; only our own
 * column names and fixed operators are SQL text.
 *
 * Written once for SQLite and PostgreSQL, which differ in three places handled here:
 * - wildcards: SQLite's LIKE ignores ASCII case, PostgreSQL's does not. SQLite uses GLOB
 *   (case-sensitive) with the pattern's literal prefix added as a range, which lets an index
 *   on the column (or on upper(column)) serve it; PostgreSQL uses LIKE with an ESCAPE clause,
 *   which its planner turns into an index range itself (text_pattern_ops indexes, 0004-query).
 * - case-insensitive person names compare upper(column) with upper(value): SQLite's upper()
 *   folds ASCII letters only, PostgreSQL's folds every letter its locale knows.
 * - a backslash list's items: a recursive split on SQLite, unnest(string_to_array()) on
 *   PostgreSQL.
 *
 * Sequence keys (PS3.4 §C.2.2.2.6) are matched on the sequence_items table, one row per item
 * key value: all the item conditions of a key must hold in one stored item, which is a self-join
 * on the item's number; each condition is the plain key's, on the row's value.
 *
 * Dates and times are compared as text, as DICOM writes them (YYYYMMDD, HHMMSS.FFFFFF or a
 * prefix of it); values stored in another form (e.g. 2026-01-02 or 12:00:00, as old ACR-NEMA
 * peers sent) simply do not match a range.
 *
 * Layer: db (repositories hold all SQL).
 */

import { type RawBuilder, type SqlBool, sql } from 'kysely';
import {
  type ItemCondition,
  QUERY_KEYS,
  type QueryKeyword,
  SEQUENCE_KEYS,
  type SequenceCondition,
  type SequenceKey,
  type ValueMatch,
} from '../../dicom/query/model.js';
import type { Vr } from '../../dicom/vr.js';

/** Which database the SQL is for. */
export type SqlKind = 'sqlite' | 'postgres';

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

/** A condition that holds for every row, and one that holds for none. */
const ALWAYS = sql<SqlBool>`1 = 1`;
const NEVER = sql<SqlBool>`1 = 0`;

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

/** A text column compared as written, or (case-insensitive PN) with both sides in upper case. */
interface TextCompare {
  readonly kind: SqlKind;
  readonly isFolded: boolean;
}

/** What the comparisons need to know of a key: its VR. */
interface TypedKey {
  readonly vr: Vr;
}

function textCondition(
  column: RawBuilder<unknown>,
  key: TypedKey,
  match: ValueMatch,
  compare: TextCompare,
): RawBuilder<SqlBool> {
  const value = compare.isFolded ? sql`upper(${column})` : column;
  const bound = (text: string) => (compare.isFolded ? sql`upper(${text})` : sql`${text}`);
  switch (match.kind) {
    case 'single':
      return sql<SqlBool>`${value} = ${bound(match.value)}`;
    case 'wildcard':
      return wildcardCondition(value, match.pattern, compare);
    case 'range':
      return rangeCondition(column, key, match);
    case 'list':
      return anyOf(
        match.values.map((item) => textCondition(column, key, listItemMatch(item, key), compare)),
      );
    default: {
      const never: never = match;
      return never;
    }
  }
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
  if (key.vr !== 'UI' && /[*?]/.test(item)) return { kind: 'wildcard', pattern: item };
  return { kind: 'single', value: item };
}

/** True when any condition holds; none holds for an empty list. */
function anyOf(conditions: readonly RawBuilder<SqlBool>[]): RawBuilder<SqlBool> {
  if (conditions.length === 0) return NEVER;
  return sql<SqlBool>`(${sql.join(conditions, sql` or `)})`;
}

/** A pattern of only `*` matches everything, NULL included (PS3.4 §C.2.2.2.4). */
function isUniversalPattern(pattern: string): boolean {
  return /^\**$/.test(pattern);
}

/**
 * `*` and `?` as GLOB wildcards (the same characters); GLOB's character class opener in the
 * data as a literal. GLOB has no escape character, and a backslash is literal in it.
 */
export function globPattern(pattern: string): string {
  return pattern.replace(/\[/g, '[[]');
}

/** `*` and `?` as LIKE wildcards; `%`, `_` and the escape character in the data escaped. */
export function likePattern(pattern: string): string {
  return pattern
    .replace(/[\\%_]/g, (c) => `\\${c}`)
    .replace(/\*/g, '%')
    .replace(/\?/g, '_');
}

/** The characters a pattern starts with before its first wildcard. */
function literalPrefix(pattern: string): string {
  const wildcard = pattern.search(/[*?]/);
  return wildcard < 0 ? pattern : pattern.slice(0, wildcard);
}

/**
 * The least string greater than every string that starts with `prefix`, in code point order
 * (SQLite's BINARY collation of UTF-8); undefined when there is none.
 */
export function prefixSuccessor(prefix: string): string | undefined {
  const codePoints = [...prefix].map((c) => c.codePointAt(0) ?? 0);
  while (codePoints.length > 0) {
    const last = codePoints.pop() ?? 0;
    if (last < 0x10ffff) {
      // Surrogates are not characters: the one after U+D7FF is U+E000.
      codePoints.push(last === 0xd7ff ? 0xe000 : last + 1);
      return String.fromCodePoint(...codePoints);
    }
  }
  return undefined;
}

/** Upper case as SQLite's upper() has it: ASCII letters only. */
function asciiUpper(text: string): string {
  return text.replace(/[a-z]+/g, (letters) => letters.toUpperCase());
}

function wildcardCondition(
  value: RawBuilder<unknown>,
  pattern: string,
  compare: TextCompare,
): RawBuilder<SqlBool> {
  if (isUniversalPattern(pattern)) return ALWAYS;
  if (compare.kind === 'postgres') {
    const like = likePattern(pattern);
    const right = compare.isFolded ? sql`upper(${like})` : sql`${like}`;
    return sql<SqlBool>`${value} like ${right} escape '\\'`;
  }
  const folded = compare.isFolded ? asciiUpper(pattern) : pattern;
  const glob = sql<SqlBool>`${value} glob ${globPattern(folded)}`;
  // SQLite cannot take an index range from GLOB on upper(column), nor from a parameter it
  // plans without: the literal prefix, written out as a range, lets it use either index.
  const prefix = literalPrefix(folded);
  if (prefix === '') return glob;
  const next = prefixSuccessor(prefix);
  const upper = next === undefined ? ALWAYS : sql<SqlBool>`${value} < ${next}`;
  return sql<SqlBool>`(${value} >= ${prefix} and ${upper} and ${glob})`;
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
    case 'list':
      return anyOf(
        match.values.map((item) => integerCondition(column, { kind: 'single', value: item }, kind)),
      );
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
            /[*?]/.test(item)
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

/** The table whose row owns the items of a sequence key of an entity. */
export const SEQUENCE_OWNER_TABLE: Readonly<Record<SequenceKey['entity'], IndexTable>> = {
  patient: 'patients',
  study: 'studies',
  series: 'series',
};

/** True for a match every value meets, a stored one or none (`*`, `**`, ...). */
function isUniversalMatch(match: ValueMatch): boolean {
  return match.kind === 'wildcard' && isUniversalPattern(match.pattern);
}

/**
 * The item conditions of a sequence condition over one stored item: `from` the rows of item
 * keys, aliased i0, i1, ... and joined on the same item (i0 names the item: its owner and
 * number), `where` each row holds its key and its value matches. Undefined when every item
 * condition is universal: then any entity, and any item, matches.
 */
function itemMatchSql(
  condition: SequenceCondition,
  options: MatchOptions,
): { from: RawBuilder<unknown>; where: RawBuilder<SqlBool> } | undefined {
  const sequence = SEQUENCE_KEYS.get(condition.keyword);
  if (sequence === undefined) return undefined;
  const itemKeys = new Map([...sequence.itemKeys.values()].map((key) => [key.keyword, key]));
  const conditions = condition.itemConditions.filter((c) => !isUniversalMatch(c.match));
  if (conditions.length === 0) return undefined;
  const from: RawBuilder<unknown>[] = [sql`sequence_items as i0`];
  const where: RawBuilder<SqlBool>[] = [
    sql<SqlBool>`i0.entity = ${sequence.entity}`,
    sql<SqlBool>`i0.sequence_tag = ${sequence.tag}`,
  ];
  conditions.forEach((item: ItemCondition, index) => {
    const key = itemKeys.get(item.keyword);
    const alias = `i${index}`;
    if (index > 0) {
      const same = (column: string) =>
        sql`${sql.ref(`${alias}.${column}`)} = ${sql.ref(`i0.${column}`)}`;
      from.push(
        sql`inner join sequence_items as ${sql.id(alias)} on ${sql.join(
          ['entity', 'owner_fk', 'sequence_tag', 'item_number'].map(same),
          sql` and `,
        )}`,
      );
    }
    if (key === undefined) {
      where.push(NEVER);
      return;
    }
    const value = sql.ref(`${alias}.value`);
    const isFolded = key.vr === 'PN' && options.isPersonNameCaseInsensitive;
    where.push(sql<SqlBool>`${sql.ref(`${alias}.element_tag`)} = ${key.tag}`);
    where.push(textCondition(value, key, item.match, { kind: options.kind, isFolded }));
  });
  return { from: sql.join(from, sql` `), where: sql<SqlBool>`${sql.join(where, sql` and `)}` };
}

/**
 * The SQL condition that an entity (its table joined) has a stored item of a sequence key
 * matching every item condition (PS3.4 §C.2.2.2.6). Written as `id in (...)`, so that either
 * database may start from the items' value index or from the entity.
 */
export function sequenceConditionSql(
  condition: SequenceCondition,
  options: MatchOptions,
): RawBuilder<SqlBool> {
  const sequence = SEQUENCE_KEYS.get(condition.keyword);
  if (sequence === undefined) return NEVER;
  const items = itemMatchSql(condition, options);
  if (items === undefined) return ALWAYS;
  const owner = sql.ref(`${SEQUENCE_OWNER_TABLE[sequence.entity]}.id`);
  return sql<SqlBool>`${owner} in (select i0.owner_fk from ${items.from} where ${items.where})`;
}

/**
 * The SQL condition that a stored item, the one of the sequence_items row aliased `alias`,
 * matches a sequence condition: the items a matching sequence key returns.
 */
export function matchingItemSql(
  alias: string,
  condition: SequenceCondition,
  options: MatchOptions,
): RawBuilder<SqlBool> {
  const items = itemMatchSql(condition, options);
  if (items === undefined) return ALWAYS;
  const same = (column: string) =>
    sql`${sql.ref(`i0.${column}`)} = ${sql.ref(`${alias}.${column}`)}`;
  return sql<SqlBool>`exists (select 1 from ${items.from} where ${items.where} and ${sql.join(
    ['entity', 'owner_fk', 'sequence_tag', 'item_number'].map(same),
    sql` and `,
  )})`;
}
