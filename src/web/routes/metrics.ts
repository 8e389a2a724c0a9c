/**
 * GET /metrics: the server's metrics in the Prometheus text format (server/metrics.ts), for a
 * scraper with `Authorization: Bearer <metrics_token>` or for a logged-in console user (a
 * session, or a user's API token). The token is read at each request, so one stored through the
 * API or `config set` (in this process or another) counts at once. Any other caller gets 401.
 *
 * Layer: web.
 */

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { SESSION_COOKIE, safeEqual } from '../auth.js';
import { bearerOf, fail, type WebContext } from '../context.js';

/** Where the metrics are, beside the API (where Prometheus looks by default). */
export const METRICS_PATH = '/metrics';

export function registerMetricsRoutes(app: FastifyInstance, context: WebContext): void {
  app.get(
    METRICS_PATH,
    {
      // Checked here rather than by the login hook: the metrics token is no user's.
      config: { isPublic: true },
      // Not part of the REST API's document: Prometheus, not API clients, reads it.
      schema: { hide: true },
    },
    async (request, reply) => {
      const refusal = await refusalOf(request, context);
      if (refusal !== undefined) {
        reply.header('WWW-Authenticate', 'Bearer realm="metrics"');
        return fail(reply, 401, refusal);
      }
      const metrics = context.controller.metrics;
      const text = await metrics.scrape();
      return reply.type(metrics.contentType).send(text);
    },
  );
}

/** Why the caller may not read the metrics, or undefined when it may. */
async function refusalOf(
  request: FastifyRequest,
  context: WebContext,
): Promise<string | undefined> {
  const bearer = bearerOf(request);
  await context.config.refresh();
  const token = context.config.settings.metrics_token;
  if (bearer !== undefined && bearer !== '' && token !== '' && safeEqual(bearer, token)) {
    return undefined;
  }
  const caller = await context.auth.authenticate(request.cookies[SESSION_COOKIE], bearer);
  if (caller !== undefined) return undefined;
  if (bearer === undefined || bearer === '') {
    return 'metrics need Authorization: Bearer <metrics_token> or a console login';
  }
  return token === ''
    ? 'bearer token not accepted: no metrics_token is set, and it is no user API token'
    : 'bearer token not accepted: neither the metrics_token nor a user API token';
}
