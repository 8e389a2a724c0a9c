/**
 * What the query and retrieve services reach through their ports, made of the index and the
 * live settings: matches from the index's query repository, retrievable files resolved against
 * the storage root (and refused if an index row points outside it), and move destinations from
 * the allowed AE titles.
 *
 * Layer: server.
 */

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
    retrievable: async (query, signal) =>
      (await index.retrievable(query, signal)).map((instance) => ({
        ...instance,
        filePath: resolveInside(storageRoot, instance.filePath),
      })),
  };
}

/**
 * Move destinations: the active allowed AE titles marked as move destinations that have a host
 * and port, as the access policy holds them now (it is refreshed for every association).
 */
export function moveDestinationsOf(policy: () => AccessPolicy): MoveDestinations {
  return {
    lookup: (aeTitle) => {
      const peer = policy().allowedAes.get(aeTitle.trim());
      if (peer === undefined || !peer.is_active || !peer.is_move_destination) return undefined;
      if (peer.host === '' || peer.port === null) return undefined;
      return { host: peer.host, port: peer.port };
    },
  };
}
