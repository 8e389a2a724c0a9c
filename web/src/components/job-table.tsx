/**
 * The tables of queued jobs, as the processing page (hand-off deliveries and queue items) and
 * the routing page (forward jobs) show them: the head, and a job's row with its number (opening
 * its details), the page's own cells, then its state, attempts, next attempt (a countdown), last
 * error, last change and the administrator's Retry, opening to its details; and how a job
 * failed in words, for a retry's confirmation. What the states are, which of them wait for a next attempt and which may be
 * retried is each page's own rule (handoff-state.tsx, forward-state.tsx), passed in.
 */

import type { ReactNode } from 'react';
import { formatShortTime, formatTime, formatWait } from '../format.js';
import { useNow } from '../live/live-events.js';
import { ActionsHeading } from './actions-heading.js';
import { DetailRow, RowToggle } from './expandable-row.js';

/** What a job tells of itself in its row (a hand-off job, a forward job). */
export interface QueuedJob {
  readonly id: number;
  /** Its state: `failed` and `dead` (given up) show the row as a failure. */
  readonly state: string;
  readonly attempts: number;
  readonly lastError: string | null;
  readonly updatedAt: string;
}

/** One of the page's own columns, between Job and State. */
export interface JobColumn {
  readonly heading: string;
  /** The class of its width in styles.css; none: it shares what the others leave. */
  readonly widthClass?: string;
}

/** The column widths and headings: Job, the page's own `columns`, State, Attempts … Actions. */
export function JobTableHead(props: {
  readonly columns: readonly JobColumn[];
  readonly isAdmin: boolean;
}) {
  const { columns, isAdmin } = props;
  return (
    <>
      <colgroup>
        <col className="col-job" />
        {columns.map((column) => (
          <col key={column.heading} className={column.widthClass} />
        ))}
        <col className="col-job-state" />
        <col className="col-attempts" />
        <col className="col-next" />
        <col className="col-error" />
        <col className="col-updated" />
        {isAdmin && <col className="col-actions" />}
      </colgroup>
      <thead>
        <tr>
          <th scope="col">Job</th>
          {columns.map((column) => (
            <th key={column.heading} scope="col">
              {column.heading}
            </th>
          ))}
          <th scope="col">State</th>
          <th scope="col" className="num">
            Attempts
          </th>
          <th scope="col">Next attempt</th>
          <th scope="col">Last error</th>
          <th scope="col">Updated</th>
          {isAdmin && <ActionsHeading />}
        </tr>
      </thead>
    </>
  );
}

/**
 * A job's row: its number (the button opening its details), `children` (the page's own cells),
 * its state, attempts, next attempt, last error (`job-error`: a table may size it), last change
 * and, for an administrator, Retry when `canRetry`; below it when open, its details.
 */
export function JobTableRow(props: {
  readonly job: QueuedJob;
  /** The id of its details row. */
  readonly detailId: string;
  /** The number's name for screen readers ("Job 4 details"). */
  readonly toggleLabel: string;
  /** Its state as a badge. */
  readonly badge: ReactNode;
  /** When it is tried again, if it waits for that (shown as a countdown); else null. */
  readonly nextAttemptAt: string | null;
  readonly canRetry: boolean;
  readonly details: ReactNode;
  /** The number of columns (for the details row). */
  readonly columns: number;
  readonly isOpen: boolean;
  readonly isAdmin: boolean;
  readonly onToggle: () => void;
  readonly onRetry: () => void;
  readonly children: ReactNode;
}) {
  const { job, detailId, toggleLabel, badge, nextAttemptAt, canRetry, details } = props;
  const { columns, isOpen, isAdmin, onToggle, onRetry, children } = props;
  const isBad = job.state === 'failed' || job.state === 'dead';
  return (
    <>
      <tr className={isOpen ? 'row-open' : isBad ? 'row-failure' : undefined}>
        <td className="nowrap">
          <RowToggle isOpen={isOpen} controls={detailId} label={toggleLabel} onToggle={onToggle}>
            <span className="mono">{job.id}</span>
          </RowToggle>
        </td>
        {children}
        <td className="nowrap">{badge}</td>
        <td className="num">{job.attempts}</td>
        <td className="nowrap">
          <NextAttempt isGivenUp={job.state === 'dead'} at={nextAttemptAt} />
        </td>
        <td className="ellipsis text-bad job-error" title={job.lastError ?? undefined}>
          {job.lastError ?? ''}
        </td>
        <td className="nowrap" title={formatTime(job.updatedAt)}>
          {formatShortTime(job.updatedAt)}
        </td>
        {isAdmin && (
          <td className="actions-col">
            {canRetry && (
              <button type="button" className="button button-small" onClick={onRetry}>
                Retry
              </button>
            )}
          </td>
        )}
      </tr>
      {isOpen && (
        <DetailRow id={detailId} columns={columns}>
          {details}
        </DetailRow>
      )}
    </>
  );
}

/** A job's details: its last error in full (when it has one), then its fields (DetailItems). */
export function JobDetails(props: {
  readonly job: QueuedJob;
  /** Wider fields (long UIDs and paths), fewer to a line. */
  readonly isWide?: boolean;
  readonly children: ReactNode;
}) {
  const { job, isWide, children } = props;
  return (
    <div className="details">
      {job.lastError !== null && (
        <div className="explain explain-failure">
          <pre className="error-text">{job.lastError}</pre>
        </div>
      )}
      <dl className={isWide === true ? 'detail-grid detail-grid-wide' : 'detail-grid'}>
        {children}
      </dl>
    </div>
  );
}

/** When a job is tried next: given up, a countdown, or a dash when it waits for no attempt. */
function NextAttempt(props: { readonly isGivenUp: boolean; readonly at: string | null }) {
  const { isGivenUp, at } = props;
  if (isGivenUp) return <span className="muted">gave up</span>;
  if (at === null) return <span className="muted">—</span>;
  return <Countdown at={at} />;
}

/** "in 3 min 20 s", ticking each second; "due now" once the time has come. */
function Countdown({ at }: { readonly at: string }) {
  const now = useNow(1000);
  const seconds = Math.ceil((Date.parse(at) - now) / 1000);
  return (
    <span title={formatTime(at)}>{seconds <= 0 ? 'due now' : `in ${formatWait(seconds)}`}</span>
  );
}

/**
 * A failed or given-up job in words, for a retry's confirmation: `subject` (what was tried)
 * failed N times or gave up after N attempts, then what Retry does, then the last error.
 */
export function FailedJobExplanation(props: {
  readonly subject: ReactNode;
  readonly job: QueuedJob;
  /** What Retry does, as a sentence. */
  readonly retryDoes: string;
}) {
  const { subject, job, retryDoes } = props;
  const { attempts } = job;
  return (
    <>
      <p>
        {subject}{' '}
        {job.state === 'dead'
          ? `gave up after ${attempts} ${attempts === 1 ? 'attempt' : 'attempts'}`
          : `failed ${attempts === 1 ? 'once' : `${attempts} times`}`}
        . {retryDoes}
      </p>
      {job.lastError !== null && <p className="muted small">Last error: {job.lastError}</p>}
    </>
  );
}
