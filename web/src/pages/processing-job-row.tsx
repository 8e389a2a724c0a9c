/**
 * A row of the processing page's jobs: the job's kind, target, series, state, attempts, next
 * attempt (a countdown), last error and, for an administrator, Retry when the API allows it
 * (the row's frame: job-table.tsx); opening to show every field.
 */

import type { HandoffJob, ListedHandoffJob } from '../api/types.js';
import { DetailItem, orDash } from '../components/detail-item.js';
import {
  isRetryable,
  JOB_KIND_LABELS,
  JOB_STATE_MEANINGS,
  JobStateBadge,
} from '../components/handoff-state.js';
import { JobDetails, JobTableRow } from '../components/job-table.js';
import { formatTime } from '../format.js';
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
  const { job, filters, onFilterSeries, ...row } = props;
  const target = targetText(job);
  return (
    <JobTableRow
      {...row}
      job={job}
      detailId={`job-${job.id}`}
      toggleLabel={`Job ${job.id} details`}
      badge={<JobStateBadge state={job.state} />}
      nextAttemptAt={nextAttemptOf(job)}
      canRetry={isRetryable(job)}
      details={<HandoffJobDetails job={job} />}
    >
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
    </JobTableRow>
  );
}

/**
 * When a job is tried next: a delivery waiting after a failure (failed, or pending again) waits
 * for its next attempt; a queue item waits for a tool, not for a time.
 */
function nextAttemptOf(job: HandoffJob): string | null {
  if (job.kind === 'queue') return null;
  return job.state === 'failed' || job.state === 'pending' ? job.nextAttemptAt : null;
}

/** Every field of a job. */
function HandoffJobDetails({ job }: { readonly job: ListedHandoffJob }) {
  return (
    <JobDetails job={job}>
      <DetailItem label="Job">{job.id}</DetailItem>
      <DetailItem label="Kind">{JOB_KIND_LABELS[job.kind]}</DetailItem>
      <DetailItem label="State">
        {JOB_STATE_MEANINGS[job.state].label}:{' '}
        <span className="muted">{JOB_STATE_MEANINGS[job.state].meaning}</span>
      </DetailItem>
      <DetailItem label="Target">
        <span className={job.kind === 'queue' ? undefined : 'mono break'}>
          {orDash(job.kind === 'queue' ? null : job.target)}
        </span>
      </DetailItem>
      <DetailItem label="Series instance UID" isMono>
        {job.seriesInstanceUid}
      </DetailItem>
      <DetailItem label="Event">
        {job.eventType === 'series.updated'
          ? `series.updated (completion ${job.completion}, late instances)`
          : `series.completed (completion ${job.completion})`}
      </DetailItem>
      <DetailItem label="Idempotency key">
        <span className="mono break">{job.idempotencyKey}</span>
      </DetailItem>
      <DetailItem label="Attempts">{job.attempts}</DetailItem>
      <DetailItem label="Next attempt">{formatTime(job.nextAttemptAt)}</DetailItem>
      <DetailItem label="Claimed by">
        <span className="mono">{orDash(job.claimedBy)}</span>
        {job.claimedAt !== null && <span className="muted"> at {formatTime(job.claimedAt)}</span>}
      </DetailItem>
      <DetailItem label="Result">
        <span className="mono break">{orDash(job.result)}</span>
      </DetailItem>
      <DetailItem label="Created">{formatTime(job.createdAt)}</DetailItem>
      <DetailItem label="Updated">{formatTime(job.updatedAt)}</DetailItem>
    </JobDetails>
  );
}
