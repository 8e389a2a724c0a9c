/**
 * Checks what a key's value asks for (PS3.4 §C.2.2.2) and which values cannot be matched.
 *
 * Layer: dicom (unit test).
 */
import { describe, expect, it } from 'vitest';
import {
  isValidDate,
  isValidDateTime,
  isValidTime,
  matchValueProblem,
  valueMatchOf,
} from './matching.js';

describe('universal matching', () => {
  it('treats a zero-length value as a return key only', () => {
    expect(valueMatchOf('', 'PN')).toBeUndefined();
    expect(valueMatchOf('', 'UI')).toBeUndefined();
  });

  it('treats a value of only * as universal in any VR', () => {
    expect(valueMatchOf('*', 'PN')).toBeUndefined();
    expect(valueMatchOf('*', 'DA')).toBeUndefined();
    expect(valueMatchOf('*', 'UI')).toBeUndefined();
  });

  it('treats a range open at both ends as universal', () => {
    expect(valueMatchOf('-', 'DA')).toBeUndefined();
  });
});

describe('single value matching', () => {
  it('takes a value without wildcards, ranges or lists as is', () => {
    expect(valueMatchOf('DOE^JOHN', 'PN')).toEqual({ kind: 'single', value: 'DOE^JOHN' });
    expect(valueMatchOf('20230105', 'DA')).toEqual({ kind: 'single', value: '20230105' });
    expect(valueMatchOf('1.2.3', 'UI')).toEqual({ kind: 'single', value: '1.2.3' });
  });

  it('takes * and ? literally in VRs that allow no wildcards', () => {
    expect(valueMatchOf('1.2.*', 'UI')).toEqual({ kind: 'single', value: '1.2.*' });
    expect(valueMatchOf('04?Y', 'AS')).toEqual({ kind: 'single', value: '04?Y' });
    expect(valueMatchOf('1?', 'IS')).toEqual({ kind: 'single', value: '1?' });
  });

  it('keeps a date-time with a negative UTC offset as one value', () => {
    expect(valueMatchOf('20230101120000-0500', 'DT')).toEqual({
      kind: 'single',
      value: '20230101120000-0500',
    });
  });
});

describe('wildcard matching', () => {
  it('finds * and ? in the text VRs', () => {
    for (const vr of ['AE', 'CS', 'LO', 'LT', 'PN', 'SH', 'ST', 'UC', 'UR', 'UT'] as const) {
      expect(valueMatchOf('AB*', vr)).toEqual({ kind: 'wildcard', pattern: 'AB*' });
      expect(valueMatchOf('A?C', vr)).toEqual({ kind: 'wildcard', pattern: 'A?C' });
    }
  });
});

describe('range matching', () => {
  it('reads from-to, from- and -to in dates', () => {
    expect(valueMatchOf('20230101-20230131', 'DA')).toEqual({
      kind: 'range',
      from: '20230101',
      to: '20230131',
    });
    expect(valueMatchOf('20230101-', 'DA')).toEqual({ kind: 'range', from: '20230101' });
    expect(valueMatchOf('-20230131', 'DA')).toEqual({ kind: 'range', to: '20230131' });
  });

  it('reads ranges of times', () => {
    expect(valueMatchOf('0800-1230', 'TM')).toEqual({ kind: 'range', from: '0800', to: '1230' });
    expect(valueMatchOf('-120000.5', 'TM')).toEqual({ kind: 'range', to: '120000.5' });
  });

  it('reads ranges of date-times, offsets included', () => {
    expect(valueMatchOf('20230101-20230102', 'DT')).toEqual({
      kind: 'range',
      from: '20230101',
      to: '20230102',
    });
    expect(valueMatchOf('20230101080000-0500-20230101170000-0500', 'DT')).toEqual({
      kind: 'range',
      from: '20230101080000-0500',
      to: '20230101170000-0500',
    });
    expect(valueMatchOf('202301010800-', 'DT')).toEqual({ kind: 'range', from: '202301010800' });
  });

  it('trims spaces around the dash', () => {
    expect(valueMatchOf('20230101 - 20230131', 'DA')).toEqual({
      kind: 'range',
      from: '20230101',
      to: '20230131',
    });
  });

  it('is not range matching in VRs other than DA, TM and DT', () => {
    expect(valueMatchOf('A-B', 'LO')).toEqual({ kind: 'single', value: 'A-B' });
    expect(valueMatchOf('SMITH-JONES*', 'PN')).toEqual({
      kind: 'wildcard',
      pattern: 'SMITH-JONES*',
    });
  });
});

