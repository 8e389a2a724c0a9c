/**
 * The service state as a coloured dot and a word: green running, red stopped or failed, amber
 * on the way between.
 */

import type { ServiceState } from '../api/types.js';

const LABELS: Readonly<Record<ServiceState, string>> = {
  running: 'Running',
  stopped: 'Stopped',
  starting: 'Starting…',
  stopping: 'Stopping…',
  error: 'Failed',
};

const TONES: Readonly<Record<ServiceState, 'ok' | 'bad' | 'busy'>> = {
  running: 'ok',
  stopped: 'bad',
  error: 'bad',
  starting: 'busy',
  stopping: 'busy',
};

/** The dot alone (decorative: pair it with the label). */
export function StatusDot({ state }: { readonly state: ServiceState | undefined }) {
  const tone = state === undefined ? 'unknown' : TONES[state];
  return <span className={`dot dot-${tone}`} aria-hidden="true" />;
}

/** The dot and the state's name. */
export function ServiceStateLabel({ state }: { readonly state: ServiceState | undefined }) {
  return (
    <span className="state-label">
      <StatusDot state={state} />
      {state === undefined ? 'Unknown' : LABELS[state]}
    </span>
  );
}
