/**
 * The console: restores the session (GET auth/me) or shows the login, then the frame (header
 * with navigation, the service's state, the user) around the page of the current path.
 */

import { useCallback, useEffect, useState } from 'react';
import { type ApiClient, messageOf } from './api/client.js';
import type { Role, Session } from './api/types.js';
import { ServiceStateLabel } from './components/status-dot.js';
import { LiveProvider, useLive } from './live/live-events.js';
import { AeTitlesPage } from './pages/ae-titles.js';
import { AssociationsPage } from './pages/associations.js';
import { ConfigurationPage } from './pages/configuration.js';
import { DashboardPage } from './pages/dashboard.js';
import { LoginPage } from './pages/login.js';
import { ProcessingPage } from './pages/processing.js';
import { RoutingPage } from './pages/routing.js';
import { TransactionsPage } from './pages/transactions.js';
import { CONSOLE_BASE, Link, PAGES, type PageId, pageAt, useLocation } from './router.js';
import { SessionProvider, useSession } from './session.js';

/**
 * A hint, kept in the browser, that this browser has logged in (the session cookie itself is
 * HttpOnly, out of the page's reach). Without it the login shows at once: a first visit does
 * not ask `auth/me` only to be answered 401 (which the browser reports as an error).
 */
const SESSION_HINT = 'dicom-server.hasSession';

function hasSessionHint(): boolean {
  try {
    return window.localStorage.getItem(SESSION_HINT) === '1';
  } catch {
    // Storage switched off: ask the server every time.
    return true;
  }
}

function setSessionHint(isLoggedIn: boolean): void {
  try {
    if (isLoggedIn) window.localStorage.setItem(SESSION_HINT, '1');
    else window.localStorage.removeItem(SESSION_HINT);
  } catch {
    // Storage switched off: nothing to remember.
  }
}

type AuthState =
  | { readonly kind: 'loading' }
  | { readonly kind: 'anonymous'; readonly reason?: string }
  | { readonly kind: 'in'; readonly username: string; readonly role: Role };

export function App({ api }: { readonly api: ApiClient }) {
  const [auth, setAuth] = useState<AuthState>(() =>
    hasSessionHint() ? { kind: 'loading' } : { kind: 'anonymous' },
  );

  const enter = useCallback(
    (session: Session) => {
      api.setCsrfToken(session.csrfToken);
      setSessionHint(true);
      setAuth({ kind: 'in', username: session.user.username, role: session.user.role });
    },
    [api],
  );

  useEffect(() => {
    api.onSessionLost(() => {
      api.setCsrfToken(undefined);
      setSessionHint(false);
      setAuth((current) =>
        current.kind === 'in'
          ? { kind: 'anonymous', reason: 'Your session has ended: please log in again.' }
          : current,
      );
    });
    if (!hasSessionHint()) return () => api.onSessionLost(undefined);
    api.get<Session>('auth/me').then(enter, (failure: unknown) => {
      const status = (failure as { status?: number }).status;
      if (status === 401) setSessionHint(false);
      setAuth(
        status === 401 ? { kind: 'anonymous' } : { kind: 'anonymous', reason: messageOf(failure) },
      );
    });
    return () => api.onSessionLost(undefined);
  }, [api, enter]);

  const logout = useCallback(() => {
    api.post('auth/logout').finally(() => {
      api.setCsrfToken(undefined);
      setSessionHint(false);
      setAuth({ kind: 'anonymous', reason: 'You have logged out.' });
    });
  }, [api]);

  if (auth.kind === 'loading') {
    return (
      <p className="loading-screen" role="status">
        Loading…
      </p>
    );
  }
  if (auth.kind === 'anonymous') {
    return <LoginPage api={api} reason={auth.reason} onLogin={enter} />;
  }
  return (
    <SessionProvider api={api} username={auth.username} role={auth.role} logout={logout}>
      <LiveProvider api={api}>
        <Frame />
      </LiveProvider>
    </SessionProvider>
  );
}

function Frame() {
  const { pathname } = useLocation();
  const page = pageAt(pathname);
  const title = PAGES.find((p) => p.id === page)?.title ?? 'Page not found';
  useEffect(() => {
    document.title = `${title} · dicom-server`;
  }, [title]);
  useRestartNoticeCleared();
  return (
    <div className="frame">
      <Header current={page} />
      <main className="page" id="main">
        <Page id={page} />
      </main>
    </div>
  );
}

/** Clears the restart notice once the service has started after the settings were saved. */
function useRestartNoticeCleared(): void {
  const { pendingRestart, setPendingRestart } = useSession();
  const { status } = useLive();
  useEffect(() => {
    if (pendingRestart === undefined || status?.state !== 'running') return;
    if (status.startedAt !== null && Date.parse(status.startedAt) > pendingRestart.savedAt) {
      setPendingRestart(undefined);
    }
  }, [pendingRestart, status, setPendingRestart]);
}

function Page({ id }: { readonly id: PageId | undefined }) {
  switch (id) {
    case 'dashboard':
      return <DashboardPage />;
    case 'associations':
      return <AssociationsPage />;
    case 'config':
      return <ConfigurationPage />;
    case 'ae-titles':
      return <AeTitlesPage />;
    case 'transactions':
      return <TransactionsPage />;
    case 'processing':
      return <ProcessingPage />;
    case 'routing':
      return <RoutingPage />;
    case undefined:
      return (
        <section className="card">
          <h1>Page not found</h1>
          <p>
            There is no console page at this address.{' '}
            <Link to={CONSOLE_BASE}>Go to the dashboard</Link>.
          </p>
        </section>
      );
    default: {
      const unreachable: never = id;
      throw new Error(`unknown page ${String(unreachable)}`);
    }
  }
}

function Header({ current }: { readonly current: PageId | undefined }) {
  const { username, role, logout } = useSession();
  const { status, connection } = useLive();
  return (
    <header className="topbar">
      <Link to={CONSOLE_BASE} className="brand">
        <span className="brand-mark" aria-hidden="true">
          D
        </span>
        dicom-server
      </Link>
      <nav className="nav" aria-label="Console pages">
        {PAGES.map((page) => (
          <Link
            key={page.id}
            to={page.path}
            className={page.id === current ? 'nav-link nav-link-current' : 'nav-link'}
            aria-current={page.id === current ? 'page' : undefined}
          >
            {page.title}
          </Link>
        ))}
      </nav>
      <div className="topbar-right">
        <span className="topbar-service" title="DICOM service">
          <ServiceStateLabel state={status?.state} />
          {status !== undefined && <span className="mono">{status.aeTitle}</span>}
          {connection !== 'open' && (
            <span className="tag tag-override" title="Live updates are reconnecting">
              offline
            </span>
          )}
        </span>
        <span className="topbar-user">
          {username}
          {role === 'viewer' && (
            <span className="tag tag-changed" title="Viewers see everything and change nothing">
              read-only
            </span>
          )}
        </span>
        <button type="button" className="button button-small button-on-dark" onClick={logout}>
          Log out
        </button>
      </div>
    </header>
  );
}
