/**
 * Forwarding over the REST API: the routing rules (list, create, read, replace, delete), the
 * destinations with their queue counts, last success and last error, and the forward queue
 * (list with filters, a page at a time; retry a failed or dead job). Reading is for every
 * user; changes are an administrator's, each audited. A rule change and a retry are announced
 * as `routing` events, on which the running forwarder reloads its rules or looks for due jobs.
 *
 * Layer: web.
 */

import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { FORWARD_STATES, RoutingRepository } from '../../db/repositories/routing-repository.js';
import {
  type RoutingRule,
  RoutingRulesRepository,
} from '../../db/repositories/routing-rules-repository.js';
import { conditionProblem, RULE_ATTRIBUTE_NAMES } from '../../server/routing/rules.js';
import { audit, fail, type WebContext } from '../context.js';

/** A destination AE title (PS3.5 AE: at most 16 characters, no backslash or control). */
const AeTitle = z
  .string({ error: 'must be text' })
  .trim()
  .min(1, { error: 'must not be empty' })
  .max(16, { error: 'must be at most 16 characters' })
  .regex(/^[\x20-\x5b\x5d-\x7e]+$/, {
    error: 'may hold only printable ASCII characters, without backslash',
  });

const RuleBody = z.strictObject({
  name: z
    .string({ error: 'must be text' })
    .trim()
    .min(1, { error: 'must not be empty' })
    .max(100, { error: 'must be at most 100 characters' }),
  description: z
    .string({ error: 'must be text' })
    .trim()
    .max(500, { error: 'must be at most 500 characters' })
    .default(''),
  isEnabled: z.boolean({ error: 'must be true or false' }).default(true),
  conditions: z
    .record(z.string(), z.string({ error: 'each condition must be a text pattern' }), {
      error: 'must be an object of attribute names to patterns',
    })
    .default({})
    .superRefine((conditions, context) => {
      for (const [attribute, pattern] of Object.entries(conditions)) {
        const problem = conditionProblem(attribute, pattern);
        if (problem !== undefined) {
          context.addIssue({
            code: 'custom',
            message: `${attribute} ${problem}`,
            path: [attribute],
          });
        }
      }
    })
    .transform((conditions) =>
      Object.fromEntries(Object.entries(conditions).map(([key, value]) => [key, value.trim()])),
    ),
  destinations: z
    .array(AeTitle, { error: 'must be a list of AE titles' })
    .min(1, { error: 'must name at least one destination AE title' })
    .max(50, { error: 'must name at most 50 destinations' })
    .refine((titles) => new Set(titles).size === titles.length, {
      error: 'must not name an AE title twice',
    }),
});

const IdParams = z.object({
  id: z.coerce
    .number({ error: 'must be an id' })
    .int({ error: 'must be an id' })
    .positive({ error: 'must be an id' }),
});

const QueueQuery = z.object({
  state: z
    .enum(FORWARD_STATES, { error: `must be one of: ${FORWARD_STATES.join(', ')}` })
    .optional(),
  destination: AeTitle.optional(),
  limit: z.coerce
    .number({ error: 'must be a number' })
    .int({ error: 'must be a whole number' })
    .min(1, { error: 'must be at least 1' })
    .max(500, { error: 'must be at most 500' })
    .default(50),
  before: z.coerce
    .number({ error: 'must be a number' })
    .int({ error: 'must be a whole number' })
    .positive({ error: 'must be above 0' })
    .optional(),
});

/** A rule as the audit log names it. */
function described(rule: RoutingRule): string {
  return `${rule.id} ${rule.name} to ${rule.destinations.join(', ')}`;
}

