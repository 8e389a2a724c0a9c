/**
 * Users of the console (administrators and read-only viewers) and API tokens for scripts.
 *
 * Layer: web.
 */

import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ROLES } from '../../db/repositories/user-repository.js';
import { hashPassword, mayChange } from '../auth.js';
import { audit, callerOf, fail, type WebContext } from '../context.js';
import { PasswordSchema, UsernameSchema } from '../user-rules.js';

const Username = UsernameSchema;
const Password = PasswordSchema;

export function registerUserRoutes(api: FastifyInstance, context: WebContext): void {
  const app = api.withTypeProvider<ZodTypeProvider>();

  app.get('/users/', { schema: { summary: 'The users' } }, async () => context.users.list());

  app.post(
    '/users/',
    {
      schema: {
        summary: 'Add a user',
        body: z.object({
          username: Username,
          password: Password,
          role: z.enum(ROLES).default('viewer'),
        }),
      },
    },
    async (request, reply) => {
      const { username, password, role } = request.body;
      const user = await context.users.add(username, await hashPassword(password), role);
      if (user === undefined) return fail(reply, 409, 'invalid user', { username: 'is taken' });
      await audit(context, request, 'user add', 'success', `${username} (${role})`);
      return reply.code(201).send(user);
    },
  );

  app.patch(
    '/users/:username',
    {
      schema: {
        summary: "Change a user's password or role",
        params: z.object({ username: Username }),
        body: z.object({ password: Password.optional(), role: z.enum(ROLES).optional() }),
      },
    },
    async (request, reply) => {
      const { username } = request.params;
      const { password, role } = request.body;
      const caller = callerOf(request).user;
      // As with removing yourself: the last administrator must not lock everyone out.
      if (username === caller.username && role !== undefined && role !== caller.role) {
        return fail(reply, 400, 'you cannot change your own role');
      }
      if ((await context.users.findForLogin(username)) === undefined) {
        return fail(reply, 404, `no user ${username}`);
      }
      if (password !== undefined)
        await context.users.setPassword(username, await hashPassword(password));
      if (role !== undefined) await context.users.setRole(username, role);
      await audit(
        context,
        request,
        'user change',
        'success',
        `${username}: ${Object.keys(request.body).join(', ')}`,
      );
      return (await context.users.list()).find((user) => user.username === username);
    },
  );

  app.delete(
    '/users/:username',
    { schema: { summary: 'Remove a user', params: z.object({ username: Username }) } },
    async (request, reply) => {
      const { username } = request.params;
      if (username === callerOf(request).user.username) {
        return fail(reply, 400, 'you cannot remove yourself');
      }
      if (!(await context.users.remove(username))) return fail(reply, 404, `no user ${username}`);
      await audit(context, request, 'user remove', 'success', username);
      return reply.code(204).send();
    },
  );

  app.get('/tokens/', { schema: { summary: 'API tokens (never their secrets)' } }, async () =>
    context.users.listTokens(),
  );

  app.post(
    '/tokens/',
    {
      config: { isAnyRole: true },
      schema: {
        summary: 'Create an API token for yourself; its secret is shown once, in this answer',
        body: z.object({ name: z.string().trim().min(1, { error: 'must not be empty' }).max(100) }),
      },
    },
    async (request, reply) => {
      const caller = callerOf(request);
      const created = await context.auth.createToken(caller.user.id, request.body.name);
      await audit(context, request, 'token create', 'success', request.body.name);
      return reply.code(201).send(created);
    },
  );

  app.delete(
    '/tokens/:id',
    {
      config: { isAnyRole: true },
      schema: {
        summary: 'Revoke an API token (a viewer: one of their own)',
        params: z.object({ id: z.coerce.number().int().positive() }),
      },
    },
    async (request, reply) => {
      const caller = callerOf(request).user;
      const token = (await context.users.listTokens()).find((t) => t.id === request.params.id);
      if (token === undefined) return fail(reply, 404, `no token ${request.params.id}`);
      if (!mayChange(caller.role) && token.username !== caller.username) {
        return fail(reply, 403, 'read-only user: you may revoke only your own tokens');
      }
      if (!(await context.users.revokeToken(request.params.id))) {
        return fail(reply, 404, `no token ${request.params.id}`);
      }
      await audit(context, request, 'token revoke', 'success', String(request.params.id));
      return reply.code(204).send();
    },
  );
}
