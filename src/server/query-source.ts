/**
 * What the query and retrieve services reach through their ports, made of the index and the
 * live settings: matches (and their count) from the index's query repository, retrievable files
 * resolved against the storage root (an index row pointing outside it is marked unavailable,
 * so that only its sub-operation fails), and move destinations from the allowed AE titles.
 *
 * Layer: server.
 */

import type { RetrievableInstance } from '../dicom/query/model.js';
import { hasCode } from '../errors.js';
import type { TlsClientOptions } from '../network/tls.js';
import type { MoveDestinations, QuerySource } from '../services/ports.js';
import { resolveInside } from '../storage/layout.js';
import type { AccessPolicy } from './access-control.js';

/** The part of the query repository the services use (see db/repositories/query-repository.ts). */
export type QueryIndex = {
  readonly [K in keyof QuerySource]: QuerySource[K];
};

/** The index as a QuerySource, file paths made absolute under `storageRoot`. */
export function indexQuerySource(index: QueryIndex, storageRoot: string): QuerySource {
  return {
    find: (query, signal) => index.find(query, signal),
    count: (query, limit, signal) => index.count(query, limit, signal),
    retrievable: async (query, signal) =>
      (await index.retrievable(query, signal)).map((instance) =>
        withAbsolutePath(instance, storageRoot),
      ),
  };
}

/**
 * The instance with its file path made absolute under the storage root; marked unavailable,
 * its path left as the index holds it, when that path would lead out of the root.
 */
function withAbsolutePath(instance: RetrievableInstance, storageRoot: string): RetrievableInstance {
  try {
    return { ...instance, filePath: resolveInside(storageRoot, instance.filePath) };
  } catch (error) {
    if (!hasCode(error, 'ERR_INVALID_ARGUMENT')) throw error;
    return { ...instance, unavailable: 'file path outside the storage root' };
  }
}

/**
 * Move destinations: the active allowed AE titles marked as move destinations that have a host
 * and port, as the access policy holds them now (it is refreshed for every association); one
 * marked use_tls is reached over TLS with `clientTls`.
 */
export function moveDestinationsOf(
  policy: () => AccessPolicy,
  clientTls?: TlsClientOptions,
): MoveDestinations {
  return {
    lookup: (aeTitle) => {
      const peer = policy().allowedAes.get(aeTitle.trim());
      if (peer === undefined || !peer.is_active || !peer.is_move_destination) return undefined;
      if (peer.host === '' || peer.port === null) return undefined;
      return {
        host: peer.host,
        port: peer.port,
        ...(peer.use_tls && clientTls !== undefined && { tls: clientTls }),
      };
    },
  };
}
