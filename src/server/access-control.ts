/**
 * Who may associate and what they may do, decided from the settings and the allowed peers:
 * - the remote address against a non-empty allow-list (addresses and CIDR ranges, IPv4 and
 *   IPv6; an IPv4 peer reaching an IPv6 listener is matched as IPv4);
 * - with calling AE validation on, the calling AE title against the active allowed peers, and
 *   against a peer's expected address when it has one; in observe mode a would-be rejection is
 *   reported but let through;
 * - per listed peer, which operations it may request.
 *
 * Refusals, as the association is requested (PS3.8 §7.1.1.9): both an address outside the list
 * and an unknown calling AE get A-ASSOCIATE-RJ, rejected-permanent, source service-user; the
 * reason is calling-AE-title-not-recognized for the AE checks and no-reason-given for the
 * address (PS3.8 has no reason for it). The peer is answered rather than cut off, so that its
 * operator reads a clear rejection instead of a network error; the request is read first, which
 * costs at most one PDU within the ARTIM timeout.
 *
 * Layer: server.
 */

import ipaddr from 'ipaddr.js';
import { type AllowedAe, addressListEntries, parseAddressRange } from '../settings/schema.js';

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** A parsed address list. */
export class AddressList {
  readonly #ranges: readonly Range[];

  constructor(list: string) {
    this.#ranges = addressListEntries(list)
      .map(parseAddressRange)
      .filter((range): range is Range => range !== undefined);
  }

  get isEmpty(): boolean {
    return this.#ranges.length === 0;
  }

  /** Whether `address` (as a socket reports it) lies in one of the ranges. */
  includes(address: string): boolean {
    let parsed: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      // process(): an IPv4-mapped IPv6 address (::ffff:10.0.0.1) becomes the IPv4 address.
      parsed = ipaddr.process(address);
    } catch {
      return false;
    }
    return this.#ranges.some(([range, bits]) => {
      const candidate =
        range.kind() === parsed.kind()
          ? parsed
          : range.kind() === 'ipv6' && parsed.kind() === 'ipv4'
            ? (parsed as ipaddr.IPv4).toIPv4MappedAddress()
            : undefined;
      return candidate?.match(range, bits) === true;
    });
  }
}

/** What access control knows: the settings it needs and the allowed peers. */
export interface AccessPolicy {
  readonly requireCallingAeValidation: boolean;
  readonly isObserveOnly: boolean;
  readonly allowedAddresses: AddressList;
  /** Allowed peers by AE title. */
  readonly allowedAes: ReadonlyMap<string, AllowedAe>;
}

/** Why an association is (or, observed, would be) refused. */
export type RefusalReason =
  | 'address-not-allowed'
  | 'calling-ae-not-listed'
  | 'calling-ae-inactive'
  | 'calling-ae-wrong-address';

/** The decision on an association request. */
export type AssociationDecision =
  | { readonly isAllowed: true; readonly observed?: { reason: RefusalReason; message: string } }
  | { readonly isAllowed: false; readonly reason: RefusalReason; readonly message: string };

function callingAeRefusal(
  policy: AccessPolicy,
  callingAeTitle: string,
  remoteAddress: string,
): { reason: RefusalReason; message: string } | undefined {
  const peer = policy.allowedAes.get(callingAeTitle);
  if (peer === undefined) {
    return {
      reason: 'calling-ae-not-listed',
      message: `calling AE title ${callingAeTitle} is not in the allowed list`,
    };
  }
  if (!peer.is_active) {
    return {
      reason: 'calling-ae-inactive',
      message: `calling AE title ${callingAeTitle} is inactive`,
    };
  }
  if (peer.expected_ip !== '' && !new AddressList(peer.expected_ip).includes(remoteAddress)) {
    return {
      reason: 'calling-ae-wrong-address',
      message: `calling AE title ${callingAeTitle} is expected from ${peer.expected_ip}, not ${remoteAddress}`,
    };
  }
  return undefined;
}

/** Decides on an association request from `remoteAddress` calling as `callingAeTitle`. */
export function decideAssociation(
  policy: AccessPolicy,
  remoteAddress: string,
  callingAeTitle: string,
): AssociationDecision {
  if (!policy.allowedAddresses.isEmpty && !policy.allowedAddresses.includes(remoteAddress)) {
    return {
      isAllowed: false,
      reason: 'address-not-allowed',
      message: `remote address ${remoteAddress} is not in the allowed IP addresses`,
    };
  }
  if (!policy.requireCallingAeValidation) return { isAllowed: true };
  const refusal = callingAeRefusal(policy, callingAeTitle, remoteAddress);
  if (refusal === undefined) return { isAllowed: true };
  if (policy.isObserveOnly) return { isAllowed: true, observed: refusal };
  return { isAllowed: false, ...refusal };
}

/** What a peer may request. */
export type Permission = 'store' | 'query' | 'retrieve';

/**
 * Whether `callingAeTitle` may request operations of this kind: a listed, active peer as its
 * permissions say; any other peer (it got past the association checks) may do everything.
 */
export function isPermitted(
  policy: AccessPolicy,
  callingAeTitle: string,
  permission: Permission,
): boolean {
  const peer = policy.allowedAes.get(callingAeTitle);
  if (peer === undefined || !peer.is_active) return true;
  switch (permission) {
    case 'store':
      return peer.may_store;
    case 'query':
      return peer.may_query;
    case 'retrieve':
      return peer.may_retrieve;
    default: {
      const unreachable: never = permission;
      throw new Error(`unknown permission ${String(unreachable)}`);
    }
  }
}
