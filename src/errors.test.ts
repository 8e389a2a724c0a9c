import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DicomServerError, ERROR_CODES, hasCode } from './errors.js';

const docs = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
const documented = [...docs.matchAll(/^## (ERR_[A-Z_]+)$/gm)].map((match) => match[1]);

describe('error registry', () => {
  it('documents every registered code in docs/errors.md', () => {
    expect(documented.sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it('keeps the code, details and cause of an error', () => {
    const cause = new Error('socket hang up');
    const error = new DicomServerError(
      'ERR_TIMEOUT',
      'acse timer expired',
      { timer: 'acse' },
      cause,
    );
    expect(error.code).toBe('ERR_TIMEOUT');
    expect(error.details).toEqual({ timer: 'acse' });
    expect(error.cause).toBe(cause);
    expect(hasCode(error, 'ERR_TIMEOUT')).toBe(true);
    expect(hasCode(error, 'ERR_PDU_MALFORMED')).toBe(false);
    expect(hasCode(new Error('plain'), 'ERR_TIMEOUT')).toBe(false);
  });
});
