/**
 * The service: its status (the specification's `GET /dicom-server/api/status/`), start, stop
 * and restart, and the live event stream (server-sent events) of the status, the transaction
 * rows, the hand-off (series' states and hand-off jobs as they change; a webhook's URL
 * without credentials or query, as the processing routes show it) and forwarding (forward jobs
 * and rule changes).
 *
 * Layer: web.
 */

import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { HandoffJob } from '../../db/repositories/handoff-repository.js';
import { redactedUrl } from '../../server/handoff-worker.js';
import { audit, fail, type WebContext } from '../context.js';

/** The status document. */
function statusOf(context: WebContext) {
  const status = context.controller.status();
  const settings = context.config.settings;
  return {
    ...status,
    storageLimitBytes:
      settings.max_storage_size_gb === 0
        ? null
        : Math.round(settings.max_storage_size_gb * 1024 ** 3),
    maxAssociations: settings.max_associations,
  };
}

/** A hand-off job as the live stream shows it: a webhook's URL redacted. */
function presentJob(job: HandoffJob): HandoffJob {
  return job.kind === 'webhook' ? { ...job, target: redactedUrl(job.target) } : job;
}

export function registerServiceRoutes(api: FastifyInstance, context: WebContext): void {
  const app = api.withTypeProvider<ZodTypeProvider>();

  app.get(
    '/status/',
    { schema: { summary: 'Service state, uptime, network, associations, totals, storage' } },
    async () => statusOf(context),
  );

  for (const action of ['start', 'stop', 'restart'] as const) {
    app.post(
      `/service/${action}`,
      { schema: { summary: `${action[0]!.toUpperCase()}${action.slice(1)} the DICOM service` } },
      async (request, reply) => {
        try {
          await context.controller[action]();
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          await audit(context, request, `service ${action}`, 'failure', message);
          return fail(reply, 409, `could not ${action}: ${message}`);
        }
        await audit(context, request, `service ${action}`, 'success');
        return statusOf(context);
      },
    );
  }

  app.get(
    '/events/',
    {
      schema: {
        summary:
          'Server-sent events: status, transactions (rows as written), series (hand-off states), handoff (jobs)',
      },
    },
    async (request, reply) => {
      reply.hijack();
      const stream = reply.raw;
      stream.writeHead(200, {
        'Content-Type': 'text/event-stream',
        'Cache-Control': 'no-store',
        Connection: 'keep-alive',
        'X-Accel-Buffering': 'no',
      });
      const send = (event: string, data: unknown) => {
        stream.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      };
      send('status', statusOf(context));
      const onStatus = () => send('status', statusOf(context));
      const onTransactions = (rows: unknown) => send('transactions', rows);
      const onSeries = (change: unknown) => send('series', change);
      const onHandoff = (job: HandoffJob) => send('handoff', presentJob(job));
      const onRouting = (change: unknown) => send('routing', change);
      context.events.on('status', onStatus);
      context.events.on('transactions', onTransactions);
      context.events.on('series', onSeries);
      context.events.on('handoff', onHandoff);
      context.events.on('routing', onRouting);
      // A comment every 20 s keeps proxies from closing an idle stream.
      const keepAlive = setInterval(() => stream.write(': keep-alive\n\n'), 20_000);
      request.raw.on('close', () => {
        clearInterval(keepAlive);
        context.events.off('status', onStatus);
        context.events.off('transactions', onTransactions);
        context.events.off('series', onSeries);
        context.events.off('handoff', onHandoff);
        context.events.off('routing', onRouting);
      });
    },
  );
}
