/**
 * The service state as a coloured dot and a word: green running, red stopped or failed, amber
 * on the way between; and whether a thing is switched on (an AE title active, a rule enabled):
 * green, or grey and muted.
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

/** Whether a thing is on: a green dot and `on` ("Active"), or a grey dot and `off`, muted. */
export function SwitchLabel(props: {
  readonly isOn: boolean;
  readonly on: string;
  readonly off: string;
}) {
  const { isOn, on, off } = props;
  return (
    <span className={isOn ? 'state-label' : 'state-label muted'}>
      <span className={isOn ? 'dot dot-ok' : 'dot dot-unknown'} aria-hidden="true" />
      {isOn ? on : off}
    </span>
  );
}
