/**
 * The hand-off to processing: the processing queue and the deliveries of completed series
 * (list with filters, one with its event; claim, acknowledge and fail queue items, as a
 * downstream tool does; retry a failed or dead job, as an operator does), and the series'
 * hand-off states. Reading is for every user; the changes are an administrator's (or an
 * administrator's API token, which is how a downstream tool authenticates), each audited.
 *
 * Layer: web.
 */

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  type HandoffJob,
  type HandoffJobWithEvent,
  HandoffRepository,
  JOB_KINDS,
  JOB_STATES,
  type JobChangeResult,
  SERIES_STATES,
} from '../../db/repositories/handoff-repository.js';
import { ProcessingQueueRepository } from '../../db/repositories/processing-queue-repository.js';
import {
  SeriesStateRepository,
  type SeriesStatus,
} from '../../db/repositories/series-state-repository.js';
import { redactedUrl } from '../../server/handoff-worker.js';
import { audit, fail, type WebContext } from '../context.js';

const Uid = z
  .string({ error: 'must be text' })
  .regex(/^[0-9]+(\.[0-9]+)*$/, { error: 'must be a UID (digits and dots)' })
  .max(64, { error: 'must be at most 64 characters' });

const Worker = z
  .string({ error: 'must be text' })
  .trim()
  .min(1, { error: 'must name the worker' })
  .max(100, { error: 'must be at most 100 characters' });

const Paging = {
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
};

const JobQuery = z.object({
  state: z.enum(JOB_STATES, { error: `must be one of: ${JOB_STATES.join(', ')}` }).optional(),
  kind: z.enum(JOB_KINDS, { error: `must be one of: ${JOB_KINDS.join(', ')}` }).optional(),
  series: Uid.optional(),
  ...Paging,
});

const SeriesQuery = z.object({
  state: z.enum(SERIES_STATES, { error: `must be one of: ${SERIES_STATES.join(', ')}` }).optional(),
  series: Uid.optional(),
  study: Uid.optional(),
  ...Paging,
});

const IdParams = z.object({
  id: z.coerce
    .number({ error: 'must be a job id' })
    .int({ error: 'must be a job id' })
    .positive({ error: 'must be a job id' }),
});

const ClaimBody = z.strictObject({
  worker: Worker,
  limit: z
    .number({ error: 'must be a number' })
    .int({ error: 'must be a whole number' })
    .min(1, { error: 'must be at least 1' })
    .max(100, { error: 'must be at most 100' })
    .default(1),
});

// No body at all is fine: Fastify hands the validator null then.
const AcknowledgeBody = z.strictObject({ worker: Worker.optional() }).nullish();

const FailBody = z.strictObject({
  error: z
    .string({ error: 'must be text' })
    .trim()
    .min(1, { error: 'must say what failed' })
    .max(2_000, { error: 'must be at most 2000 characters' }),
  worker: Worker.optional(),
});

/** A job as the API shows it: a webhook's URL without credentials or query. */
function present(job: HandoffJob) {
  return { ...job, target: job.kind === 'webhook' ? redactedUrl(job.target) : job.target };
}

/** A claimed queue item: the job with its event (series, files, folder). */
function presentItem(job: HandoffJobWithEvent) {
  const { event, ...rest } = job;
  return { ...present(rest), event };
}

