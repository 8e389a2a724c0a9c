/**
 * The storage rescan: the index reconciled with the files on disk (files the index lacks are
 * indexed, rows whose file is gone removed), run in the background, one at a time. POST starts
 * one (an administrator's, audited; 409 while one runs); GET answers its state, progress and
 * report (kept in memory until the next rescan or a restart of the process).
 *
 * Layer: web.
 */

import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { RescanRunningError } from '../../server/storage-rescan.js';
import { audit, callerOf, fail, type WebContext } from '../context.js';

export function registerStorageRoutes(api: FastifyInstance, context: WebContext): void {
  const app = api.withTypeProvider<ZodTypeProvider>();

  app.get(
    '/storage/rescan',
    {
      schema: {
        summary:
          'The storage rescan: state (idle, running, done, failed), progress, and the report of orphan files (indexed) and missing files (rows removed)',
      },
    },
    async () => context.controller.storage.rescanStatus,
  );

  app.post(
    '/storage/rescan',
    {
      schema: {
        summary:
          'Start a storage rescan in the background (409 while one runs); follow it with GET',
      },
    },
    async (request, reply) => {
      const username = callerOf(request).user.username;
      try {
        const status = context.controller.startStorageRescan(username);
        await audit(context, request, 'storage rescan', 'success', 'started');
        return reply.code(202).send(status);
      } catch (error) {
        if (!(error instanceof RescanRunningError)) throw error;
        await audit(context, request, 'storage rescan', 'failure', error.message);
        return fail(reply, 409, error.message);
      }
    },
  );
}
