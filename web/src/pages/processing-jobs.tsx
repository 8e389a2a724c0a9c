/**
 * The processing page's jobs: processing-queue items and deliveries (folder copy, webhook,
 * command), newest first, filtered by state, kind and series; each with its target, state,
 * attempts, next attempt and last error, opening to show every field. An administrator may
 * retry a failed or dead delivery, a failed queue item, or one a tool claimed and never
 * acknowledged, after a confirmation; viewers see no buttons. The rows are in
 * processing-job-row.tsx.
 */

import { useEffect, useState } from 'react';
import { queryString } from '../api/client.js';
import {
  type HandoffJob,
  type HandoffJobPage,
  JOB_KINDS,
  JOB_STATES,
  type ListedHandoffJob,
} from '../api/types.js';
import { ConfirmDialog } from '../components/dialog.js';
import { useOpenRows } from '../components/expandable-row.js';
import { FilterSelect } from '../components/filter-select.js';
import { JOB_KIND_LABELS, JOB_STATE_MEANINGS } from '../components/handoff-state.js';
import { FailedJobExplanation, type JobColumn, JobTableHead } from '../components/job-table.js';
import { Notice, OutcomeNotice } from '../components/notice.js';
import { ListPager } from '../components/pager.js';
import { formatAgo, formatRange, formatTime } from '../format.js';
import { useLiveHandoff } from '../live/live-events.js';
import { useLocation } from '../router.js';
import { useSession } from '../session.js';
import { useItemActions } from '../use-item-actions.js';
import { useCoalesced, usePagedList } from '../use-paged-list.js';
import { JobRow, targetText } from './processing-job-row.js';
import {
  LIVE_READ_DELAY_MS,
  type ProcessingFilters,
  useReloadOnReconnect,
} from './processing-view.js';

const JOBS_PAGE_SIZE = 50;

/** The table's own columns, between Job and State. */
const JOB_COLUMNS: readonly JobColumn[] = [
  { heading: 'Kind', widthClass: 'col-kind' },
  { heading: 'Target' },
  { heading: 'Series' },
];

/** A Series Instance UID as the API takes it. */
const isUid = (text: string) => /^[0-9]+(\.[0-9]+)*$/.test(text) && text.length <= 64;

