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
  const listeners = useRef(new Set<RowsListener>());
  const handoffListeners = useRef(new Set<HandoffListener>());
  const routingListeners = useRef(new Set<RoutingListener>());
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
        for (const listener of listeners.current) listener(rows);
        if (rows.some((row) => ASSOCIATION_TYPES.has(row.type))) refreshStatus();
      });
      source.addEventListener('series', (event) => {
        const series = JSON.parse((event as MessageEvent<string>).data) as SeriesStateChange;
        for (const listener of handoffListeners.current) listener({ type: 'series', series });
      });
      source.addEventListener('handoff', (event) => {
        const job = JSON.parse((event as MessageEvent<string>).data) as HandoffJob;
        for (const listener of handoffListeners.current) listener({ type: 'handoff', job });
      });
      source.addEventListener('routing', (event) => {
        const change = JSON.parse((event as MessageEvent<string>).data) as RoutingChange;
        for (const listener of routingListeners.current) listener(change);
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

  const subscribeRows = useCallback((listener: RowsListener) => {
    listeners.current.add(listener);
    return () => {
      listeners.current.delete(listener);
    };
  }, []);

  const subscribeHandoff = useCallback((listener: HandoffListener) => {
    handoffListeners.current.add(listener);
    return () => {
      handoffListeners.current.delete(listener);
    };
  }, []);

  const subscribeRouting = useCallback((listener: RoutingListener) => {
    routingListeners.current.add(listener);
    return () => {
      routingListeners.current.delete(listener);
    };
  }, []);

  const value = useMemo<Live>(
    () => ({
      ...state,
      connection,
      setStatus,
      refreshStatus,
      subscribeRows,
      subscribeHandoff,
      subscribeRouting,
    }),
    [
      state,
      connection,
      setStatus,
      refreshStatus,
      subscribeRows,
      subscribeHandoff,
      subscribeRouting,
    ],
  );
  return <LiveContext.Provider value={value}>{children}</LiveContext.Provider>;
}

/** The live status and stream. */
export function useLive(): Live {
  const live = useContext(LiveContext);
  if (live === undefined) throw new Error('useLive outside LiveProvider');
  return live;
}

/** Calls `listener` with each batch of live transaction rows while mounted. */
export function useLiveRows(listener: RowsListener): void {
  const { subscribeRows } = useLive();
  const latest = useRef(listener);
  latest.current = listener;
  useEffect(() => subscribeRows((rows) => latest.current(rows)), [subscribeRows]);
}

/** Calls `listener` with each live change of the hand-off while mounted. */
export function useLiveHandoff(listener: HandoffListener): void {
  const { subscribeHandoff } = useLive();
  const latest = useRef(listener);
  latest.current = listener;
  useEffect(() => subscribeHandoff((change) => latest.current(change)), [subscribeHandoff]);
}

/** Calls `listener` with each live `routing` event (a forward job or the rules changed) while mounted. */
export function useLiveRouting(listener: RoutingListener): void {
  const { subscribeRouting } = useLive();
  const latest = useRef(listener);
  latest.current = listener;
  useEffect(() => subscribeRouting((change) => latest.current(change)), [subscribeRouting]);
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
