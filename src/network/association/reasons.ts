/**
 * Plain-words meanings of A-ASSOCIATE-RJ and A-ABORT fields (PS3.8 Tables 9-21 and 9-26), for
 * logs, the command line and the console.
 *
 * Layer: network/association. Pure data.
 */

const REJECT_RESULTS: Readonly<Record<number, string>> = {
  1: 'rejected-permanent',
  2: 'rejected-transient',
};

const REJECT_SOURCES: Readonly<Record<number, string>> = {
  1: 'service-user',
  2: 'service-provider (ACSE)',
  3: 'service-provider (presentation)',
};

const REJECT_REASONS: Readonly<Record<number, Readonly<Record<number, string>>>> = {
  1: {
    1: 'no-reason-given',
    2: 'application-context-name-not-supported',
    3: 'calling-AE-title-not-recognized',
    7: 'called-AE-title-not-recognized',
  },
  2: { 1: 'no-reason-given', 2: 'protocol-version-not-supported' },
  3: { 1: 'temporary-congestion', 2: 'local-limit-exceeded' },
};

const ABORT_REASONS: Readonly<Record<number, string>> = {
  0: 'reason-not-specified',
  1: 'unrecognized-PDU',
  2: 'unexpected-PDU',
  4: 'unrecognized-PDU-parameter',
  5: 'unexpected-PDU-parameter',
  6: 'invalid-PDU-parameter-value',
};

/** Names of an A-ASSOCIATE-RJ's result, source and reason. */
export function describeRejection(result: number, source: number, reason: number): string {
  const resultName = REJECT_RESULTS[result] ?? `result ${result}`;
  const sourceName = REJECT_SOURCES[source] ?? `source ${source}`;
  const reasonName = REJECT_REASONS[source]?.[reason] ?? `reason ${reason}`;
  return `${resultName}, ${sourceName}: ${reasonName}`;
}

/** Names of an A-ABORT's source and reason. */
export function describeAbort(source: number, reason: number): string {
  if (source === 0) return 'service-user';
  if (source === 2) return `service-provider: ${ABORT_REASONS[reason] ?? `reason ${reason}`}`;
  return `source ${source}, reason ${reason}`;
}
