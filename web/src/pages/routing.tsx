/**
 * Forwarding: the rules that send received instances on to other AEs over C-STORE (in the
 * order they are matched, each with its conditions in words and its destinations), which an
 * administrator adds, edits, switches on and off and deletes (viewers see them read-only); the
 * destinations' status (routing-destinations.tsx) and the forward queue with Retry
 * (routing-queue.tsx). Everything moves live with the `routing` events.
 */

import { useMemo, useState } from 'react';
import type {
  AllowedAe,
  ForwardDestination,
  ForwardDestinationList,
  RoutingRule,
  RoutingRuleList,
} from '../api/types.js';
import { ActionsHeading } from '../components/actions-heading.js';
import { ConfirmDialog } from '../components/dialog.js';
import { setupProblemOf } from '../components/forward-state.js';
import { Notice, OutcomeNotice } from '../components/notice.js';
import { RuleConditions } from '../components/rule-conditions.js';
import { SwitchLabel } from '../components/status-dot.js';
import { formatTime } from '../format.js';
import { useLiveRouting } from '../live/live-events.js';
import { Link, navigate, pathOf, useLocation } from '../router.js';
import { useSession } from '../session.js';
import { useApi } from '../use-api.js';
import { type ItemActions, useItemActions } from '../use-item-actions.js';
import { useCoalesced } from '../use-paged-list.js';
import { LIVE_READ_DELAY_MS, useReloadOnReconnect } from './processing-view.js';
import { DestinationsPanel } from './routing-destinations.js';
import { QueuePanel } from './routing-queue.js';
import { RuleForm } from './routing-rule-form.js';
import { type QueueFilters, queueFiltersOf, routingPath } from './routing-view.js';

type Editing = { readonly kind: 'add' } | { readonly kind: 'edit'; readonly rule: RoutingRule };

export function RoutingPage() {
  const { isAdmin } = useSession();
  const { search } = useLocation();
  const filters = useMemo(() => queueFiltersOf(search), [search]);
  const rules = useApi<RoutingRuleList>('routing/rules');
  const destinations = useApi<ForwardDestinationList>('routing/destinations');
  const [editing, setEditing] = useState<Editing | undefined>(undefined);
  // The rules' actions; their outcome, and the form's, at the top of the page.
  const ruleActions = useItemActions<RoutingRule, number>();

  const reloadRules = useCoalesced(() => {
    rules.reload();
    destinations.reload();
  }, LIVE_READ_DELAY_MS);
  const reloadDestinations = useCoalesced(destinations.reload, LIVE_READ_DELAY_MS);
  useReloadOnReconnect(() => {
    rules.reload();
    destinations.reload();
  });
  useLiveRouting((change) => {
    if (change.type === 'rules') reloadRules();
    else reloadDestinations();
  });

  const update = (change: Partial<QueueFilters>) =>
    navigate(routingPath({ ...filters, ...change }), { isReplace: true });
  const showQueueOf = (destination: string) => {
    update({ destination, state: '' });
    document.getElementById('queue')?.scrollIntoView({ block: 'start' });
  };

  return (
    <>
      <div className="page-head">
        <h1>Routing</h1>
        {isAdmin && (
          <button
            type="button"
            className="button button-primary"
            onClick={() => setEditing({ kind: 'add' })}
            disabled={rules.data === undefined}
          >
            Add rule
          </button>
        )}
      </div>
      <p className="lede">
        Each instance received and indexed is checked against the enabled rules, in order; every
        rule whose conditions all hold queues it for its destinations, which are sent to over
        C-STORE with their host and port from the <Link to={pathOf('ae-titles')}>AE titles</Link>.
        Failed sends are tried again with growing pauses, and given up (dead) after their last
        attempt.
      </p>
      <OutcomeNotice
        outcome={ruleActions.outcome}
        onClose={() => ruleActions.setOutcome(undefined)}
      />
      <RulesPanel
        rules={rules.data}
        error={rules.error}
        destinations={destinations.data?.items}
        actions={ruleActions}
        onEdit={(rule) => setEditing({ kind: 'edit', rule })}
        onChanged={() => {
          rules.reload();
          destinations.reload();
        }}
      />
      <DestinationsPanel
        destinations={destinations.data?.items}
        error={destinations.error}
        onShowQueue={showQueueOf}
      />
      <QueuePanel
        filters={filters}
        update={update}
        destinations={destinations.data?.items.map((d) => d.aeTitle) ?? []}
      />
      {editing !== undefined && rules.data !== undefined && (
        <RuleFormWithAeTitles
          editing={editing.kind === 'edit' ? editing.rule : undefined}
          attributes={rules.data.attributes}
          onCancel={() => setEditing(undefined)}
          onDone={(saved) => {
            ruleActions.setOutcome({
              kind: 'success',
              text:
                editing.kind === 'add'
                  ? `Rule ${saved.name} was added.`
                  : `Rule ${saved.name} was saved.`,
            });
            setEditing(undefined);
            rules.reload();
            destinations.reload();
          }}
        />
      )}
    </>
  );
}

/** The form, with the AE titles to pick destinations from (read when it opens). */
function RuleFormWithAeTitles(props: {
  readonly editing: RoutingRule | undefined;
  readonly attributes: readonly string[];
  readonly onDone: (saved: RoutingRule) => void;
  readonly onCancel: () => void;
}) {
  const aeTitles = useApi<AllowedAe[]>('ae-titles/');
  return <RuleForm {...props} aeTitles={aeTitles.data ?? []} />;
}

/** The rule as the API takes it back (for a change of one field). */
function inputOf(rule: RoutingRule) {
  const { name, description, isEnabled, conditions, destinations } = rule;
  return { name, description, isEnabled, conditions, destinations };
}