describe('list matching', () => {
  it('reads a list of UIDs', () => {
    expect(valueMatchOf('1.2.3\\1.2.4', 'UI')).toEqual({
      kind: 'list',
      values: ['1.2.3', '1.2.4'],
    });
  });

  it('reads backslash lists in other multi-valued VRs', () => {
    expect(valueMatchOf('CT\\MR', 'CS')).toEqual({ kind: 'list', values: ['CT', 'MR'] });
    expect(valueMatchOf('20230101\\20230105', 'DA')).toEqual({
      kind: 'list',
      values: ['20230101', '20230105'],
    });
    expect(valueMatchOf('1\\2', 'IS')).toEqual({ kind: 'list', values: ['1', '2'] });
  });

  it('keeps a backslash in the single-valued text VRs', () => {
    expect(valueMatchOf('a\\b', 'LT')).toEqual({ kind: 'single', value: 'a\\b' });
    expect(valueMatchOf('a\\b*', 'ST')).toEqual({ kind: 'wildcard', pattern: 'a\\b*' });
  });
});

describe('values that cannot be matched', () => {
  it('accepts well-formed values of every kind', () => {
    expect(matchValueProblem('', 'DA')).toBeUndefined();
    expect(matchValueProblem('20240229', 'DA')).toBeUndefined();
    expect(matchValueProblem('20230101-20231231', 'DA')).toBeUndefined();
    expect(matchValueProblem('0800-', 'TM')).toBeUndefined();
    expect(matchValueProblem('DOE*', 'PN')).toBeUndefined();
    expect(matchValueProblem('1.2.3\\1.2.4', 'UI')).toBeUndefined();
    expect(matchValueProblem('-12', 'IS')).toBeUndefined();
    expect(matchValueProblem('CT\\MR', 'CS')).toBeUndefined();
  });

  it('reports a malformed date, time or date-time', () => {
    expect(matchValueProblem('2023130', 'DA')).toBe('invalid date');
    expect(matchValueProblem('20231301', 'DA')).toBe('invalid date');
    expect(matchValueProblem('20230230', 'DA')).toBe('invalid date');
    expect(matchValueProblem('2023-01-05', 'DA')).toBe('invalid date');
    expect(matchValueProblem('2500', 'TM')).toBe('invalid time');
    expect(matchValueProblem('12:30', 'TM')).toBe('invalid time');
    expect(matchValueProblem('20231301', 'DT')).toBe('invalid date-time');
  });

  it('reports a malformed range', () => {
    expect(matchValueProblem('abc-def', 'DA')).toBe('invalid range');
    expect(matchValueProblem('20230101-2023013', 'DA')).toBe('invalid range');
    expect(matchValueProblem('0800-2561', 'TM')).toBe('invalid range');
    expect(matchValueProblem('x-y', 'DT')).toBe('invalid range');
  });

  it('reports lists it cannot match', () => {
    expect(matchValueProblem('20230101-20230102\\20230201', 'DA')).toBe(
      'a list of ranges is not supported',
    );
    expect(matchValueProblem('CT*\\MR', 'CS')).toBe('wildcards in a list are not supported');
    expect(matchValueProblem('1.2.3\\', 'UI')).toBe('empty value in a list');
    expect(matchValueProblem('1.2.3\\1.2.x', 'UI')).toBe('invalid UID');
  });

  it('reports a malformed UID or integer', () => {
    expect(matchValueProblem('1.2.*', 'UI')).toBe('invalid UID');
    expect(matchValueProblem(`1.${'2'.repeat(64)}`, 'UI')).toBe('invalid UID');
    expect(matchValueProblem('1.5', 'IS')).toBe('invalid integer');
  });
});

describe('date and time syntax', () => {
  it('checks DA against the calendar', () => {
    expect(isValidDate('20240229')).toBe(true);
    expect(isValidDate('20230229')).toBe(false);
    expect(isValidDate('19000229')).toBe(false);
    expect(isValidDate('20000229')).toBe(true);
    expect(isValidDate('20230431')).toBe(false);
  });

  it('accepts every precision of TM', () => {
    for (const value of ['08', '0830', '083015', '083015.1', '083015.123456', '235960']) {
      expect(isValidTime(value)).toBe(true);
    }
    for (const value of ['8', '083', '0830151', '083015.', '083015.1234567', '2400']) {
      expect(isValidTime(value)).toBe(false);
    }
  });

  it('accepts every precision of DT and UTC offsets', () => {
    for (const value of ['2023', '202301', '20230105', '2023010512', '20230105123000.5+0100']) {
      expect(isValidDateTime(value)).toBe(true);
    }
    for (const value of ['202313', '2023011', '20230105-1300', '20230105+0160', '202301051']) {
      expect(isValidDateTime(value)).toBe(false);
    }
  });
});
