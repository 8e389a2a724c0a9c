/**
 * The HTTP side: a Fastify app serving the REST API under `/dicom-server/api/` (and, with the
 * console issue, the console under `/dicom-server/`), and the Prometheus metrics at `/metrics`.
 * Every route needs a login except the health check and the login itself (and `/metrics`, which
 * also takes the metrics token); a viewer may read, an administrator may also change; a
 * change made with the session cookie must carry the CSRF token. Request schemas are zod (the
 * settings schema among them), and the OpenAPI document is generated from them.
 *
 * Layer: web (the only layer that knows Fastify).
 */

import fastifyCookie from '@fastify/cookie';
import fastifySwagger from '@fastify/swagger';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
} from 'fastify-type-provider-zod';
import { CSRF_HEADER, mayChange, SESSION_COOKIE, safeEqual } from './auth.js';
import { bearerOf, fail, type WebContext } from './context.js';
import { registerAssociationRoutes } from './routes/associations.js';
import { registerAuthRoutes } from './routes/auth.js';
import { registerMetricsRoutes } from './routes/metrics.js';
import { registerProcessingRoutes } from './routes/processing.js';
import { registerRoutingRoutes } from './routes/routing.js';
import { registerServiceRoutes } from './routes/service.js';
import { registerSettingsRoutes } from './routes/settings.js';
import { registerStorageRoutes } from './routes/storage.js';
import { registerTransactionRoutes } from './routes/transactions.js';
import { registerUserRoutes } from './routes/users.js';

/** Where the API lives. */
export const API_PREFIX = '/dicom-server/api';

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Builds the app (not listening yet). */
export async function buildWebApp(context: WebContext): Promise<FastifyInstance> {
  const app = Fastify({
    // Warnings and errors only: a line per HTTP request would drown the DICOM log.
    loggerInstance: context.logger.child(
      { component: 'http' },
      { level: 'warn' },
    ) as FastifyBaseLogger,
    // Behind a reverse proxy, X-Forwarded-For would be trusted only when configured; not here.
    trustProxy: false,
    bodyLimit: 1024 * 1024,
    // Open event streams must not hold a shutdown back.
    forceCloseConnections: true,
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(fastifyCookie);
  await app.register(fastifySwagger, {
    openapi: {
      info: {
        title: 'dicom-server API',
        description:
          'Status, settings, allowed AE titles, transaction log, service control, users, ' +
          'the processing queue and hand-off of completed series, forwarding rules and queue. ' +
          'Authenticate with the session cookie of POST auth/login (and send its CSRF token in ' +
          'X-CSRF-Token with every change) or with `Authorization: Bearer <API token>`.',
        version: '1',
      },
      components: {
        securitySchemes: {
          session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE },
          bearer: { type: 'http', scheme: 'bearer' },
        },
      },
      security: [{ session: [] }, { bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });

  app.setNotFoundHandler((request, reply) =>
    fail(reply, 404, `no route ${request.method} ${request.url.split('?')[0]}`),
  );
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (hasZodFastifySchemaValidationErrors(error)) {
      const fields: Record<string, string> = {};
      for (const issue of error.validation) {
        const field = issue.instancePath.replace(/^\//, '').split('/')[0];
        fields[field === undefined || field === '' ? '_' : field] ??= issue.message ?? 'invalid';
      }
      return fail(reply, 400, 'invalid request', fields);
    }
    const status = (error as { statusCode?: number }).statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      return fail(reply, status, error.message);
    }
    request.log.error({ err: error, url: request.url }, 'request failed');
    return fail(reply, 500, 'internal error');
  });

  app.addHook('onRequest', async (request, reply) => {
    // Nothing of ours is cached by browsers or proxies.
    reply.header('Cache-Control', 'no-store');
    if (request.routeOptions.config.isPublic === true) return;
    const caller = await context.auth.authenticate(
      request.cookies[SESSION_COOKIE],
      bearerOf(request),
    );
    if (caller === undefined) return fail(reply, 401, 'login required');
    request.caller = caller;
    if (READ_METHODS.has(request.method)) return;
    if (caller.via.kind === 'session') {
      const sent = request.headers[CSRF_HEADER];
      if (typeof sent !== 'string' || !safeEqual(sent, caller.via.csrfToken)) {
        return fail(reply, 403, 'CSRF token missing or wrong (send it in X-CSRF-Token)');
      }
    }
    if (request.routeOptions.config.isAnyRole !== true && !mayChange(caller.user.role)) {
      return fail(reply, 403, 'read-only user: an administrator may change this');
    }
  });

  await app.register(
    async (api) => {
      registerAuthRoutes(api, context);
      registerAssociationRoutes(api, context);
      registerProcessingRoutes(api, context);
      registerRoutingRoutes(api, context);
      registerServiceRoutes(api, context);
      registerSettingsRoutes(api, context);
      registerStorageRoutes(api, context);
      registerTransactionRoutes(api, context);
      registerUserRoutes(api, context);
      api.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
    },
    { prefix: API_PREFIX },
  );
  // Where Prometheus looks by default: beside the API, not under it.
  registerMetricsRoutes(app, context);
  await app.register((await import('./console.js')).consolePlugin);
  return app;
}