export function JobsPanel(props: {
  readonly filters: ProcessingFilters;
  readonly update: (change: Partial<ProcessingFilters>) => void;
}) {
  const { filters, update } = props;
  const { api, isAdmin } = useSession();
  const { hash } = useLocationHash();
  const [seriesText, setSeriesText] = useState(filters.series);
  const openRows = useOpenRows<number>();
  const actions = useItemActions<ListedHandoffJob, number>();

  const series = filters.series.trim();
  const seriesError = series !== '' && !isUid(series) ? 'must be a UID (digits and dots)' : '';
  const list = usePagedList<ListedHandoffJob, HandoffJobPage>(
    `processing/${queryString({
      state: (JOB_STATES as readonly string[]).includes(filters.state) ? filters.state : '',
      kind: (JOB_KINDS as readonly string[]).includes(filters.kind) ? filters.kind : '',
      series: seriesError === '' ? series : '',
    })}`,
    JOBS_PAGE_SIZE,
  );
  const reloadSoon = useCoalesced(list.reload, LIVE_READ_DELAY_MS);
  useReloadOnReconnect(list.reload);
  const merge = (job: HandoffJob) =>
    list.updateItems((item) => (item.id === job.id ? { ...item, ...job } : item));
  useLiveHandoff((change) => {
    if (change.type === 'handoff') {
      merge(change.job);
      reloadSoon();
    } else if (change.series.state === 'complete') {
      // A completion writes its jobs.
      reloadSoon();
    }
  });

  // A series chosen in the series list: its UID in the box, and the list in view.
  useEffect(() => {
    setSeriesText(filters.series);
    if (hash === '#jobs') document.getElementById('jobs')?.scrollIntoView({ block: 'start' });
  }, [filters.series, hash]);

  // Typing in the series box filters after a pause.
  useEffect(() => {
    if (seriesText.trim() === filters.series) return;
    const timer = window.setTimeout(() => update({ series: seriesText.trim() }), 400);
    return () => window.clearTimeout(timer);
  });

  const retry = (job: ListedHandoffJob) =>
    actions.run(job.id, async () => {
      merge(await api.post<HandoffJob>(`processing/${job.id}/retry`));
      reloadSoon();
      return job.kind === 'queue'
        ? `Queue item ${job.id} is back in the queue: the next tool to claim takes it.`
        : `${JOB_KIND_LABELS[job.kind]} ${job.id} is pending again and is tried now.`;
    });

  const { page } = list;
  const retrying = actions.asking;
  const columns = isAdmin ? 10 : 9;
  return (
    <section className="card" id="jobs" aria-labelledby="jobs-title" aria-busy={list.isLoading}>
      <div className="card-head">
        <h2 id="jobs-title">
          {page === undefined
            ? 'Jobs'
            : page.total === 0
              ? 'No jobs'
              : `Jobs ${formatRange(list.firstIndex, page.items.length, page.total)}`}
        </h2>
        <ListPager list={list} />
      </div>
      <form
        className="filters filters-inline"
        aria-label="Job filters"
        onSubmit={(event) => {
          event.preventDefault();
          update({ series: seriesText.trim() });
        }}
      >
        <FilterSelect
          id="job-state"
          label="State"
          value={filters.state}
          allLabel="All states"
          options={JOB_STATES}
          labelOf={(state) => JOB_STATE_MEANINGS[state].label}
          onChange={(state) => update({ state })}
        />
        <FilterSelect
          id="job-kind"
          label="Kind"
          value={filters.kind}
          allLabel="All kinds"
          options={JOB_KINDS}
          labelOf={(kind) => JOB_KIND_LABELS[kind]}
          onChange={(kind) => update({ kind })}
        />
        <div className="filter filter-wide">
          <label htmlFor="job-series">Series instance UID</label>
          <input
            id="job-series"
            className="mono"
            value={seriesText}
            maxLength={64}
            placeholder="every series"
            spellCheck={false}
            aria-invalid={seriesError !== ''}
            aria-describedby={seriesError === '' ? undefined : 'job-series-error'}
            onChange={(event) => setSeriesText(event.target.value)}
          />
          {seriesError !== '' && (
            <span className="field-error" id="job-series-error">
              {seriesError}
            </span>
          )}
        </div>
        <div className="filter filter-actions">
          <button
            type="button"
            className="button button-ghost"
            onClick={() => {
              setSeriesText('');
              update({ state: '', kind: '', series: '' });
            }}
          >
            Clear filters
          </button>
        </div>
      </form>
      <OutcomeNotice outcome={actions.outcome} onClose={() => actions.setOutcome(undefined)} />
      {list.error !== undefined && <Notice kind="error">{list.error}</Notice>}
      {page === undefined && list.error === undefined && <p className="muted">Loading…</p>}
      {page !== undefined && page.items.length === 0 && (
        <p className="empty">
          {filters.state === '' && filters.kind === '' && series === ''
            ? 'No series has been handed off yet.'
            : 'No job matches these filters.'}
        </p>
      )}
      {page !== undefined && page.items.length > 0 && (
        <div className="table-wrap">
          <table className="table table-fixed table-jobs">
            <JobTableHead columns={JOB_COLUMNS} isAdmin={isAdmin} />
            <tbody>
              {page.items.map((job) => (
                <JobRow
                  key={job.id}
                  job={job}
                  filters={filters}
                  columns={columns}
                  isOpen={openRows.isOpen(job.id)}
                  isAdmin={isAdmin}
                  onToggle={() => openRows.toggle(job.id)}
                  onRetry={() => actions.ask(job)}
                  onFilterSeries={() => update({ series: job.seriesInstanceUid })}
                />
              ))}
            </tbody>
          </table>
        </div>
      )}
      {retrying !== undefined && (
        <ConfirmDialog
          title={`Retry ${JOB_KIND_LABELS[retrying.kind].toLowerCase()} ${retrying.id}?`}
          confirmLabel="Retry"
          isBusy={actions.busyKey === retrying.id}
          onConfirm={() => void retry(retrying)}
          onCancel={actions.cancel}
        >
          <RetryExplanation job={retrying} />
        </ConfirmDialog>
      )}
    </section>
  );
}

/** The hash of the address (the router's location has none). */
function useLocationHash(): { hash: string } {
  useLocation();
  return { hash: window.location.hash };
}

/** What a retry does to this job, in words. */
function RetryExplanation({ job }: { readonly job: ListedHandoffJob }) {
  if (job.kind === 'queue' && job.state === 'processing') {
    return (
      <>
        <p>
          Queue item {job.id} was claimed by <span className="mono">{job.claimedBy}</span>
          {job.claimedAt !== null && ` ${formatAgo(job.claimedAt)} (${formatTime(job.claimedAt)})`}{' '}
          and has not been acknowledged. Retry puts it back in the queue for the next claim.
        </p>
        <p className="muted small">
          If that tool is still working on it, its acknowledgement will be refused and the series
          may be processed twice.
        </p>
      </>
    );
  }
  if (job.kind === 'queue') {
    return (
      <p>
        Queue item {job.id} failed downstream. Retry puts it back in the queue: the next tool to
        claim takes it.
      </p>
    );
  }
  return (
    <FailedJobExplanation
      subject={
        <>
          {JOB_KIND_LABELS[job.kind]} <strong>{targetText(job)}</strong>
        </>
      }
      job={job}
      retryDoes="Retry tries it now, its attempts counted from zero."
    />
  );
}
