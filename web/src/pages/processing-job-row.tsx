/**
 * A row of the processing page's jobs: the job's kind, target, series, state, attempts, next
 * attempt (a countdown), last error and, for an administrator, Retry when the API allows it;
 * opening to show every field.
 */

import type { ReactNode } from 'react';
import type { HandoffJob, ListedHandoffJob } from '../api/types.js';
import {
  isRetryable,
  JOB_KIND_LABELS,
  JOB_STATE_MEANINGS,
  JobStateBadge,
} from '../components/handoff-state.js';
import { formatShortTime, formatTime } from '../format.js';
import { useNow } from '../live/live-events.js';
import { type ProcessingFilters, processingPath } from './processing-view.js';

/**
 * A job's target in words: the folder (a done copy: the series' folder in it), URL or command;
 * for a queue item, its claimer.
 */
export function targetText(job: HandoffJob): string {
  if (job.kind === 'copy' && job.state === 'done' && job.result !== null) return job.result;
  if (job.kind !== 'queue') return job.target;
  if (job.claimedBy === null) return job.state === 'pending' ? 'waiting for a tool' : '—';
  return job.state === 'processing' ? `claimed by ${job.claimedBy}` : `by ${job.claimedBy}`;
}

/** A job's row, and its details row when open. */
export function JobRow(props: {
  readonly job: ListedHandoffJob;
  readonly filters: ProcessingFilters;
  readonly columns: number;
  readonly isOpen: boolean;
  readonly isAdmin: boolean;
  readonly onToggle: () => void;
  readonly onRetry: () => void;
  readonly onFilterSeries: () => void;
}) {
  const { job, filters, columns, isOpen, isAdmin, onToggle, onRetry, onFilterSeries } = props;
  const detailId = `job-${job.id}`;
  const target = targetText(job);
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
            aria-label={`Job ${job.id} details`}
            onClick={onToggle}
          >
            <span className="caret" aria-hidden="true">
              {isOpen ? '▾' : '▸'}
            </span>
            <span className="mono">{job.id}</span>
          </button>
        </td>
        <td className="nowrap">{JOB_KIND_LABELS[job.kind]}</td>
        <td
          className={job.kind === 'queue' ? 'ellipsis muted' : 'ellipsis mono small'}
          title={target}
        >
          {target}
        </td>
        <td className="ellipsis mono small job-series" title={job.seriesInstanceUid}>
          {filters.series === job.seriesInstanceUid ? (
            job.seriesInstanceUid
          ) : (
            <a
              href={processingPath({ ...filters, series: job.seriesInstanceUid })}
              title={`Only the jobs of series ${job.seriesInstanceUid}`}
              onClick={(event) => {
                if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
                // The series' jobs, in place (a console link would scroll to the top).
                event.preventDefault();
                onFilterSeries();
              }}
            >
              {job.seriesInstanceUid}
            </a>
          )}
          {job.completion > 1 && <span className="muted"> · update {job.completion - 1}</span>}
        </td>
        <td className="nowrap">
          <JobStateBadge state={job.state} />
        </td>
        <td className="num">{job.attempts}</td>
        <td className="nowrap">
          <NextAttempt job={job} />
        </td>
        <td className="ellipsis text-bad job-error" title={job.lastError ?? undefined}>
          {job.lastError ?? ''}
        </td>
        <td className="nowrap" title={formatTime(job.updatedAt)}>
          {formatShortTime(job.updatedAt)}
        </td>
        {isAdmin && (
          <td className="actions-col">
            {isRetryable(job) && (
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
            <JobDetails job={job} />
          </td>
        </tr>
      )}
    </>
  );
}

/** When a job is tried next: a countdown for a failed delivery, else what it waits for. */
function NextAttempt({ job }: { readonly job: HandoffJob }) {
  if (job.state === 'dead') return <span className="muted">gave up</span>;
  if (job.kind === 'queue' || job.nextAttemptAt === null) return <span className="muted">—</span>;
  if (job.state !== 'failed' && job.state !== 'pending') return <span className="muted">—</span>;
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

const orDash = (value: string | number | null) =>
  value === null || value === '' ? <span className="muted">—</span> : value;

/** Every field of a job. */
function JobDetails({ job }: { readonly job: ListedHandoffJob }) {
  return (
    <div className="details">
      {job.lastError !== null && (
        <div className="explain explain-failure">
          <pre className="error-text">{job.lastError}</pre>
        </div>
      )}
      <dl className="detail-grid">
        <Item label="Job">{job.id}</Item>
        <Item label="Kind">{JOB_KIND_LABELS[job.kind]}</Item>
        <Item label="State">
          {JOB_STATE_MEANINGS[job.state].label}:{' '}
          <span className="muted">{JOB_STATE_MEANINGS[job.state].meaning}</span>
        </Item>
        <Item label="Target">
          <span className={job.kind === 'queue' ? undefined : 'mono break'}>
            {orDash(job.kind === 'queue' ? null : job.target)}
          </span>
        </Item>
        <Item label="Series instance UID">
          <span className="mono">{job.seriesInstanceUid}</span>
        </Item>
        <Item label="Event">
          {job.eventType === 'series.updated'
            ? `series.updated (completion ${job.completion}, late instances)`
            : `series.completed (completion ${job.completion})`}
        </Item>
        <Item label="Idempotency key">
          <span className="mono break">{job.idempotencyKey}</span>
        </Item>
        <Item label="Attempts">{job.attempts}</Item>
        <Item label="Next attempt">{formatTime(job.nextAttemptAt)}</Item>
        <Item label="Claimed by">
          <span className="mono">{orDash(job.claimedBy)}</span>
          {job.claimedAt !== null && <span className="muted"> at {formatTime(job.claimedAt)}</span>}
        </Item>
        <Item label="Result">
          <span className="mono break">{orDash(job.result)}</span>
        </Item>
        <Item label="Created">{formatTime(job.createdAt)}</Item>
        <Item label="Updated">{formatTime(job.updatedAt)}</Item>
      </dl>
    </div>
  );
}
