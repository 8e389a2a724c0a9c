/**
 * The live side of the console: one EventSource on GET /dicom-server/api/events/ for the whole
 * app (events `status`, `transactions`, the hand-off's `series` and `handoff`, and `routing`),
 * shared by the header's status dot, the dashboard, the processing and routing pages. The status event comes when
 * the state changes or the totals move; association rows (opened, released, aborted) do not
 * move the totals, so they trigger a fresh read of the status for the number of active
 * associations. A lost stream is opened again after a pause, once `auth/me` says the session
 * still holds (a 401 there shows the login).
 */

import {
  createContext,
  type ReactNode,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
} from 'react';
import { API_BASE, type ApiClient } from '../api/client.js';
import {
  type HandoffJob,
  type RoutingChange,
  rowOfRecord,
  type SeriesStateChange,
  type ServiceStatus,
  type TransactionRecord,
  type TransactionRow,
} from '../api/types.js';

/** Pause before opening a lost stream again. */
const RECONNECT_MS = 5_000;
/** Association rows within this time lead to one read of the status. */
const STATUS_REFRESH_MS = 300;

const ASSOCIATION_TYPES: ReadonlySet<string> = new Set(['ASSOCIATE', 'RELEASE', 'ABORT']);

export type Connection = 'connecting' | 'open' | 'reconnecting';

type RowsListener = (rows: readonly TransactionRow[]) => void;

/** The listeners of one kind of event: subscribe adds one (its answer removes it), emit calls each. */
class Listeners<T> {
  readonly #listeners = new Set<(value: T) => void>();

  /** Adds `listener`; returns its removal. Bound, and the same for the set's life. */
  readonly subscribe = (listener: (value: T) => void): (() => void) => {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  };

