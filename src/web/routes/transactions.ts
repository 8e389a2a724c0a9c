/**
 * The transaction log (filters, pages, CSV export), the audit log of management actions, and
 * the studies received lately.
 *
 * Layer: web.
 */

import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  TRANSACTION_STATUSES,
  TRANSACTION_TYPES,
  type TransactionFilter,
  type TransactionRow,
} from '../../db/repositories/transaction-log-repository.js';
import type { WebContext } from '../context.js';

const isoTime = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 time' });

const Filter = z.object({
  type: z.enum(TRANSACTION_TYPES).optional(),
  status: z.enum(TRANSACTION_STATUSES).optional(),
  ae: z.string().min(1).max(16).optional(),
  since: isoTime.optional(),
  until: isoTime.optional(),
});

const PageQuery = Filter.extend({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  before: z.coerce.number().int().positive().optional(),
});

function filterOf(query: z.infer<typeof Filter>): TransactionFilter {
  return {
    ...(query.type !== undefined && { type: query.type }),
    ...(query.status !== undefined && { status: query.status }),
    ...(query.ae !== undefined && { aeTitle: query.ae }),
    ...(query.since !== undefined && { since: new Date(query.since).toISOString() }),
    ...(query.until !== undefined && { until: new Date(query.until).toISOString() }),
  };
}

const CSV_COLUMNS: readonly (keyof TransactionRow)[] = [
  'id',
  'occurred_at',
  'type',
  'status',
  'status_code',
  'calling_ae',
  'called_ae',
  'remote_address',
  'remote_port',
  'sop_class_uid',
  'sop_instance_uid',
  'patient_id',
  'study_instance_uid',
  'series_instance_uid',
  'file_path',
  'bytes',
  'duration_ms',
  'transfer_rate_mbps',
  'message',
  'association_id',
];

/** A CSV field (RFC 4180), with a leading quote against formula injection in spreadsheets. */
function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  let text = String(value);
  if (/^[=+\-@\t\r]/.test(text) && typeof value === 'string') text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function registerTransactionRoutes(api: FastifyInstance, context: WebContext): void {
  const app = api.withTypeProvider<ZodTypeProvider>();

  app.get(
    '/transactions/',
    {
      schema: {
        summary: "Transaction log rows, newest first; `before` = the previous page's nextBefore",
        querystring: PageQuery,
      },
    },
    async (request) => {
      const filter = filterOf(request.query);
      const page = await context.transactions.page(
        filter,
        request.query.limit,
        request.query.before,
      );
      return {
        rows: page.rows,
        nextBefore: page.nextBeforeId ?? null,
        total: await context.transactions.count(filter),
      };
    },
  );

  app.get(
    '/transactions/export.csv',
    {
      schema: {
        summary: 'The rows matching the filters as CSV (at most 100,000)',
        querystring: Filter,
      },
    },
    async (request, reply) => {
      const filter = filterOf(request.query);
      const lines = [CSV_COLUMNS.join(',')];
      let before: number | undefined;
      for (let read = 0; read < 100_000; ) {
        const page = await context.transactions.page(filter, 1000, before);
        for (const row of page.rows) lines.push(CSV_COLUMNS.map((c) => csvField(row[c])).join(','));
        read += page.rows.length;
        if (page.nextBeforeId === undefined) break;
        before = page.nextBeforeId;
      }
      reply.header('Content-Type', 'text/csv; charset=utf-8');
      reply.header('Content-Disposition', 'attachment; filename="transactions.csv"');
      return `${lines.join('\r\n')}\r\n`;
    },
  );

  app.get(
    '/audit/',
    {
      schema: {
        summary: 'Management actions, newest first',
        querystring: z.object({
          limit: z.coerce.number().int().min(1).max(500).default(50),
          before: z.coerce.number().int().positive().optional(),
        }),
      },
    },
    async (request) => context.audit.page(request.query.limit, request.query.before),
  );

  app.get(
    '/studies/recent',
    {
      schema: {
        summary: 'Studies received lately, with their counts',
        querystring: z.object({ limit: z.coerce.number().int().min(1).max(200).default(20) }),
      },
    },
    async (request) => context.index.recentStudies(request.query.limit),
  );
}
