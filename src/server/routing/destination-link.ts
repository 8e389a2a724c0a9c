/**
 * A forwarding destination: its AE title looked up (at send time) into a host and port, or
 * why it cannot be sent to; and its association, opened when first needed with the contexts
 * services/move.ts `planAssociations` plans for the instances to send (each SOP class in its
 * stored transfer syntax, and the uncompressed syntaxes it converts to), kept while the next
 * instances fit it, released when the forwarder is done with the destination.
 *
 * Layer: server.
 */

import type { Logger } from 'pino';
import type { RetrievableInstance } from '../../dicom/query/model.js';
import type { AssociationTimeouts } from '../../network/association/association.js';
import { requestAssociation } from '../../network/association/requestor.js';
import { DimseChannel } from '../../network/dimse/channel.js';
import type { TlsClientOptions } from '../../network/tls.js';
import { planAssociations } from '../../services/move.js';
import { chooseContext } from '../../services/retrieve.js';
import { failureText } from '../handoff-worker.js';

/** A destination AE as the AE titles hold it. */
export interface DestinationAe {
  readonly host: string;
  readonly port: number | null;
  readonly isActive: boolean;
  /** Reached over TLS with these options (the AE title's use_tls). */
  readonly tls?: TlsClientOptions;
}

/** Looks a destination AE title up among the AE titles (at send time). */
export type DestinationLookup = (
  aeTitle: string,
) => Promise<DestinationAe | undefined> | DestinationAe | undefined;

/** The timers of the forwarder's associations. */
export type ForwardTimeouts = AssociationTimeouts & { readonly dimseMs: number };

/** Where a destination is. */
export interface DestinationAddress {
  readonly host: string;
  readonly port: number;
  /** Over TLS with these options; plain TCP without. */
  readonly tls?: TlsClientOptions;
}

/** Where a destination is now, or why it cannot be sent to. */
export type DestinationTarget =
  | ({ readonly isKnown: true } & DestinationAddress)
  | { readonly isKnown: false; readonly error: string };

/**
 * Looks `destination` up: unknown, inactive and hostless AE titles (and a lookup that fails)
 * are reasons not to send, said so that an operator knows what to set up.
 */
export async function resolveDestination(
  lookup: DestinationLookup,
  destination: string,
): Promise<DestinationTarget> {
  let ae: DestinationAe | undefined;
  try {
    ae = await lookup(destination);
  } catch (error) {
    return { isKnown: false, error: `AE titles not read: ${failureText(error)}` };
  }
  if (ae === undefined) return { isKnown: false, error: `${destination} is not a known AE title` };
  if (!ae.isActive) return { isKnown: false, error: `AE title ${destination} is not active` };
  if (ae.host === '' || ae.port === null) {
    return { isKnown: false, error: `AE title ${destination} has no host and port` };
  }
  return {
    isKnown: true,
    host: ae.host,
    port: ae.port,
    ...(ae.tls !== undefined && { tls: ae.tls }),
  };
}

/** How the link's associations are requested. */
export interface DestinationLinkOptions {
  readonly destination: string;
  readonly address: DestinationAddress;
  /** Our AE title (read for each association). */
  readonly aeTitle: () => string;
  readonly timeouts: ForwardTimeouts;
  readonly maxPduLength?: number;
  readonly logger: Logger;
}

/**
 * One destination's association, opened when first needed and kept while the next instances
 * fit it (their SOP class has a usable accepted context, or they were planned into it: one
 * whose context the destination rejected fails alone, without a new association).
 */
export class DestinationLink {
  readonly #options: DestinationLinkOptions;
  #channel: DimseChannel | undefined;
  #planned = new Set<string>();

  constructor(options: DestinationLinkOptions) {
    this.#options = options;
  }

  /** True when this link goes to `address` (and over TLS when it does). */
  isFor(address: DestinationAddress): boolean {
    const own = this.#options.address;
    return (
      own.host === address.host &&
      own.port === address.port &&
      (own.tls === undefined) === (address.tls === undefined)
    );
  }

  /** The open association's id, if one is open. */
  get associationId(): string | undefined {
    return this.#channel?.association.id;
  }

  /**
   * The channel to send `instance` on: the open one when it serves it, else a new one planned
   * for it and the `upcoming` ones. Rejects when the association cannot be opened.
   */
  async channelFor(
    instance: RetrievableInstance,
    upcoming: readonly RetrievableInstance[],
  ): Promise<DimseChannel> {
    const open = this.#channel;
    if (open?.association.isEstablished === true) {
      const contexts = open.association.acceptedContexts.values();
      const fits =
        chooseContext(contexts, instance.sopClassUid, instance.transferSyntaxUid) !== undefined;
      if (fits || this.#planned.has(instance.sopInstanceUid)) return open;
    }
    await this.close();
    const [batch] = planAssociations([instance, ...upcoming]);
    if (batch === undefined) throw new Error('nothing planned to send');
    const { timeouts, maxPduLength, address } = this.#options;
    const association = await requestAssociation({
      host: address.host,
      port: address.port,
      ...(address.tls !== undefined && { tls: address.tls }),
      callingAeTitle: this.#options.aeTitle(),
      calledAeTitle: this.#options.destination,
      contexts: batch.proposals,
      ...(maxPduLength !== undefined && { maxPduLength }),
      timeouts: {
        artimMs: timeouts.artimMs,
        acseMs: timeouts.acseMs,
        networkMs: timeouts.networkMs,
      },
    });
    this.#planned = batch.instanceUids;
    this.#channel = new DimseChannel(association, { dimseTimeoutMs: timeouts.dimseMs });
    return this.#channel;
  }

  /** Releases the association, if open; a destination that breaks off the release is logged. */
  async close(): Promise<void> {
    const channel = this.#channel;
    this.#channel = undefined;
    if (channel === undefined || !channel.association.isEstablished) return;
    try {
      await channel.association.release();
    } catch (error) {
      this.#options.logger.warn(
        { destination: this.#options.destination, error: failureText(error) },
        'forward destination association did not release cleanly',
      );
    }
  }

  /** Aborts the association at once (a stop whose grace period is over). */
  abort(): void {
    this.#channel?.association.abort();
  }
}
