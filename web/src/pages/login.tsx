/**
 * The login: username and password (POST auth/login); the answer's CSRF token is kept in
 * memory by the API client. A lockout after failed logins says how long to wait.
 */

import { type FormEvent, useState } from 'react';
import { type ApiClient, ApiError, messageOf } from '../api/client.js';
import type { Session } from '../api/types.js';
import { Notice } from '../components/notice.js';

export function LoginPage(props: {
  readonly api: ApiClient;
  readonly reason?: string | undefined;
  readonly onLogin: (session: Session) => void;
}) {
  const { api, reason, onLogin } = props;
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [isBusy, setIsBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setIsBusy(true);
    setError(undefined);
    try {
      onLogin(await api.post<Session>('auth/login', { username, password }));
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 429) {
        const minutes = Math.ceil((failure.retryAfterSeconds ?? 60) / 60);
        setError(`Too many failed logins: try again in ${minutes} min.`);
      } else if (failure instanceof ApiError && failure.status === 401) {
        setError('Wrong username or password.');
      } else {
        setError(messageOf(failure));
      }
      setPassword('');
    } finally {
      setIsBusy(false);
    }
  };

  return (
    <main className="login">
      <form className="login-card" onSubmit={submit} aria-labelledby="login-title">
        <div className="login-brand">
          <span className="brand-mark" aria-hidden="true">
            D
          </span>
          <div>
            <h1 id="login-title">dicom-server</h1>
            <p className="muted">Console of the DICOM receiver</p>
          </div>
        </div>
        {reason !== undefined && error === undefined && <Notice kind="info">{reason}</Notice>}
        {error !== undefined && <Notice kind="error">{error}</Notice>}
        <div className="field">
          <label htmlFor="login-username">Username</label>
          <input
            id="login-username"
            name="username"
            autoComplete="username"
            value={username}
            onChange={(event) => setUsername(event.target.value)}
            required
            // biome-ignore lint/a11y/noAutofocus: the login form is the only thing on the page
            autoFocus
          />
        </div>
        <div className="field">
          <label htmlFor="login-password">Password</label>
          <input
            id="login-password"
            name="password"
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(event) => setPassword(event.target.value)}
            required
          />
        </div>
        <button type="submit" className="button button-primary button-block" disabled={isBusy}>
          {isBusy ? 'Logging in…' : 'Log in'}
        </button>
      </form>
    </main>
  );
}
