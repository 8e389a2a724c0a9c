/**
 * Who is calling the API: a session cookie (set by the login, HttpOnly, SameSite=Strict) or an
 * API token (`Authorization: Bearer ...`). Passwords are hashed with argon2id; session cookies
 * and tokens are random 256-bit secrets stored only as their SHA-256. Repeated failed logins
 * lock the account name (from that address) and the address out for a while.
 *
 * CSRF: a request that changes something and is authenticated by the cookie must carry the
 * session's CSRF token in `X-CSRF-Token` (the synchronizer-token pattern); the token comes
 * with the login and from `GET auth/me`. Bearer requests carry no ambient credential and need
 * none.
 *
 * Layer: web.
 */

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Role, User, UserRepository } from '../db/repositories/user-repository.js';

/** Cookie holding the session secret. */
export const SESSION_COOKIE = 'dicom_server_session';
/** Header carrying the CSRF token. */
export const CSRF_HEADER = 'x-csrf-token';
/** A session lasts this long after its last use. */
export const SESSION_MS = 12 * 60 * 60 * 1000;

/** Failed logins within the window before a lockout. */
const MAX_FAILURES = 5;
/** Failed logins from one address, whatever the names, before it is locked out. */
const MAX_ADDRESS_FAILURES = 20;
const FAILURE_WINDOW_MS = 15 * 60 * 1000;
const LOCKOUT_MS = 15 * 60 * 1000;

/** A secret and the hash it is stored as. */
function newSecret(): { secret: string; hash: string } {
  const secret = randomBytes(32).toString('base64url');
  return { secret, hash: secretHash(secret) };
}

/** The stored form of a session cookie or API token. */
export function secretHash(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/**
 * The argon2 binding, loaded at the first login or password change: some 12 MB of memory a
 * server nobody logs into never needs.
 */
function argon2(): Promise<typeof import('@node-rs/argon2')> {
  return import('@node-rs/argon2');
}

/** Hashes a password with argon2id (the library's defaults: 19 MiB, 2 passes). */
export async function hashPassword(password: string): Promise<string> {
  return (await argon2()).hash(password);
}

/** Whether `password` matches an argon2 hash (false for a malformed hash). */
async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  return (await argon2()).verify(passwordHash, password).catch(() => false);
}

/** Whether two strings are equal, in time independent of where they differ. */
export function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** The caller of a request, once authenticated. */
export interface Caller {
  readonly user: User;
  /** How: a session (with its CSRF token and cookie hash) or an API token. */
  readonly via:
    | { readonly kind: 'session'; readonly csrfToken: string; readonly tokenHash: string }
    | { readonly kind: 'token' };
}

/** The outcome of a login. */
export type LoginOutcome =
  | {
      readonly kind: 'ok';
      readonly user: User;
      readonly cookie: string;
      readonly csrfToken: string;
    }
  | { readonly kind: 'invalid' }
  | { readonly kind: 'locked'; readonly retryAfterSeconds: number };

interface Failures {
  count: number;
  firstAt: number;
  lockedUntil: number;
}

/** Logins, sessions and tokens. */
export class AuthService {
  readonly #users: UserRepository;
  readonly #failures = new Map<string, Failures>();
  /** A hash to verify against when the user does not exist, so both cases take as long. */
  #decoy: Promise<string> | undefined;

  constructor(users: UserRepository) {
    this.#users = users;
  }

