/**
 * Routes each DIMSE request to the service handler for its command, after the checks every
 * service shares: the command is one this server serves, and on a context whose abstract
 * syntax belongs to that service.
 *
 * Layer: services.
 */

import type {
  DimseChannel,
  IncomingRequest,
  RequestHandler,
  ResponseSpec,
} from '../network/dimse/channel.js';
import { CommandField } from '../network/dimse/command.js';
import { Status } from '../network/dimse/status.js';

/** A handler for one kind of request, with the abstract syntaxes it serves. */
export interface ServiceRegistration {
  readonly commandField: number;
  readonly abstractSyntaxes: ReadonlySet<string>;
  readonly handle: (
    request: IncomingRequest,
    signal: AbortSignal,
    channel: DimseChannel,
  ) => Promise<ResponseSpec> | AsyncIterable<ResponseSpec>;
}

const COMMAND_WITH_SOP_CLASS = new Set<number>([
  CommandField.CEchoRq,
  CommandField.CStoreRq,
  CommandField.CFindRq,
  CommandField.CMoveRq,
  CommandField.CGetRq,
]);

/** A channel request handler over the registered services. */
export function createDispatcher(registrations: readonly ServiceRegistration[]): RequestHandler {
  const byCommand = new Map(
    registrations.map((registration) => [registration.commandField, registration]),
  );
  return (request, signal, channel) => {
    const registration = byCommand.get(request.command.commandField);
    // A request this server does not serve, or not on this context's SOP class: the
    // operation is not recognized here (PS3.7 §C.5.17); the association goes on.
    if (
      registration === undefined ||
      !registration.abstractSyntaxes.has(request.context.abstractSyntax)
    ) {
      return Promise.resolve({ status: Status.UnrecognizedOperation });
    }
    const sopClass = request.command.affectedSopClassUid;
    if (
      COMMAND_WITH_SOP_CLASS.has(request.command.commandField) &&
      sopClass !== request.context.abstractSyntax
    ) {
      // The command names another SOP class than the context it came on (PS3.7 §C.5.13).
      return Promise.resolve({
        status: Status.SopClassNotSupported,
        fields: { errorComment: 'SOP class differs from presentation context' },
      });
    }
    return registration.handle(request, signal, channel);
  };
}
