/**
 * A row of the routing page's forward queue: the job's instance, destination, rule, state,
 * attempts, next attempt (a countdown), last error and, for an administrator, Retry when the
 * API allows it (the row's frame: job-table.tsx); opening to show every field.
 */

import type { ForwardJob } from '../api/types.js';
import { DetailItem } from '../components/detail-item.js';
import {
  FORWARD_STATE_MEANINGS,
  ForwardStateBadge,
  isForwardRetryable,
} from '../components/forward-state.js';
import { JobDetails, JobTableRow } from '../components/job-table.js';
import { formatBytes, formatTime } from '../format.js';

/** When a job is tried next: a failed one waits for its next attempt, the others for nothing. */
function nextAttemptOf(job: ForwardJob): string | null {
  return job.state === 'failed' ? job.nextAttemptAt : null;
}

/** A job's row, and its details row when open. */
export function ForwardJobRow(props: {
  readonly job: ForwardJob;
  readonly columns: number;
  readonly isOpen: boolean;
  readonly isAdmin: boolean;
  readonly onToggle: () => void;
  readonly onRetry: () => void;
}) {
  const { job } = props;
  return (
    <JobTableRow
      {...props}
      detailId={`forward-job-${job.id}`}
      toggleLabel={`Forward job ${job.id} details`}
      badge={<ForwardStateBadge state={job.state} />}
      nextAttemptAt={nextAttemptOf(job)}
      canRetry={isForwardRetryable(job)}
      details={<ForwardJobDetails job={job} />}
    >
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
    </JobTableRow>
  );
}

/** Every field of a job. */
function ForwardJobDetails({ job }: { readonly job: ForwardJob }) {
  return (
    <JobDetails job={job} isWide>
      <DetailItem label="Job">{job.id}</DetailItem>
      <DetailItem label="State">
        {FORWARD_STATE_MEANINGS[job.state].label}:{' '}
        <span className="muted">{FORWARD_STATE_MEANINGS[job.state].meaning}</span>
      </DetailItem>
      <DetailItem label="Destination" isMono>
        {job.destination}
      </DetailItem>
      <DetailItem label="Rule">
        {job.ruleName}
        {job.ruleId === null && <span className="muted"> (deleted since)</span>}
      </DetailItem>
      <DetailItem label="SOP instance UID" isMono>
        {job.sopInstanceUid}
      </DetailItem>
      <DetailItem label="SOP class UID" isMono>
        {job.sopClassUid}
      </DetailItem>
      <DetailItem label="Series instance UID" isMono>
        {job.seriesInstanceUid}
      </DetailItem>
      <DetailItem label="Study instance UID" isMono>
        {job.studyInstanceUid}
      </DetailItem>
      <DetailItem label="Patient ID" isMono>
        {job.patientId || '—'}
      </DetailItem>
      <DetailItem label="File">
        <span className="mono break">{job.filePath}</span>{' '}
        <span className="muted">({formatBytes(job.fileSize)})</span>
      </DetailItem>
      <DetailItem label="Attempts">{job.attempts}</DetailItem>
      <DetailItem label="Next attempt">{formatTime(job.nextAttemptAt)}</DetailItem>
      <DetailItem label="Queued">{formatTime(job.createdAt)}</DetailItem>
      <DetailItem label="Updated">{formatTime(job.updatedAt)}</DetailItem>
    </JobDetails>
  );
}
