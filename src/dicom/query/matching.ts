/**
 * What the value of a key in a query identifier asks for (PS3.4 §C.2.2.2): universal, single
 * value, wildcard, range or list matching, decided from the decoded text and the key's VR; and
 * which values cannot be used for matching at all (a date that is no date, a range of a VR
 * that has none).
 *
 * Layer: dicom. Pure.
 */

import type { Vr } from '../vr.js';
import type { ValueMatch } from './model.js';

/**
 * VRs whose values may hold the wildcards `*` and `?` (PS3.4 §C.2.2.2.4): the text VRs. Not
 * dates and times, numbers, UIDs, age strings or binary VRs.
 */
export const WILDCARD_VRS: ReadonlySet<Vr> = new Set([
  'AE',
  'CS',
  'LO',
  'LT',
  'PN',
  'SH',
  'ST',
  'UC',
  'UR',
  'UT',
]);

/** VRs matched by range (PS3.4 §C.2.2.2.5). */
export const RANGE_VRS: ReadonlySet<Vr> = new Set(['DA', 'TM', 'DT']);

/** VRs whose single value may hold a backslash: it separates no values there (PS3.5 §6.2). */
const SINGLE_VALUED_VRS: ReadonlySet<Vr> = new Set(['LT', 'ST', 'UT', 'UR']);

/**
 * What a key's decoded value asks for, or undefined for universal matching (a return key
 * only): zero length, or a value that is just `*` (PS3.4 §C.2.2.2.3, §C.2.2.2.4; accepted in
 * any VR, where it can mean nothing but "any value"), or a range open at both ends (`-`).
 *
 * In order: a backslash list (any VR that has several values; UID lists included,
 * §C.2.2.2.2); a range in DA, TM, DT (`from-`, `-to`, `from-to`, §C.2.2.2.5); a wildcard in a
 * text VR (§C.2.2.2.4); otherwise a single value. The result may still be unusable (a bad date,
 * wildcards in a list): `matchValueProblem` says so.
 */
export function valueMatchOf(text: string, vr: Vr): ValueMatch | undefined {
  if (text === '' || text === '*') return undefined;
  if (!SINGLE_VALUED_VRS.has(vr) && text.includes('\\')) {
    return { kind: 'list', values: text.split('\\') };
  }
  if (RANGE_VRS.has(vr) && text.includes('-')) {
    const range = rangeOf(text, vr);
    if (range !== undefined) {
      if (range.from === undefined && range.to === undefined) return undefined;
      return {
        kind: 'range',
        ...(range.from !== undefined && { from: range.from }),
        ...(range.to !== undefined && { to: range.to }),
      };
    }
  }
  if (WILDCARD_VRS.has(vr) && /[*?]/.test(text)) return { kind: 'wildcard', pattern: text };
  return { kind: 'single', value: text };
}

/**
 * Why a key's decoded value cannot be matched, or undefined when it can. A C-FIND, C-MOVE or
 * C-GET carrying such a value is answered 0xC000 (Unable to process, PS3.4 Table C.4-1 and
 * C.4-2): the identifier fits the SOP class, but we cannot process this value. The reasons are
 * short phrases to put in an Error Comment after the key's keyword.
 */
export function matchValueProblem(text: string, vr: Vr): string | undefined {
  const match = valueMatchOf(text, vr);
  if (match === undefined) return undefined;
  switch (match.kind) {
    case 'single':
      return singleValueProblem(match.value, vr);
    case 'wildcard':
      return undefined;
    case 'range':
      return [match.from, match.to]
        .filter((bound) => bound !== undefined)
        .some((bound) => !isValidTemporal(bound, vr))
        ? 'invalid range'
        : undefined;
    case 'list':
      return listProblem(match.values, vr);
    default: {
      const never: never = match;
      return never;
    }
  }
}

