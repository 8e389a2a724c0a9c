/**
 * A row of the routing page's forward queue: the job's instance, destination, rule, state,
 * attempts, next attempt (a countdown), last error and, for an administrator, Retry when the
 * API allows it; opening to show every field.
 */

import type { ReactNode } from 'react';
import type { ForwardJob } from '../api/types.js';
import {
  FORWARD_STATE_MEANINGS,
  ForwardStateBadge,
  isForwardRetryable,
} from '../components/forward-state.js';
import { formatBytes, formatShortTime, formatTime } from '../format.js';
import { useNow } from '../live/live-events.js';

/** A job's row, and its details row when open. */
export function ForwardJobRow(props: {
  readonly job: ForwardJob;
  readonly columns: number;
  readonly isOpen: boolean;
  readonly isAdmin: boolean;
  readonly onToggle: () => void;
  readonly onRetry: () => void;
}) {
  const { job, columns, isOpen, isAdmin, onToggle, onRetry } = props;
  const detailId = `forward-job-${job.id}`;
  const isBad = job.state === 'failed' || job.state === 'dead';
  return (
    <>
      <tr className={isOpen ? 'row-open' : isBad ? 'row-failure' : undefined}>
        <td className="nowrap">
          <button
            type="button"
            className="row-toggle"
            aria-expanded={isOpen}
            aria-controls={detailId}
            aria-label={`Forward job ${job.id} details`}
            onClick={onToggle}
          >
            <span className="caret" aria-hidden="true">
              {isOpen ? '▾' : '▸'}
            </span>
            <span className="mono">{job.id}</span>
          </button>
        </td>
        <td className="ellipsis" title={job.sopInstanceUid}>
          <span className="mono small">{job.sopInstanceUid}</span>
          <div className="muted small ellipsis">patient {job.patientId || '—'}</div>
        </td>
        <td className="ellipsis mono strong" title={job.destination}>
          {job.destination}
        </td>
        <td className="ellipsis" title={job.ruleId === null ? 'rule deleted since' : undefined}>
          {job.ruleName}
        </td>
        <td className="nowrap">
          <ForwardStateBadge state={job.state} />
        </td>
        <td className="num">{job.attempts}</td>
        <td className="nowrap">
          <NextAttempt job={job} />
        </td>
        <td className="ellipsis text-bad small" title={job.lastError ?? undefined}>
          {job.lastError ?? ''}
        </td>
        <td className="nowrap" title={formatTime(job.updatedAt)}>
          {formatShortTime(job.updatedAt)}
        </td>
        {isAdmin && (
          <td className="actions-col">
            {isForwardRetryable(job) && (
              <button type="button" className="button button-small" onClick={onRetry}>
                Retry
              </button>
            )}
          </td>
        )}
      </tr>
      {isOpen && (
        <tr className="row-detail" id={detailId}>
          <td colSpan={columns}>
            <ForwardJobDetails job={job} />
          </td>
        </tr>
      )}
    </>
  );
}

/** When a job is tried next: a countdown for a failed one, else what it waits for. */
function NextAttempt({ job }: { readonly job: ForwardJob }) {
  if (job.state === 'dead') return <span className="muted">gave up</span>;
  if (job.state !== 'failed' || job.nextAttemptAt === null) return <span className="muted">—</span>;
  return <Countdown at={job.nextAttemptAt} />;
}

function Countdown({ at }: { readonly at: string }) {
  const now = useNow(1000);
  const seconds = Math.ceil((Date.parse(at) - now) / 1000);
  return (
    <span title={formatTime(at)}>{seconds <= 0 ? 'due now' : `in ${formatWait(seconds)}`}</span>
  );
}

/** 45 s, 3 min 20 s, 2 h 5 min */
function formatWait(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) {
    const rest = seconds % 60;
    return `${Math.floor(seconds / 60)} min${rest === 0 ? '' : ` ${rest} s`}`;
  }
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

function Item({ label, children }: { readonly label: string; readonly children: ReactNode }) {
  return (
    <div className="detail-item">
      <dt>{label}</dt>
      <dd>{children}</dd>
    </div>
  );
}

/** Every field of a job. */
function ForwardJobDetails({ job }: { readonly job: ForwardJob }) {
  return (
    <div className="details">
      {job.lastError !== null && (
        <div className="explain explain-failure">
          <pre className="error-text">{job.lastError}</pre>
        </div>
      )}
      <dl className="detail-grid detail-grid-wide">
        <Item label="Job">{job.id}</Item>
        <Item label="State">
          {FORWARD_STATE_MEANINGS[job.state].label}:{' '}
          <span className="muted">{FORWARD_STATE_MEANINGS[job.state].meaning}</span>
        </Item>
        <Item label="Destination">
          <span className="mono">{job.destination}</span>
        </Item>
        <Item label="Rule">
          {job.ruleName}
          {job.ruleId === null && <span className="muted"> (deleted since)</span>}
        </Item>
        <Item label="SOP instance UID">
          <span className="mono">{job.sopInstanceUid}</span>
        </Item>
        <Item label="SOP class UID">
          <span className="mono">{job.sopClassUid}</span>
        </Item>
        <Item label="Series instance UID">
          <span className="mono">{job.seriesInstanceUid}</span>
        </Item>
        <Item label="Study instance UID">
          <span className="mono">{job.studyInstanceUid}</span>
        </Item>
        <Item label="Patient ID">
          <span className="mono">{job.patientId || '—'}</span>
        </Item>
        <Item label="File">
          <span className="mono break">{job.filePath}</span>{' '}
          <span className="muted">({formatBytes(job.fileSize)})</span>
        </Item>
        <Item label="Attempts">{job.attempts}</Item>
        <Item label="Next attempt">{formatTime(job.nextAttemptAt)}</Item>
        <Item label="Queued">{formatTime(job.createdAt)}</Item>
        <Item label="Updated">{formatTime(job.updatedAt)}</Item>
      </dl>
    </div>
  );
}
