/**
 * Forwarding's states in words and colours: a forward job's (pending, in progress, done, failed,
 * dead) as a badge with its meaning as the tooltip, and a destination's health (reachable,
 * failing, not tried yet, not set up) read from its last success, last error and AE title entry.
 */

import type { ForwardDestination, ForwardState } from '../api/types.js';
import { StateBadge, type StateMeaning } from './state-badge.js';

/** A forward job's state: its label, colour and meaning. */
export const FORWARD_STATE_MEANINGS: Readonly<Record<ForwardState, StateMeaning>> = {
  pending: { label: 'Pending', tone: 'neutral', meaning: 'Waiting to be sent (due now).' },
  in_progress: { label: 'Sending', tone: 'info', meaning: 'Being sent to its destination now.' },
  done: { label: 'Done', tone: 'success', meaning: 'The destination stored the instance.' },
  failed: {
    label: 'Failed',
    tone: 'failure',
    meaning: 'The last attempt failed; it is tried again at its next attempt.',
  },
  dead: {
    label: 'Dead',
    tone: 'failure',
    meaning: 'Every attempt failed (or the instance is gone): not tried again unless retried.',
  },
};

/** A forward job's state as a badge, its meaning as the tooltip. */
export function ForwardStateBadge({ state }: { readonly state: ForwardState }) {
  return <StateBadge meaning={FORWARD_STATE_MEANINGS[state]} />;
}

/** Whether an administrator may retry the job (the API's rule). */
export function isForwardRetryable(job: { readonly state: ForwardState }): boolean {
  return job.state === 'failed' || job.state === 'dead';
}

/** How a destination is doing. */
export type DestinationHealth = 'reachable' | 'failing' | 'untried';

/** Failing when its last error came after its last success; reachable after a success. */
export function healthOf(destination: ForwardDestination): DestinationHealth {
  const { lastSuccessAt, lastErrorAt } = destination;
  if (lastErrorAt !== null && (lastSuccessAt === null || lastErrorAt > lastSuccessAt)) {
    return 'failing';
  }
  return lastSuccessAt === null ? 'untried' : 'reachable';
}

/** Why the forwarder cannot send to the destination as its AE title is set up, if it cannot. */
export function setupProblemOf(destination: ForwardDestination): string | undefined {
  const { ae } = destination;
  if (ae === null) return 'not among the AE titles: add it there with its host and port';
  if (!ae.isActive) return 'its AE title is inactive';
  if (ae.host === '' || ae.port === null) return 'its AE title has no host and port';
  return undefined;
}

const HEALTH: Readonly<Record<DestinationHealth, { label: string; dot: string; title: string }>> = {
  reachable: { label: 'Reachable', dot: 'dot-ok', title: 'The last attempt to send succeeded.' },
  failing: { label: 'Failing', dot: 'dot-bad', title: 'The last attempt to send failed.' },
  untried: { label: 'Not tried yet', dot: 'dot-unknown', title: 'Nothing was sent to it yet.' },
};

/** A destination's health as a dot and a word. */
export function DestinationHealthLabel({ health }: { readonly health: DestinationHealth }) {
  const { label, dot, title } = HEALTH[health];
  return (
    <span className="state-label" title={title}>
      <span className={`dot ${dot}`} aria-hidden="true" />
      {label}
    </span>
  );
}
