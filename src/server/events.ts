/**
 * The server's events for live views (the console's server-sent events): the service status
 * when it changes or its totals move, the transaction rows as they are written, and the
 * hand-off: a series' state as it moves (receiving, complete, handed off, ...) and each change
 * to a hand-off job (claimed, attempted, done, failed, dead, retried); and forwarding: each
 * change to a forward job (queued, attempted, done, failed, dead, retried) and to the rules.
 *
 * Layer: server.
 */

import { EventEmitter } from 'node:events';
import type { HandoffJob, SeriesStateChange } from '../db/repositories/handoff-repository.js';
import type { ForwardJob } from '../db/repositories/routing-repository.js';
import type { TransactionRecord } from '../db/repositories/transaction-log-repository.js';
import type { ServiceStatus } from './service-controller.js';

/** The events and their arguments. */
export interface ServerEventMap {
  status: [ServiceStatus];
  /** The rows of one batch of the transaction log, as written (every 250 ms at most). */
  transactions: [readonly TransactionRecord[]];
  /** A series' hand-off state moved (started or reopened receiving, completed, delivered ...). */
  series: [SeriesStateChange];
  /** A hand-off job changed. */
  handoff: [HandoffJob];
  /** A forward job changed, or the routing rules did (the forwarder reloads them). */
  routing: [RoutingEvent];
}

/** A change to forwarding: a job (written, attempted, retried), or the rules (edited). */
export type RoutingEvent =
  | { readonly type: 'job'; readonly job: ForwardJob }
  | { readonly type: 'rules' };

/** Emits the server's events; listeners are the live views. */
export class ServerEvents extends EventEmitter<ServerEventMap> {
  constructor() {
    super();
    // One listener per open console: more than the default 10 is normal.
    this.setMaxListeners(1_000);
  }
}
