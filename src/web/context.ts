/**
 * What the routes work with: the repositories, the service controller, the live settings, the
 * authentication service and the server's events; and the helpers every route shares (the
 * caller, the audit trail, error answers).
 *
 * Layer: web.
 */

import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { OpenDatabase } from '../db/dialect.js';
import { AuditRepository } from '../db/repositories/audit-repository.js';
import { IndexRepository } from '../db/repositories/index-repository.js';
import type { SettingsRepository } from '../db/repositories/settings-repository.js';
import { TransactionLogRepository } from '../db/repositories/transaction-log-repository.js';
import { UserRepository } from '../db/repositories/user-repository.js';
import type { ServerEvents } from '../server/events.js';
import type { LiveConfig } from '../server/live-config.js';
import type { ServiceController } from '../server/service-controller.js';
import { AuthService, type Caller } from './auth.js';

/** The application's parts, as the routes see them. */
export interface WebContext {
  readonly database: OpenDatabase;
  readonly controller: ServiceController;
  readonly config: LiveConfig;
  readonly auth: AuthService;
  readonly users: UserRepository;
  readonly settings: SettingsRepository;
  readonly transactions: TransactionLogRepository;
  readonly audit: AuditRepository;
  readonly index: IndexRepository;
  readonly events: ServerEvents;
  readonly logger: Logger;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller (set by the auth hook on every route that is not public). */
    caller?: Caller;
  }
  interface FastifyContextConfig {
    /** Reachable without a login (health check, login). */
    isPublic?: boolean;
    /** A change any logged-in user may make (their own logout, token). */
    isAnyRole?: boolean;
  }
}

/**
 * The context of a running server: the repositories over `database`, and the authentication
 * service over its users.
 */
export function createWebContext(parts: {
  readonly database: OpenDatabase;
  readonly controller: ServiceController;
  readonly config: LiveConfig;
  readonly settings: SettingsRepository;
  readonly events: ServerEvents;
  readonly logger: Logger;
}): WebContext {
  const users = new UserRepository(parts.database);
  return {
    ...parts,
    auth: new AuthService(users),
    users,
    transactions: new TransactionLogRepository(parts.database),
    audit: new AuditRepository(parts.database),
    index: new IndexRepository(parts.database),
  };
}

/**
 * The token of an `Authorization: Bearer <token>` header: undefined without the header, '' when
 * the header is not a bearer token.
 */
export function bearerOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1] ?? '';
}

/** The caller of a route behind the auth hook. */
export function callerOf(request: FastifyRequest): Caller {
  if (request.caller === undefined) throw new Error('route reached without authentication');
  return request.caller;
}

/** Records a management action in the audit log (failures to write are logged, not thrown). */
export async function audit(
  context: WebContext,
  request: FastifyRequest,
  action: string,
  outcome: 'success' | 'failure' | 'denied',
  detail?: string,
  username?: string,
): Promise<void> {
  try {
    await context.audit.record({
      username: username ?? request.caller?.user.username ?? '',
      action,
      outcome,
      remoteAddress: request.ip,
      ...(detail !== undefined && { detail }),
    });
  } catch (error) {
    context.logger.error({ err: error, action }, 'audit log entry not written');
  }
}

/** An error answer: `{ error, fields? }` with the status. */
export function fail(
  reply: FastifyReply,
  status: number,
  error: string,
  fields?: Readonly<Record<string, string>>,
): FastifyReply {
  return reply.code(status).send({ error, ...(fields !== undefined && { fields }) });
}
