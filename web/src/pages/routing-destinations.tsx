/**
 * The routing page's destinations: each AE title a rule names or a job is queued for, with its
 * host and port (or why the forwarder cannot send to it), whether it is reachable or failing
 * (its last attempt), its queued, failed and dead jobs, its last success and last failure with
 * the error; a destination's name shows its jobs in the queue below.
 */

import type { ForwardDestination } from '../api/types.js';
import { DestinationHealthLabel, healthOf, setupProblemOf } from '../components/forward-state.js';
import { Notice } from '../components/notice.js';
import { formatAgo, formatCount, formatShortTime, formatTime } from '../format.js';
import { useNow } from '../live/live-events.js';

export function DestinationsPanel(props: {
  readonly destinations: readonly ForwardDestination[] | undefined;
  readonly error: string | undefined;
  readonly onShowQueue: (destination: string) => void;
}) {
  const { destinations, error, onShowQueue } = props;
  // "5 min ago" moves on while the page is open.
  useNow(30_000);
  const failing = destinations?.filter((d) => healthOf(d) === 'failing').length ?? 0;
  return (
    <section className="card" aria-labelledby="destinations-title">
      <div className="card-head">
        <h2 id="destinations-title">Destinations</h2>
        {destinations !== undefined && destinations.length > 0 && (
          <span className={failing > 0 ? 'small text-bad' : 'muted small'}>
            {destinations.length} {destinations.length === 1 ? 'destination' : 'destinations'}
            {failing > 0 && `, ${failing} failing`}
          </span>
        )}
      </div>
      {error !== undefined && <Notice kind="error">{error}</Notice>}
      {destinations === undefined && error === undefined && <p className="muted">Loading…</p>}
      {destinations !== undefined && destinations.length === 0 && (
        <p className="empty">No rule names a destination yet.</p>
      )}
      {destinations !== undefined && destinations.length > 0 && (
        <div className="table-wrap">
          <table className="table table-stack table-destinations">
            <thead>
              <tr>
                <th scope="col">Destination AE</th>
                <th scope="col">State</th>
                <th scope="col" className="num">
                  Queued
                </th>
                <th scope="col" className="num">
                  Failed
                </th>
                <th scope="col" className="num">
                  Dead
                </th>
                <th scope="col">Last success</th>
                <th scope="col">Last failure</th>
                <th scope="col">Last error</th>
              </tr>
            </thead>
            <tbody>
              {destinations.map((destination) => (
                <DestinationRow
                  key={destination.aeTitle}
                  destination={destination}
                  onShowQueue={() => onShowQueue(destination.aeTitle)}
                />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function When({ at }: { readonly at: string | null }) {
  if (at === null) return <span className="muted">never</span>;
  return <span title={formatTime(at)}>{formatAgo(at)}</span>;
}

function DestinationRow(props: {
  readonly destination: ForwardDestination;
  readonly onShowQueue: () => void;
}) {
  const { destination, onShowQueue } = props;
  const health = healthOf(destination);
  const problem = setupProblemOf(destination);
  const { ae } = destination;
  return (
    <tr className={health === 'failing' ? 'row-failure' : undefined}>
      <td data-label="Destination">
        <div>
          <button
            type="button"
            className="link-button link-button-flush mono strong"
            title={`Show the jobs for ${destination.aeTitle}`}
            onClick={onShowQueue}
          >
            {destination.aeTitle}
          </button>
          <div className="small">
            {problem === undefined && ae !== null ? (
              <span className="muted mono">
                {ae.host}:{ae.port}
              </span>
            ) : (
              <span className="text-warn">{problem}</span>
            )}
          </div>
          {!destination.isInRules && <div className="small muted">no longer named by a rule</div>}
        </div>
      </td>
      <td className="nowrap" data-label="State">
        <DestinationHealthLabel health={health} />
      </td>
      <td className="num" data-label="Queued">
        {formatCount(destination.queued)}
      </td>
      <td className={destination.failed > 0 ? 'num text-bad strong' : 'num'} data-label="Failed">
        {formatCount(destination.failed)}
      </td>
      <td className={destination.dead > 0 ? 'num text-bad strong' : 'num'} data-label="Dead">
        {formatCount(destination.dead)}
      </td>
      <td className="nowrap" data-label="Last success">
        <When at={destination.lastSuccessAt} />
      </td>
      <td className="nowrap" data-label="Last failure">
        <When at={destination.lastErrorAt} />
        {destination.failed > 0 && destination.nextAttemptAt !== null && (
          <div className="small muted" title={formatTime(destination.nextAttemptAt)}>
            next try {formatShortTime(destination.nextAttemptAt)}
          </div>
        )}
      </td>
      <td
        className={health === 'failing' ? 'ellipsis text-bad' : 'ellipsis muted'}
        data-label="Last error"
        title={destination.lastError ?? undefined}
      >
        {destination.lastError ?? ''}
      </td>
    </tr>
  );
}