export function registerRoutingRoutes(api: FastifyInstance, context: WebContext): void {
  const app = api.withTypeProvider<ZodTypeProvider>();
  const routing = new RoutingRepository(context.database);
  const rules = new RoutingRulesRepository(context.database);
  /** Tells the running forwarder (and live views) that the rules changed. */
  const rulesChanged = () => context.events.emit('routing', { type: 'rules' });

  app.get(
    '/routing/rules',
    { schema: { summary: 'The routing rules (in matching order), and the attributes they match' } },
    async () => ({ items: await rules.listRules(), attributes: RULE_ATTRIBUTE_NAMES }),
  );

  app.post(
    '/routing/rules',
    {
      schema: {
        summary:
          'Add a routing rule: conditions (attribute to pattern, * and ? wildcards, \\ between ' +
          'alternatives; all must hold) and destination AE titles',
        body: RuleBody,
      },
    },
    async (request, reply) => {
      const result = await rules.createRule(request.body, new Date().toISOString());
      if (!result.isChanged) {
        await audit(context, request, 'routing rule add', 'failure', result.message);
        return fail(reply, 409, result.message);
      }
      rulesChanged();
      await audit(context, request, 'routing rule add', 'success', described(result.rule));
      return reply.code(201).send(result.rule);
    },
  );

  app.get(
    '/routing/rules/:id',
    { schema: { summary: 'One routing rule', params: IdParams } },
    async (request, reply) => {
      const rule = await rules.getRule(request.params.id);
      return rule ?? fail(reply, 404, `no routing rule ${request.params.id}`);
    },
  );

  app.put(
    '/routing/rules/:id',
    { schema: { summary: 'Replace a routing rule', params: IdParams, body: RuleBody } },
    async (request, reply) => {
      const result = await rules.updateRule(
        request.params.id,
        request.body,
        new Date().toISOString(),
      );
      if (!result.isChanged) {
        await audit(context, request, 'routing rule change', 'failure', result.message);
        return fail(reply, result.reason === 'not-found' ? 404 : 409, result.message);
      }
      rulesChanged();
      await audit(context, request, 'routing rule change', 'success', described(result.rule));
      return result.rule;
    },
  );

  app.delete(
    '/routing/rules/:id',
    { schema: { summary: 'Remove a routing rule (its queued jobs stay)', params: IdParams } },
    async (request, reply) => {
      const removed = await rules.deleteRule(request.params.id);
      if (removed === undefined) return fail(reply, 404, `no routing rule ${request.params.id}`);
      rulesChanged();
      await audit(context, request, 'routing rule remove', 'success', described(removed));
      return reply.code(204).send();
    },
  );

  app.get(
    '/routing/destinations',
    {
      schema: {
        summary:
          'Each destination (named by a rule or a job): queued, failed and dead jobs, last ' +
          'success, last error, and its AE title entry',
      },
    },
    async () => {
      const known = new Map(
        (await context.settings.listAllowedAes()).map((ae) => [ae.ae_title, ae]),
      );
      const summaries = await routing.destinationSummaries();
      return {
        items: summaries.map((summary) => {
          const ae = known.get(summary.aeTitle);
          return {
            ...summary,
            ae: ae === undefined ? null : { host: ae.host, port: ae.port, isActive: ae.is_active },
          };
        }),
      };
    },
  );

  app.get(
    '/routing/queue',
    { schema: { summary: 'Forward jobs, newest first', querystring: QueueQuery } },
    async (request) => {
      const { state, destination, limit, before } = request.query;
      const filter = {
        ...(state !== undefined && { state }),
        ...(destination !== undefined && { destination }),
      };
      const page = await routing.page(filter, limit, before);
      return {
        items: page.rows,
        nextBefore: page.nextBeforeId ?? null,
        total: await routing.count(filter),
      };
    },
  );

  app.post(
    '/routing/queue/:id/retry',
    {
      schema: {
        summary: 'Back to pending, due now, attempts reset: a failed or dead forward job',
        params: IdParams,
      },
    },
    async (request, reply) => {
      const result = await routing.retry(request.params.id, new Date().toISOString());
      if (!result.isChanged) {
        await audit(context, request, 'routing retry', 'failure', result.message);
        return fail(reply, result.reason === 'not-found' ? 404 : 409, result.message);
      }
      // The running forwarder takes a job back to pending as a wake-up.
      context.events.emit('routing', { type: 'job', job: result.job });
      const { job } = result;
      await audit(
        context,
        request,
        'routing retry',
        'success',
        `${job.id} ${job.sopInstanceUid} to ${job.destination}`,
      );
      return job;
    },
  );
}
