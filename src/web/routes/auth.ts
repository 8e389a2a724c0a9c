/**
 * Login, logout and who am I; the health check.
 *
 * Layer: web.
 */

import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { SESSION_COOKIE, SESSION_MS } from '../auth.js';
import { audit, callerOf, fail, type WebContext } from '../context.js';

const LoginBody = z.object({
  username: z.string().min(1, { error: 'must not be empty' }).max(100),
  password: z.string().min(1, { error: 'must not be empty' }).max(1000),
});

export function registerAuthRoutes(api: FastifyInstance, context: WebContext): void {
  const app = api.withTypeProvider<ZodTypeProvider>();

  app.get(
    '/health/',
    { config: { isPublic: true }, schema: { summary: 'Liveness: answers while the process runs' } },
    async () => ({ status: 'ok', service: context.controller.state }),
  );

  app.post(
    '/auth/login',
    {
      config: { isPublic: true },
      schema: {
        summary: 'Log in: sets the session cookie, returns the CSRF token',
        body: LoginBody,
      },
    },
    async (request, reply) => {
      const { username, password } = request.body;
      const outcome = await context.auth.login(username, password, request.ip);
      if (outcome.kind === 'locked') {
        await audit(
          context,
          request,
          'login',
          'denied',
          'locked out after failed logins',
          username,
        );
        reply.header('Retry-After', String(outcome.retryAfterSeconds));
        return reply.code(429).send({
          error: 'too many failed logins: try again later',
          retryAfterSeconds: outcome.retryAfterSeconds,
        });
      }
      if (outcome.kind === 'invalid') {
        await audit(context, request, 'login', 'failure', 'invalid username or password', username);
        return fail(reply, 401, 'invalid username or password');
      }
      await audit(context, request, 'login', 'success', undefined, outcome.user.username);
      reply.setCookie(SESSION_COOKIE, outcome.cookie, {
        path: '/dicom-server',
        httpOnly: true,
        sameSite: 'strict',
        secure: request.protocol === 'https',
        maxAge: SESSION_MS / 1000,
      });
      return {
        user: { username: outcome.user.username, role: outcome.user.role },
        csrfToken: outcome.csrfToken,
      };
    },
  );

  app.post(
    '/auth/logout',
    { config: { isAnyRole: true }, schema: { summary: 'Log out: ends the session' } },
    async (request, reply) => {
      const caller = callerOf(request);
      if (caller.via.kind === 'session') await context.auth.logout(caller.via.tokenHash);
      await audit(context, request, 'logout', 'success');
      reply.clearCookie(SESSION_COOKIE, { path: '/dicom-server' });
      return reply.code(204).send();
    },
  );

  app.get(
    '/auth/me',
    { schema: { summary: 'The logged-in user and the CSRF token' } },
    async (request) => {
      const caller = callerOf(request);
      return {
        user: { username: caller.user.username, role: caller.user.role },
        ...(caller.via.kind === 'session' && { csrfToken: caller.via.csrfToken }),
      };
    },
  );
}
