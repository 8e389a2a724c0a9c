/**
 * C-GET SCP (PS3.4 §C.4.3, PS3.7 §9.1.3): Patient Root and Study Root GET at every level. The
 * instances the identifier selects go back as C-STORE sub-operations on the same association,
 * over the presentation contexts for which the requestor took the SCP role in role selection
 * (PS3.7 §D.3.3.4); an instance with no such context for its SOP class and a transfer syntax
 * it can be sent in is a failed sub-operation (PS3.4 §C.4.3.3.1). Statuses and counts are
 * those of `retrieve.ts`.
 *
 * One deviation: the final response carries no identifier, where PS3.4 §C.4.3.1.3.1 wants the
 * Failed SOP Instance UID List with Warning, Failure and Cancel. DCMTK's DcmSCU (`getscu`, and
 * the viewers built on it) never reads the data set of a C-GET response: it takes that data
 * set's P-DATA for the answer to its next request and aborts the association (seen with
 * getscu 3.6.7 at release: "DUL P-Data PDU arrived"). The counts say how many failed.
 *
 * Layer: services.
 */

import type { RetrievableInstance } from '../dicom/query/model.js';
import type { DimseChannel, IncomingRequest, ResponseSpec } from '../network/dimse/channel.js';
import type { QuerySource } from './ports.js';
import {
  instancesToRetrieve,
  type RetrieveAssociation,
  type RetrieveLogger,
  refusedResponse,
  runSubOperations,
  type SubOperationSender,
  storeInstance,
  subOperationLogger,
} from './retrieve.js';

/** What the C-GET handler needs. */
export interface GetHandlerOptions {
  readonly source: QuerySource;
  readonly logger?: RetrieveLogger;
}

/** The association of a C-GET: the sub-operations go back over its channel. */
export interface GetAssociation extends RetrieveAssociation {
  readonly channel: DimseChannel;
}

/** Serves one C-GET-RQ: pending responses, then the final one. */
export type GetHandler = (
  request: IncomingRequest,
  signal: AbortSignal,
  association: GetAssociation,
) => AsyncIterable<ResponseSpec>;

/** Makes the C-GET handler. */
export function createGetHandler(options: GetHandlerOptions): GetHandler {
  return (request, signal, association) => serveGet(options, request, signal, association);
}

async function* serveGet(
  options: GetHandlerOptions,
  request: IncomingRequest,
  signal: AbortSignal,
  association: GetAssociation,
): AsyncGenerator<ResponseSpec> {
  const instances = await instancesToRetrieve(request, 'get', association, options.source, signal);
  if (!Array.isArray(instances)) {
    yield refusedResponse(instances, undefined);
    return;
  }
  const { channel } = association;
  const sender: SubOperationSender = {
    store: (instance: RetrievableInstance) =>
      storeInstance(channel, storageContexts(channel), instance, {
        ...(request.command.priority !== undefined && { priority: request.command.priority }),
      }),
  };
  yield* runSubOperations(instances, sender, {
    signal,
    note: { instances: instances.length },
    onSubOperation: subOperationLogger(options.logger, 'C-GET'),
  });
}

/** The accepted contexts on which the requestor acts as SCP: where C-STOREs may go. */
function storageContexts(channel: DimseChannel) {
  return [...channel.association.acceptedContexts.values()].filter(
    (context) => context.requestorIsScp,
  );
}
