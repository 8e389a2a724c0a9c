/**
 * The console's users, sessions and API tokens. Secrets never reach this layer: passwords come
 * as argon2id hashes, session cookies and tokens as their SHA-256.
 *
 * Layer: db (repositories hold all SQL).
 */

import type { Kysely } from 'kysely';
import type { Database } from '../schema.js';
import type { TransactionRunner } from '../transactions.js';

/** What a user may do: everything, or read only. */
export const ROLES = ['admin', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

/** A user as the application sees it (no hash). */
export interface User {
  readonly id: number;
  readonly username: string;
  readonly role: Role;
  readonly createdAt: string;
  readonly lastLoginAt: string | null;
}

/** A user with the password hash, for checking a login. */
export interface UserWithHash extends User {
  readonly passwordHash: string;
}

/** A session found by its cookie. */
export interface Session {
  readonly user: User;
  readonly csrfToken: string;
  readonly expiresAt: string;
}

/** An API token as listed (never its secret). */
export interface ApiToken {
  readonly id: number;
  readonly name: string;
  readonly username: string;
  readonly createdAt: string;
  readonly lastUsedAt: string | null;
}

function toUser(row: {
  id: number;
  username: string;
  role: string;
  created_at: string;
  last_login_at: string | null;
}): User {
  return {
    id: row.id,
    username: row.username,
    role: row.role as Role,
    createdAt: row.created_at,
    lastLoginAt: row.last_login_at,
  };
}

const USER_COLUMNS = ['users.id', 'username', 'role', 'users.created_at', 'last_login_at'] as const;

/** Reads and writes users, sessions and API tokens. */
export class UserRepository {
  readonly #db: Kysely<Database>;
  readonly #runner: TransactionRunner;

  constructor(database: { readonly db: Kysely<Database>; readonly runner: TransactionRunner }) {
    this.#db = database.db;
    this.#runner = database.runner;
  }

  async count(): Promise<number> {
    const [row] = await this.#runner.runQuery(
      this.#db
        .selectFrom('users')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .compile(),
    );
    return Number(row?.n ?? 0);
  }

  async list(): Promise<User[]> {
    const rows = await this.#runner.runQuery(
      this.#db.selectFrom('users').select(USER_COLUMNS).orderBy('username').compile(),
    );
    return rows.map(toUser);
  }

  /** The user with its password hash, for a login. */
  async findForLogin(username: string): Promise<UserWithHash | undefined> {
    const [row] = await this.#runner.runQuery(
      this.#db
        .selectFrom('users')
        .select([...USER_COLUMNS, 'password_hash'])
        .where('username', '=', username)
        .compile(),
    );
    return row === undefined ? undefined : { ...toUser(row), passwordHash: row.password_hash };
  }

  /** Adds a user; undefined when the name is taken. */
  async add(username: string, passwordHash: string, role: Role): Promise<User | undefined> {
    const existing = await this.findForLogin(username);
    if (existing !== undefined) return undefined;
    const [row] = await this.#runner.runQuery(
      this.#db
        .insertInto('users')
        .values({
          username,
          password_hash: passwordHash,
          role,
          created_at: new Date().toISOString(),
        })
        .returning('id')
        .compile(),
    );
    return row === undefined ? undefined : this.findById(row.id);
  }

  async findById(id: number): Promise<User | undefined> {
    const [row] = await this.#runner.runQuery(
      this.#db.selectFrom('users').select(USER_COLUMNS).where('users.id', '=', id).compile(),
    );
    return row === undefined ? undefined : toUser(row);
  }

  /** Changes a user's password hash and ends its sessions; false when there is no such user. */
  async setPassword(username: string, passwordHash: string): Promise<boolean> {
    const user = await this.findForLogin(username);
    if (user === undefined) return false;
    await this.#runner.runQuery(
      this.#db
        .updateTable('users')
        .set({ password_hash: passwordHash })
        .where('id', '=', user.id)
        .compile(),
    );
    await this.#runner.runQuery(
      this.#db.deleteFrom('sessions').where('user_fk', '=', user.id).compile(),
    );
    return true;
  }

  async setRole(username: string, role: Role): Promise<boolean> {
    const rows = await this.#runner.runQuery(
      this.#db
        .updateTable('users')
        .set({ role })
        .where('username', '=', username)
        .returning('id')
        .compile(),
    );
    return rows.length > 0;
  }

  /** Removes a user with its sessions and tokens; false when there is no such user. */
  async remove(username: string): Promise<boolean> {
    const user = await this.findForLogin(username);
    if (user === undefined) return false;
    const db = this.#db;
    await this.#runner.runTransaction(function* () {
      yield db.deleteFrom('sessions').where('user_fk', '=', user.id).compile();
      yield db.deleteFrom('api_tokens').where('user_fk', '=', user.id).compile();
      yield db.deleteFrom('users').where('id', '=', user.id).compile();
    });
    return true;
  }

  async recordLogin(userId: number): Promise<void> {
    await this.#runner.runQuery(
      this.#db
        .updateTable('users')
        .set({ last_login_at: new Date().toISOString() })
        .where('id', '=', userId)
        .compile(),
    );
  }

  // ---- sessions --------------------------------------------------------------------------------

  async createSession(
    tokenHash: string,
    userId: number,
    csrfToken: string,
    expiresAt: string,
  ): Promise<void> {
    await this.#runner.runQuery(
      this.#db
        .insertInto('sessions')
        .values({
          token_hash: tokenHash,
          user_fk: userId,
          csrf_token: csrfToken,
          created_at: new Date().toISOString(),
          expires_at: expiresAt,
        })
        .compile(),
    );
  }

  /** The live session with this cookie hash, with its user. */
  async findSession(tokenHash: string): Promise<Session | undefined> {
    const [row] = await this.#runner.runQuery(
      this.#db
        .selectFrom('sessions')
        .innerJoin('users', 'users.id', 'sessions.user_fk')
        .select([...USER_COLUMNS, 'csrf_token', 'expires_at'])
        .where('token_hash', '=', tokenHash)
        .where('expires_at', '>', new Date().toISOString())
        .compile(),
    );
    if (row === undefined) return undefined;
    return { user: toUser(row), csrfToken: row.csrf_token, expiresAt: row.expires_at };
  }

  /** Moves a session's expiry (sliding sessions). */
  async extendSession(tokenHash: string, expiresAt: string): Promise<void> {
    await this.#runner.runQuery(
      this.#db
        .updateTable('sessions')
        .set({ expires_at: expiresAt })
        .where('token_hash', '=', tokenHash)
        .compile(),
    );
  }

  async deleteSession(tokenHash: string): Promise<void> {
    await this.#runner.runQuery(
      this.#db.deleteFrom('sessions').where('token_hash', '=', tokenHash).compile(),
    );
  }

  async deleteExpiredSessions(): Promise<void> {
    await this.#runner.runQuery(
      this.#db.deleteFrom('sessions').where('expires_at', '<=', new Date().toISOString()).compile(),
    );
  }

  // ---- API tokens ------------------------------------------------------------------------------

  async createToken(userId: number, name: string, tokenHash: string): Promise<ApiToken> {
    const [row] = await this.#runner.runQuery(
      this.#db
        .insertInto('api_tokens')
        .values({
          user_fk: userId,
          name,
          token_hash: tokenHash,
          created_at: new Date().toISOString(),
        })
        .returning('id')
        .compile(),
    );
    const tokens = await this.listTokens();
    return tokens.find((token) => token.id === row?.id)!;
  }

  /** The user a token belongs to (and marks the token used). */
  async findTokenUser(tokenHash: string): Promise<User | undefined> {
    const [row] = await this.#runner.runQuery(
      this.#db
        .selectFrom('api_tokens')
        .innerJoin('users', 'users.id', 'api_tokens.user_fk')
        .select([...USER_COLUMNS, 'api_tokens.id as token_id'])
        .where('token_hash', '=', tokenHash)
        .compile(),
    );
    if (row === undefined) return undefined;
    await this.#runner.runQuery(
      this.#db
        .updateTable('api_tokens')
        .set({ last_used_at: new Date().toISOString() })
        .where('id', '=', row.token_id)
        .compile(),
    );
    return toUser(row);
  }

  async listTokens(): Promise<ApiToken[]> {
    const rows = await this.#runner.runQuery(
      this.#db
        .selectFrom('api_tokens')
        .innerJoin('users', 'users.id', 'api_tokens.user_fk')
        .select([
          'api_tokens.id',
          'name',
          'username',
          'api_tokens.created_at',
          'api_tokens.last_used_at',
        ])
        .orderBy('api_tokens.id')
        .compile(),
    );
    return rows.map((row) => ({
      id: row.id,
      name: row.name,
      username: row.username,
      createdAt: row.created_at,
      lastUsedAt: row.last_used_at,
    }));
  }

  async revokeToken(id: number): Promise<boolean> {
    const rows = await this.#runner.runQuery(
      this.#db.deleteFrom('api_tokens').where('id', '=', id).returning('id').compile(),
    );
    return rows.length > 0;
  }
}
