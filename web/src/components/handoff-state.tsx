/**
 * The hand-off's states in words and colours: a series' state (receiving, waiting for
 * completion, late instance arrived, complete, handed off, acknowledged, failed) and a job's (pending, in progress, processing, done, failed, dead), as
 * badges with what each means as a tooltip; and the kinds of job by name.
 */

import type { JobKind, JobState, SeriesState } from '../api/types.js';
import { StateBadge, type StateMeaning } from './state-badge.js';

/** A series' state: its label, colour and meaning. */
export const SERIES_STATE_MEANINGS: Readonly<Record<SeriesState, StateMeaning>> = {
  receiving: {
    label: 'Receiving',
    tone: 'info',
    meaning: 'Instances are arriving; it completes once none has come for the completion time.',
  },
  complete: {
    label: 'Complete',
    tone: 'warning',
    meaning: 'Complete: its hand-off (folder copy, webhooks, command) is not done yet.',
  },
  handed_off: {
    label: 'Handed off',
    tone: 'success',
    meaning: 'Every delivery is done; a queue item, if any, waits for a tool to process it.',
  },
  acknowledged: {
    label: 'Acknowledged',
    tone: 'success',
    meaning: 'Handed off, and the processing tool acknowledged its queue item.',
  },
  failed: {
    label: 'Failed',
    tone: 'failure',
    meaning: 'A delivery gave up (dead) or the processing tool reported a failure.',
  },
};

/** A job's state: its label, colour and meaning. */
export const JOB_STATE_MEANINGS: Readonly<Record<JobState, StateMeaning>> = {
  pending: { label: 'Pending', tone: 'neutral', meaning: 'Waiting for its turn (or for a tool).' },
  in_progress: { label: 'In progress', tone: 'info', meaning: 'Being delivered now.' },
  processing: {
    label: 'Processing',
    tone: 'info',
    meaning: 'Claimed by a processing tool, which has not acknowledged it yet.',
  },
  done: { label: 'Done', tone: 'success', meaning: 'Delivered (or acknowledged by the tool).' },
  failed: {
    label: 'Failed',
    tone: 'failure',
    meaning: 'The last attempt failed; a delivery is tried again at its next attempt.',
  },
  dead: {
    label: 'Dead',
    tone: 'failure',
    meaning: 'Every attempt failed: it is not tried again unless retried.',
  },
};

/** A job's kind by name. */
export const JOB_KIND_LABELS: Readonly<Record<JobKind, string>> = {
  queue: 'Queue item',
  copy: 'Folder copy',
  webhook: 'Webhook',
  command: 'Command',
};

/** What a receiving series is doing: being sent, waiting for completion, reopened late. */
const RECEIVING_MEANINGS = {
  waiting: {
    label: 'Waiting for completion',
    tone: 'info',
    meaning:
      'No association is sending it now: it completes once no instance has come for the completion time.',
  },
  late: {
    label: 'Late instance arrived',
    tone: 'warning',
    meaning:
      'An instance arrived after the series was complete: once complete again, it is handed off again as an update.',
  },
} as const satisfies Record<string, StateMeaning>;

/** A series as its state shows it; for a receiving one, whether it is still being sent. */
export interface SeriesStateOf {
  readonly state: SeriesState;
  readonly completion: number;
  readonly isSending?: boolean;
}

/**
 * A series' state as a badge, its meaning as the tooltip. A receiving series shows whether it
 * is still being sent or waiting for its completion time, and a reopened one that a late
 * instance arrived (with, below, which of the two it is doing).
 */
export function SeriesStateBadge({ series }: { readonly series: SeriesStateOf }) {
  if (series.state !== 'receiving') {
    return <StateBadge meaning={SERIES_STATE_MEANINGS[series.state]} />;
  }
  const isWaiting = series.isSending === false;
  if (series.completion === 0) {
    return (
      <StateBadge
        meaning={isWaiting ? RECEIVING_MEANINGS.waiting : SERIES_STATE_MEANINGS.receiving}
      />
    );
  }
  return (
    <>
      <StateBadge meaning={RECEIVING_MEANINGS.late} />
      <div className="muted small">{isWaiting ? 'waiting for completion' : 'receiving'}</div>
    </>
  );
}

/** A job's state as a badge, its meaning as the tooltip. */
export function JobStateBadge({ state }: { readonly state: JobState }) {
  return <StateBadge meaning={JOB_STATE_MEANINGS[state]} />;
}

/** Whether an administrator may retry the job (the API's rule). */
export function isRetryable(job: { readonly kind: JobKind; readonly state: JobState }): boolean {
  return job.kind === 'queue'
    ? job.state === 'failed' || job.state === 'processing'
    : job.state === 'failed' || job.state === 'dead';
}