  emit(value: T): void {
    for (const listener of this.#listeners) listener(value);
  }
}

/** A live change of the hand-off: a series' state moved, or a job changed. */
export type HandoffChange =
  | { readonly type: 'series'; readonly series: SeriesStateChange }
  | { readonly type: 'handoff'; readonly job: HandoffJob };

type HandoffListener = (change: HandoffChange) => void;

type RoutingListener = (change: RoutingChange) => void;

interface Live {
  /** The latest status, and when it arrived (for the uptime counter). */
  readonly status: ServiceStatus | undefined;
  readonly statusAt: number;
  readonly connection: Connection;
  /** Takes a status from an answer (start, stop, restart) before its event comes. */
  readonly setStatus: (status: ServiceStatus) => void;
  /** Reads the status now. */
  readonly refreshStatus: () => void;
  /** Calls `listener` with the rows of each `transactions` event; returns the unsubscribe. */
  readonly subscribeRows: (listener: RowsListener) => () => void;
  /** Calls `listener` with each `series` and `handoff` event; returns the unsubscribe. */
  readonly subscribeHandoff: (listener: HandoffListener) => () => void;
  /** Calls `listener` with each `routing` event; returns the unsubscribe. */
  readonly subscribeRouting: (listener: RoutingListener) => () => void;
}

const LiveContext = createContext<Live | undefined>(undefined);

/** Holds the stream while someone is logged in. */
export function LiveProvider({ api, children }: { api: ApiClient; children: ReactNode }) {
  const [state, setState] = useState<{ status: ServiceStatus | undefined; statusAt: number }>({
    status: undefined,
    statusAt: 0,
  });
  const [connection, setConnection] = useState<Connection>('connecting');
  const rowsListeners = useRef(new Listeners<readonly TransactionRow[]>());
  const handoffListeners = useRef(new Listeners<HandoffChange>());
  const routingListeners = useRef(new Listeners<RoutingChange>());
  const refreshTimer = useRef<number | undefined>(undefined);

  const setStatus = useCallback((status: ServiceStatus) => {
    setState({ status, statusAt: Date.now() });
  }, []);

  const refreshStatus = useCallback(() => {
    window.clearTimeout(refreshTimer.current);
    refreshTimer.current = window.setTimeout(() => {
      api.get<ServiceStatus>('status/').then(setStatus, () => undefined);
    }, STATUS_REFRESH_MS);
  }, [api, setStatus]);

  useEffect(() => {
    let source: EventSource | undefined;
    let retryTimer: number | undefined;
    let isClosed = false;

    const connect = () => {
      if (isClosed) return;
      source = new EventSource(`${API_BASE}/events/`);
      source.addEventListener('open', () => setConnection('open'));
      source.addEventListener('status', (event) => {
        setStatus(JSON.parse((event as MessageEvent<string>).data) as ServiceStatus);
      });
      source.addEventListener('transactions', (event) => {
        const records = JSON.parse((event as MessageEvent<string>).data) as TransactionRecord[];
        const rows = records.map(rowOfRecord);
        rowsListeners.current.emit(rows);
        if (rows.some((row) => ASSOCIATION_TYPES.has(row.type))) refreshStatus();
      });
      source.addEventListener('series', (event) => {
        const series = JSON.parse((event as MessageEvent<string>).data) as SeriesStateChange;
        handoffListeners.current.emit({ type: 'series', series });
      });
      source.addEventListener('handoff', (event) => {
        const job = JSON.parse((event as MessageEvent<string>).data) as HandoffJob;
        handoffListeners.current.emit({ type: 'handoff', job });
      });
      source.addEventListener('routing', (event) => {
        const change = JSON.parse((event as MessageEvent<string>).data) as RoutingChange;
        routingListeners.current.emit(change);
      });
      source.addEventListener('error', () => {
        setConnection('reconnecting');
        // The browser retries a dropped stream by itself; a refused one (401, server gone
        // while connecting) stays closed, and is opened again here.
        if (source?.readyState !== EventSource.CLOSED) return;
        source.close();
        window.clearTimeout(retryTimer);
        retryTimer = window.setTimeout(() => {
          api.get('auth/me').then(connect, () => {
            retryTimer = window.setTimeout(connect, RECONNECT_MS);
          });
        }, RECONNECT_MS);
      });
    };
    connect();
    return () => {
      isClosed = true;
      window.clearTimeout(retryTimer);
      window.clearTimeout(refreshTimer.current);
      source?.close();
    };
  }, [api, setStatus, refreshStatus]);

  const value = useMemo<Live>(
    () => ({
      ...state,
      connection,
      setStatus,
      refreshStatus,
      subscribeRows: rowsListeners.current.subscribe,
      subscribeHandoff: handoffListeners.current.subscribe,
      subscribeRouting: routingListeners.current.subscribe,
    }),
    [state, connection, setStatus, refreshStatus],
  );
  return <LiveContext.Provider value={value}>{children}</LiveContext.Provider>;
}

/** The live status and stream. */
export function useLive(): Live {
  const live = useContext(LiveContext);
  if (live === undefined) throw new Error('useLive outside LiveProvider');
  return live;
}

/** Calls the latest `listener` with each value `subscribe` hands out while mounted. */
function useSubscription<T>(
  subscribe: (listener: (value: T) => void) => () => void,
  listener: (value: T) => void,
): void {
  const latest = useRef(listener);
  latest.current = listener;
  useEffect(() => subscribe((value) => latest.current(value)), [subscribe]);
}

/** Calls `listener` with each batch of live transaction rows while mounted. */
export function useLiveRows(listener: RowsListener): void {
  useSubscription(useLive().subscribeRows, listener);
}

/** Calls `listener` with each live change of the hand-off while mounted. */
export function useLiveHandoff(listener: HandoffListener): void {
  useSubscription(useLive().subscribeHandoff, listener);
}

/**
 * Calls `listener` with each live `routing` event (a forward job or the rules changed) while
 * mounted.
 */
export function useLiveRouting(listener: RoutingListener): void {
  useSubscription(useLive().subscribeRouting, listener);
}

/** The time, ticking every `intervalMs` while mounted (for counters). */
export function useNow(intervalMs = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now()), intervalMs);
    return () => window.clearInterval(timer);
  }, [intervalMs]);
  return now;
}
