/**
 * C-ECHO SCP (PS3.7 §9.1.5, PS3.4 Annex A): verification answers success.
 *
 * Layer: services.
 */

import type { IncomingRequest, ResponseSpec } from '../network/dimse/channel.js';
import { Status } from '../network/dimse/status.js';

/** Answers a C-ECHO-RQ: the association works, so success. */
export async function handleEcho(_request: IncomingRequest): Promise<ResponseSpec> {
  return { status: Status.Success };
}