export function registerProcessingRoutes(api: FastifyInstance, context: WebContext): void {
  const app = api.withTypeProvider<ZodTypeProvider>();
  const jobs = new HandoffRepository(context.database);
  const queue = new ProcessingQueueRepository(context.database);
  const series = new SeriesStateRepository(context.database);
  /** A receiving series is being sent, or waiting for its completion time. */
  const withSending = <T extends SeriesStatus>(state: T): T & { isSending?: boolean } => {
    if (state.state !== 'receiving') return state;
    // Receiving in the index but not here (another server, or the service stopped): not sent here.
    return {
      ...state,
      isSending: context.controller.isSeriesSending(state.seriesInstanceUid) ?? false,
    };
  };

  /** Announces a change, audits it, and answers with the job; or answers why not. */
  const answer = async (
    request: FastifyRequest,
    reply: FastifyReply,
    action: string,
    result: JobChangeResult,
  ) => {
    if (!result.isChanged) {
      await audit(context, request, action, 'failure', result.message);
      return fail(reply, result.reason === 'not-found' ? 404 : 409, result.message);
    }
    context.events.emit('handoff', result.job);
    if (result.series !== undefined) context.events.emit('series', result.series);
    const { job } = result;
    await audit(
      context,
      request,
      action,
      'success',
      `${job.kind} ${job.id} of series ${job.seriesInstanceUid}`,
    );
    return present(job);
  };

  app.get(
    '/processing/',
    {
      schema: {
        summary: 'Processing queue items and deliveries, newest first',
        querystring: JobQuery,
      },
    },
    async (request) => {
      const { state, kind, series: seriesInstanceUid, limit, before } = request.query;
      const filter = {
        ...(state !== undefined && { state }),
        ...(kind !== undefined && { kind }),
        ...(seriesInstanceUid !== undefined && { seriesInstanceUid }),
      };
      const page = await jobs.page(filter, limit, before);
      return {
        items: page.rows.map(present),
        nextBefore: page.nextBeforeId ?? null,
        total: await jobs.count(filter),
      };
    },
  );

  app.get(
    '/processing/:id',
    { schema: { summary: 'One queue item or delivery, with its event', params: IdParams } },
    async (request, reply) => {
      const job = await jobs.get(request.params.id);
      if (job === undefined) return fail(reply, 404, `no hand-off job ${request.params.id}`);
      return presentItem(job);
    },
  );

  app.post(
    '/processing/claim',
    {
      schema: {
        summary: 'Claim waiting queue items (oldest first) for a worker: they become processing',
        body: ClaimBody,
      },
    },
    async (request) => {
      const { worker, limit } = request.body;
      const claimed = await queue.claimQueueItems(worker, limit, new Date().toISOString());
      for (const job of claimed) context.events.emit('handoff', job);
      // An empty claim (a tool polling) is not worth an audit entry.
      if (claimed.length > 0) {
        const ids = claimed.map((job) => job.id).join(', ');
        await audit(context, request, 'processing claim', 'success', `${worker}: ${ids}`);
      }
      return { items: claimed.map(presentItem) };
    },
  );

  app.post(
    '/processing/:id/acknowledge',
    {
      schema: {
        summary: 'A claimed queue item is done (worker, when given, must be its claimer)',
        params: IdParams,
        body: AcknowledgeBody,
      },
    },
    async (request, reply) => {
      const result = await queue.acknowledge(
        request.params.id,
        request.body?.worker,
        new Date().toISOString(),
      );
      return answer(request, reply, 'processing acknowledge', result);
    },
  );

  app.post(
    '/processing/:id/fail',
    {
      schema: {
        summary: 'A claimed queue item failed downstream, with why',
        params: IdParams,
        body: FailBody,
      },
    },
    async (request, reply) => {
      const { error, worker } = request.body;
      const result = await queue.failQueueItem(
        request.params.id,
        error,
        worker,
        new Date().toISOString(),
      );
      return answer(request, reply, 'processing fail', result);
    },
  );

  app.post(
    '/processing/:id/retry',
    {
      schema: {
        summary:
          'Back to pending, attempts reset: a failed or dead delivery, a failed or claimed queue item',
        params: IdParams,
      },
    },
    async (request, reply) => {
      const result = await queue.retry(request.params.id, new Date().toISOString());
      if (result.isChanged) context.controller.wakeHandoff();
      return answer(request, reply, 'processing retry', result);
    },
  );

  app.get(
    '/series/',
    {
      schema: {
        summary: "Series' hand-off states, most recent first",
        querystring: SeriesQuery,
      },
    },
    async (request) => {
      const { state, series: seriesInstanceUid, study, limit, before } = request.query;
      const filter = {
        ...(state !== undefined && { state }),
        ...(seriesInstanceUid !== undefined && { seriesInstanceUid }),
        ...(study !== undefined && { studyInstanceUid: study }),
      };
      const page = await series.page(filter, limit, before);
      return {
        items: page.rows.map(withSending),
        nextBefore: page.nextBeforeId ?? null,
        total: await series.count(filter),
        receiving: context.controller.receivingSeries,
      };
    },
  );

  app.get(
    '/series/:uid',
    {
      schema: {
        summary: "A series' hand-off state with its jobs (newest first)",
        params: z.object({ uid: Uid }),
      },
    },
    async (request, reply) => {
      const state = await series.get(request.params.uid);
      if (state === undefined) return fail(reply, 404, `no series ${request.params.uid}`);
      const page = await jobs.page({ seriesInstanceUid: request.params.uid }, 200);
      return { ...withSending(state), jobs: page.rows.map(present) };
    },
  );
}