  /** Checks a login; on success opens a session. */
  async login(username: string, password: string, remoteAddress: string): Promise<LoginOutcome> {
    const keys = [`user:${username.toLowerCase()}@${remoteAddress}`, `address:${remoteAddress}`];
    const now = Date.now();
    const lockedUntil = Math.max(...keys.map((key) => this.#failures.get(key)?.lockedUntil ?? 0));
    if (lockedUntil > now) {
      return { kind: 'locked', retryAfterSeconds: Math.ceil((lockedUntil - now) / 1000) };
    }
    const user = await this.#users.findForLogin(username);
    this.#decoy ??= hashPassword(randomBytes(16).toString('hex'));
    const isValid = await verifyPassword(user?.passwordHash ?? (await this.#decoy), password);
    if (user === undefined || !isValid) {
      this.#fail(keys[0]!, MAX_FAILURES, now);
      this.#fail(keys[1]!, MAX_ADDRESS_FAILURES, now);
      return { kind: 'invalid' };
    }
    // Only the name's count: the address's guards against cycling names, and one account of
    // an attacker's own must not reset it.
    this.#failures.delete(keys[0]!);
    const session = newSecret();
    const csrfToken = randomBytes(24).toString('base64url');
    await this.#users.createSession(
      session.hash,
      user.id,
      csrfToken,
      new Date(now + SESSION_MS).toISOString(),
    );
    await this.#users.recordLogin(user.id);
    await this.#users.deleteExpiredSessions();
    const { passwordHash: _, ...plain } = user;
    return { kind: 'ok', user: plain, cookie: session.secret, csrfToken };
  }

  /** Ends a session. */
  async logout(tokenHash: string): Promise<void> {
    await this.#users.deleteSession(tokenHash);
  }

  /** The caller of a request carrying this cookie value or bearer token, if valid. */
  async authenticate(
    cookie: string | undefined,
    bearer: string | undefined,
  ): Promise<Caller | undefined> {
    if (bearer !== undefined && bearer !== '') {
      const user = await this.#users.findTokenUser(secretHash(bearer));
      return user === undefined ? undefined : { user, via: { kind: 'token' } };
    }
    if (cookie === undefined || cookie === '') return undefined;
    const tokenHash = secretHash(cookie);
    const session = await this.#users.findSession(tokenHash);
    if (session === undefined) return undefined;
    // Sliding expiry, moved at most once a minute.
    const expiresAt = Date.now() + SESSION_MS;
    if (expiresAt - Date.parse(session.expiresAt) > 60_000) {
      await this.#users.extendSession(tokenHash, new Date(expiresAt).toISOString());
    }
    return {
      user: session.user,
      via: { kind: 'session', csrfToken: session.csrfToken, tokenHash },
    };
  }

  /** Creates an API token for a user; the secret is returned once, here. */
  async createToken(
    userId: number,
    name: string,
  ): Promise<{ token: string; id: number; name: string }> {
    const secret = newSecret();
    const created = await this.#users.createToken(userId, name, secret.hash);
    return { token: secret.secret, id: created.id, name: created.name };
  }

  /**
   * Makes sure an administrator exists: on a first start with no user, `admin` with the given
   * password, or a random one that is returned to be shown once.
   */
  async ensureFirstAdmin(
    password: string | undefined,
  ): Promise<{ username: string; generatedPassword?: string } | undefined> {
    if ((await this.#users.count()) > 0) return undefined;
    const chosen = password !== undefined && password !== '' ? password : undefined;
    const actual = chosen ?? randomBytes(12).toString('base64url');
    await this.#users.add('admin', await hashPassword(actual), 'admin');
    return chosen === undefined
      ? { username: 'admin', generatedPassword: actual }
      : { username: 'admin' };
  }

  #fail(key: string, limit: number, now: number): void {
    const entry = this.#failures.get(key);
    if (entry === undefined || now - entry.firstAt > FAILURE_WINDOW_MS) {
      this.#failures.set(key, { count: 1, firstAt: now, lockedUntil: 0 });
    } else {
      entry.count += 1;
      if (entry.count >= limit) entry.lockedUntil = now + LOCKOUT_MS;
    }
    // Bounded: an attacker cycling names must not grow this without end.
    if (this.#failures.size > 10_000) {
      for (const [k, v] of this.#failures) {
        if (v.lockedUntil < now && now - v.firstAt > FAILURE_WINDOW_MS) this.#failures.delete(k);
      }
    }
  }
}

/** Whether a role may make changes. */
export function mayChange(role: Role): boolean {
  return role === 'admin';
}