function RulesPanel(props: {
  readonly rules: RoutingRuleList | undefined;
  readonly error: string | undefined;
  readonly destinations: readonly ForwardDestination[] | undefined;
  /** Enable, disable and delete (a deletion confirmed first). */
  readonly actions: ItemActions<RoutingRule, number>;
  readonly onEdit: (rule: RoutingRule) => void;
  /** After a rule was changed or deleted. */
  readonly onChanged: () => void;
}) {
  const { rules, error, destinations, actions, onEdit, onChanged } = props;
  const { api, isAdmin } = useSession();
  const byTitle = new Map((destinations ?? []).map((d) => [d.aeTitle, d]));
  const busyId = actions.busyKey;
  const deleting = actions.asking;

  const setEnabled = (rule: RoutingRule, isEnabled: boolean) =>
    actions.run(rule.id, async () => {
      await api.put(`routing/rules/${rule.id}`, { ...inputOf(rule), isEnabled });
      onChanged();
      return `Rule ${rule.name} is now ${isEnabled ? 'enabled' : 'disabled'}.`;
    });
  const remove = (rule: RoutingRule) =>
    actions.run(rule.id, async () => {
      await api.delete(`routing/rules/${rule.id}`);
      onChanged();
      return `Rule ${rule.name} was deleted.`;
    });

  const items = rules?.items;
  return (
    <section className="card" aria-labelledby="rules-title">
      <div className="card-head">
        <h2 id="rules-title">Rules</h2>
        {items !== undefined && items.length > 0 && (
          <span className="muted small">
            {items.length} {items.length === 1 ? 'rule' : 'rules'},{' '}
            {items.filter((rule) => rule.isEnabled).length} enabled · matched in this order
          </span>
        )}
      </div>
      {error !== undefined && <Notice kind="error">{error}</Notice>}
      {items === undefined && error === undefined && <p className="muted">Loading…</p>}
      {items !== undefined && items.length === 0 && (
        <p className="empty">
          No forwarding rules yet: received instances stay here.
          {isAdmin && ' Add a rule to send them on to other AEs.'}
        </p>
      )}
      {items !== undefined && items.length > 0 && (
        <div className="table-wrap">
          <table className="table table-stack table-rules">
            <thead>
              <tr>
                <th scope="col" className="num">
                  #
                </th>
                <th scope="col">Rule</th>
                <th scope="col">State</th>
                <th scope="col">Conditions</th>
                <th scope="col">Destinations</th>
                {isAdmin && <ActionsHeading />}
              </tr>
            </thead>
            <tbody>
              {items.map((rule, index) => (
                <tr key={rule.id} className={rule.isEnabled ? undefined : 'row-inactive'}>
                  <td className="num" data-label="Order">
                    {index + 1}
                  </td>
                  <td data-label="Rule" title={`Changed ${formatTime(rule.updatedAt)}`}>
                    <div>
                      <span className="strong">{rule.name}</span>
                      {rule.description !== '' && (
                        <div className="muted small">{rule.description}</div>
                      )}
                    </div>
                  </td>
                  <td className="nowrap" data-label="State">
                    <SwitchLabel isOn={rule.isEnabled} on="Enabled" off="Disabled" />
                  </td>
                  <td data-label="Conditions">
                    <RuleConditions conditions={rule.conditions} />
                  </td>
                  <td data-label="Destinations">
                    <RuleDestinations titles={rule.destinations} byTitle={byTitle} />
                  </td>
                  {isAdmin && (
                    <td className="actions-col">
                      <div className="button-row button-row-tight">
                        <button
                          type="button"
                          className="button button-small"
                          onClick={() => onEdit(rule)}
                        >
                          Edit
                        </button>
                        <button
                          type="button"
                          className="button button-small"
                          disabled={busyId === rule.id}
                          onClick={() => void setEnabled(rule, !rule.isEnabled)}
                        >
                          {rule.isEnabled ? 'Disable' : 'Enable'}
                        </button>
                        <button
                          type="button"
                          className="button button-small button-danger-ghost"
                          disabled={busyId === rule.id}
                          onClick={() => actions.ask(rule)}
                        >
                          Delete
                        </button>
                      </div>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {deleting !== undefined && (
        <ConfirmDialog
          title={`Delete rule ${deleting.name}?`}
          confirmLabel="Delete"
          isDanger
          isBusy={busyId === deleting.id}
          onConfirm={() => void remove(deleting)}
          onCancel={actions.cancel}
        >
          <p>
            Instances received from now on are no longer forwarded by{' '}
            <strong>{deleting.name}</strong>. Jobs it has queued stay in the queue and are still
            sent.
          </p>
          <p className="muted small">To keep it for later, disable it instead.</p>
        </ConfirmDialog>
      )}
    </section>
  );
}

/** A rule's destination AE titles, each with its host and port or what is missing. */
function RuleDestinations(props: {
  readonly titles: readonly string[];
  readonly byTitle: ReadonlyMap<string, ForwardDestination>;
}) {
  const { titles, byTitle } = props;
  return (
    <ul className="rule-destinations">
      {titles.map((title) => {
        const destination = byTitle.get(title);
        const problem = destination === undefined ? undefined : setupProblemOf(destination);
        const ae = destination?.ae;
        return (
          <li key={title}>
            <span className="mono strong">{title}</span>{' '}
            {problem !== undefined ? (
              <span className="small text-warn">{problem}</span>
            ) : (
              ae !== undefined &&
              ae !== null && (
                <span className="small muted mono">
                  {ae.host}:{ae.port}
                </span>
              )
            )}
          </li>
        );
      })}
    </ul>
  );
}
