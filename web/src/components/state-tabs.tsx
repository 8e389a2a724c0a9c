/**
 * A list filtered by state as tabs: All and each state, with the number of items in each (read
 * here, one single-row read per state for its total), the states that need attention counted
 * in red. The processing page's series and the routing page's forward queue use them.
 */

import { useEffect, useRef, useState } from 'react';
import { formatCount } from '../format.js';
import { useSession } from '../session.js';
import type { StateMeaning } from './state-badge.js';

/** The number of items in each state, and in all. */
export type StateCounts<S extends string> = Readonly<Record<S | 'all', number>>;

/**
 * The number of items in each of `states` (and in all) of the list whose path, for a state ('' for
 * all), is `pathOf(state)`; and a reload. A newer read wins over an older one still on its way.
 */
export function useStateCounts<S extends string>(
  states: readonly S[],
  pathOf: (state: S | '') => string,
): { counts: StateCounts<S> | undefined; reload: () => void } {
  const { api } = useSession();
  const [counts, setCounts] = useState<StateCounts<S> | undefined>(undefined);
  const [generation, setGeneration] = useState(0);
  const latest = useRef(0);
  const reads = (['all', ...states] as const).map((state) => {
    const path = pathOf(state === 'all' ? '' : state);
    return { state, path: `${path}${path.includes('?') ? '&' : '?'}limit=1` };
  });
  // The paths in one string: the effect runs again when one of them changes.
  const paths = reads.map((read) => read.path).join('\n');
  // biome-ignore lint/correctness/useExhaustiveDependencies: paths stands for reads; generation asks for a reload
  useEffect(() => {
    const ticket = ++latest.current;
    Promise.all(
      reads.map(({ state, path }) =>
        api.get<{ readonly total: number }>(path).then((page) => [state, page.total] as const),
      ),
    ).then(
      (totals) => {
        if (ticket === latest.current) setCounts(Object.fromEntries(totals) as StateCounts<S>);
      },
      // The counts are a help: the list says what went wrong.
      () => undefined,
    );
  }, [api, paths, generation]);
  return { counts, reload: () => setGeneration((n) => n + 1) };
}

/** The tabs: All and each state, the current one pressed, each with its count once read. */
export function StateTabs<S extends string>(props: {
  /** The group's name for screen readers ("Series by state"). */
  readonly label: string;
  readonly states: readonly S[];
  readonly meanings: Readonly<Record<S, StateMeaning>>;
  /** The states whose count, when above zero, is shown as a problem. */
  readonly badStates: readonly S[];
  readonly current: S | '';
  readonly counts: StateCounts<S> | undefined;
  readonly onPick: (state: S | '') => void;
}) {
  const { label, states, meanings, badStates, current, counts, onPick } = props;
  return (
    <fieldset className="segmented" aria-label={label}>
      {(['all', ...states] as const).map((key) => {
        const value = key === 'all' ? '' : key;
        const isCurrent = current === value;
        const count = counts?.[key];
        const isBad = value !== '' && badStates.includes(value) && count !== undefined && count > 0;
        return (
          <button
            key={key}
            type="button"
            className={isCurrent ? 'segment segment-current' : 'segment'}
            aria-pressed={isCurrent}
            onClick={() => onPick(value)}
            title={key === 'all' ? undefined : meanings[key].meaning}
          >
            {key === 'all' ? 'All' : meanings[key].label}
            {count !== undefined && (
              <span className={isBad ? 'segment-count segment-bad' : 'segment-count'}>
                {formatCount(count)}
              </span>
            )}
          </button>
        );
      })}
    </fieldset>
  );
}
