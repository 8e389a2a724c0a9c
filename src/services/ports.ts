/**
 * What the DIMSE service handlers need from the rest of the server, as small interfaces that
 * storage, the index and the server implement (and tests fake).
 *
 * Layer: services. Declares shapes only; imports no storage or database code.
 */

import type { Logger } from 'pino';

/** Per-operation context handed to every handler. */
export interface ServiceContext {
  /** A child logger bound to the association and the operation. */
  readonly logger: Logger;
  readonly callingAeTitle: string;
  readonly calledAeTitle: string;
  readonly remoteAddress: string;
}
