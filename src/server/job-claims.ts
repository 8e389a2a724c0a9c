/**
 * Who holds a job of the durable queues (hand-off deliveries, forward jobs): a worker claims
 * jobs under its name, host and process id; at start-up the claims of processes that are gone
 * (on this host, or held for over an hour anywhere) are taken back.
 *
 * Layer: server.
 */

import { hostname } from 'node:os';

/** A claim held longer than this is taken back whoever holds it (a host that went away). */
const STALE_CLAIM_MS = 60 * 60_000;

/** This process's claim name: `host:pid`. */
export function claimerName(): string {
  return `${hostname()}:${process.pid}`;
}

/**
 * The claimers whose claims are abandoned: stale ones, this process's own (left by an earlier
 * start of the service), and those of processes on this host that no longer exist.
 */
export function abandonedClaimers(
  claimers: readonly { readonly claimedBy: string; readonly oldestClaimAt: string }[],
  now = Date.now(),
): string[] {
  const host = hostname();
  const staleBefore = new Date(now - STALE_CLAIM_MS).toISOString();
  return claimers
    .filter(({ claimedBy, oldestClaimAt }) => {
      if (oldestClaimAt < staleBefore) return true;
      const separator = claimedBy.lastIndexOf(':');
      if (claimedBy.slice(0, separator) !== host) return false;
      const pid = Number(claimedBy.slice(separator + 1));
      return pid === process.pid || !Number.isInteger(pid) || !isAlive(pid);
    })
    .map(({ claimedBy }) => claimedBy);
}

/** Whether a process with this id exists (signal 0 checks without sending anything). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
