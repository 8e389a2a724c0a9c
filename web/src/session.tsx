/**
 * Who is logged in, the API client, and what the session remembers across pages: the settings
 * saved since the last (re)start that wait for one (shown on the configuration page and the
 * dashboard until the service starts again).
 */

import { createContext, type ReactNode, useContext, useMemo, useState } from 'react';
import type { SettingKey } from '../../src/settings/schema.js';
import type { ApiClient } from './api/client.js';
import type { Role } from './api/types.js';

/** Changed settings that take effect with the next (re)start, and when they were saved. */
export interface PendingRestart {
  readonly keys: readonly SettingKey[];
  readonly savedAt: number;
}

interface SessionValue {
  readonly api: ApiClient;
  readonly username: string;
  readonly role: Role;
  /** Administrators change things; viewers see everything read-only. */
  readonly isAdmin: boolean;
  readonly logout: () => void;
  readonly pendingRestart: PendingRestart | undefined;
  readonly setPendingRestart: (pending: PendingRestart | undefined) => void;
}

const SessionContext = createContext<SessionValue | undefined>(undefined);

export function SessionProvider(props: {
  readonly api: ApiClient;
  readonly username: string;
  readonly role: Role;
  readonly logout: () => void;
  readonly children: ReactNode;
}) {
  const { api, username, role, logout, children } = props;
  const [pendingRestart, setPendingRestart] = useState<PendingRestart | undefined>(undefined);
  const value = useMemo<SessionValue>(
    () => ({
      api,
      username,
      role,
      isAdmin: role === 'admin',
      logout,
      pendingRestart,
      setPendingRestart,
    }),
    [api, username, role, logout, pendingRestart],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

/** The session of the logged-in user. */
export function useSession(): SessionValue {
  const session = useContext(SessionContext);
  if (session === undefined) throw new Error('useSession outside SessionProvider');
  return session;
}
