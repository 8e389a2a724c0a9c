/**
 * The claims on the durable queues' jobs (hand-off deliveries in `handoff_jobs`, forward jobs
 * in `forward_jobs`), which share their claim columns: who holds jobs in progress, and putting
 * back the jobs of claimers that are gone. The server decides which claimers are gone
 * (server/job-claims.ts); here is only the SQL, the same for both tables.
 *
 * Layer: db (repositories hold all SQL).
 */

import type { Kysely } from 'kysely';
import type { Database } from '../schema.js';
import type { TransactionRunner } from '../transactions.js';

/** The tables whose jobs are claimed: state, claimed_by, claimed_at, next_attempt_at. */
export type ClaimedJobsTable = 'handoff_jobs' | 'forward_jobs';

/** A holder of claims, with its oldest claim (ISO time). */
export interface ClaimHolder {
  readonly claimedBy: string;
  readonly oldestClaimAt: string;
}

/** Where the queries run. */
interface ClaimsDatabase {
  readonly db: Kysely<Database>;
  readonly runner: TransactionRunner;
}

/** The claimers of `table`'s jobs in progress, each with its oldest claim. */
export async function claimHolders(
  { db, runner }: ClaimsDatabase,
  table: ClaimedJobsTable,
): Promise<ClaimHolder[]> {
  const rows = await runner.runQuery(
    db
      .selectFrom(table)
      .select((eb) => ['claimed_by', eb.fn.min('claimed_at').as('oldest')])
      .where('state', '=', 'in_progress')
      .groupBy('claimed_by')
      .compile(),
  );
  return rows.map((row) => ({
    claimedBy: row.claimed_by ?? '',
    oldestClaimAt: row.oldest ?? '',
  }));
}

/**
 * Puts `table`'s jobs in progress under these claimers back to pending, due at `now` (their
 * process died during the attempt, which counts); how many.
 */
export async function releaseClaimsOf(
  { db, runner }: ClaimsDatabase,
  table: ClaimedJobsTable,
  claimers: readonly string[],
  now: string,
): Promise<number> {
  if (claimers.length === 0) return 0;
  const rows = await runner.runQuery(
    db
      .updateTable(table)
      .set({ state: 'pending', next_attempt_at: now, claimed_by: null, updated_at: now })
      .where('state', '=', 'in_progress')
      .where('claimed_by', 'in', claimers)
      .returning('id')
      .compile(),
  );
  return rows.length;
}
