/**
 * The associations open now (peer, AE titles, accepted contexts, operations, instances and bytes
 * so far, duration), and aborting one.
 *
 * Layer: web.
 */

import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { audit, fail, type WebContext } from '../context.js';

export function registerAssociationRoutes(api: FastifyInstance, context: WebContext): void {
  const app = api.withTypeProvider<ZodTypeProvider>();

  app.get('/associations/', { schema: { summary: 'The established associations' } }, async () =>
    context.controller.liveAssociations(),
  );

  app.delete(
    '/associations/:id',
    {
      schema: {
        summary: 'Abort an association (A-ABORT)',
        params: z.object({ id: z.string().min(1).max(64) }),
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const peer = context.controller.liveAssociations().find((a) => a.id === id);
      if (peer === undefined || !context.controller.abortAssociation(id)) {
        return fail(reply, 404, `no open association ${id}`);
      }
      await audit(
        context,
        request,
        'association abort',
        'success',
        `${id} ${peer.callingAeTitle} from ${peer.remoteAddress}`,
      );
      return reply.code(204).send();
    },
  );
}