function listProblem(values: readonly string[], vr: Vr): string | undefined {
  for (const value of values) {
    if (value === '') return 'empty value in a list';
    if (RANGE_VRS.has(vr) && value.includes('-') && !(vr === 'DT' && isValidDateTime(value))) {
      return 'a list of ranges is not supported';
    }
    if (WILDCARD_VRS.has(vr) && /[*?]/.test(value)) return 'wildcards in a list are not supported';
    const problem = singleValueProblem(value, vr);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

function singleValueProblem(value: string, vr: Vr): string | undefined {
  switch (vr) {
    case 'DA':
    case 'TM':
    case 'DT':
      return isValidTemporal(value, vr) ? undefined : `invalid ${TEMPORAL_NAMES[vr]}`;
    case 'UI':
      // As lenient as the store path, which indexes any UID of digits and dots.
      return /^[0-9.]{1,64}$/.test(value) ? undefined : 'invalid UID';
    case 'IS':
      return /^[+-]?\d{1,12}$/.test(value.trim()) ? undefined : 'invalid integer';
    default:
      return undefined;
  }
}

const TEMPORAL_NAMES = { DA: 'date', TM: 'time', DT: 'date-time' } as const;

/**
 * The bounds of a range, each trimmed (the standard writes `<date1> - <date2>`), or undefined
 * when the text is no range. A DT value may itself hold a `-` (a negative UTC offset,
 * `&ZZXX`): the split chosen is the first whose sides are empty or valid date-times, and a
 * value that is a valid date-time as a whole is no range.
 */
function rangeOf(text: string, vr: Vr): { from?: string; to?: string } | undefined {
  const candidates: { from?: string; to?: string }[] = [];
  for (let at = text.indexOf('-'); at !== -1; at = text.indexOf('-', at + 1)) {
    const from = text.slice(0, at).trim();
    const to = text.slice(at + 1).trim();
    candidates.push({
      ...(from !== '' && { from }),
      ...(to !== '' && { to }),
    });
  }
  if (vr !== 'DT') return candidates.length === 1 ? candidates[0] : undefined;
  if (isValidDateTime(text)) return undefined;
  const valid = candidates.find(
    (range) =>
      (range.from === undefined || isValidDateTime(range.from)) &&
      (range.to === undefined || isValidDateTime(range.to)),
  );
  // No valid split: the first, for matchValueProblem to report as an invalid range.
  return valid ?? candidates[0];
}

function isValidTemporal(value: string, vr: Vr): boolean {
  if (vr === 'DA') return isValidDate(value);
  if (vr === 'TM') return isValidTime(value);
  return isValidDateTime(value);
}

/** DA: YYYYMMDD, a day of the calendar (PS3.5 Table 6.2-1). */
export function isValidDate(value: string): boolean {
  const parts = /^(\d{4})(\d{2})(\d{2})$/.exec(value);
  if (parts === null) return false;
  return isCalendarDay(Number(parts[1]), Number(parts[2]), Number(parts[3]));
}

/** TM: HH[MM[SS[.F{1,6}]]] (PS3.5 Table 6.2-1); a leap second (60) is allowed. */
export function isValidTime(value: string): boolean {
  return /^([01]\d|2[0-3])([0-5]\d(([0-5]\d|60)(\.\d{1,6})?)?)?$/.test(value);
}

/** DT: YYYY[MM[DD[HH[MM[SS[.F{1,6}]]]]]][&ZZXX] (PS3.5 Table 6.2-1). */
export function isValidDateTime(value: string): boolean {
  const parts =
    /^(\d{4})(\d{2})?(\d{2})?(\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?([+-]\d{4})?$/.exec(value);
  if (parts === null) return false;
  const [, year, month, day, time, offset] = parts;
  if (day !== undefined && month !== undefined) {
    if (!isCalendarDay(Number(year), Number(month), Number(day))) return false;
  } else if (month !== undefined && (Number(month) < 1 || Number(month) > 12)) {
    return false;
  }
  // The time needs a full date before it (the regex alone would let YYYYMM be followed by HH).
  if (time !== undefined && (day === undefined || !isValidTime(time))) return false;
  if (offset !== undefined) {
    const minutes = Number(offset.slice(3));
    const hours = Number(offset.slice(1, 3));
    const signed = offset.startsWith('-') ? -hours : hours;
    if (minutes > 59 || signed < -12 || signed > 14) return false;
  }
  return true;
}

function isCalendarDay(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  const isLeapYear = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = [31, isLeapYear ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
  return day <= days;
}
