/**
 * The storage limit: bytes used, tracked incrementally as instances are stored and removed
 * (never by rescanning), and reservations made before a file takes its final name.
 *
 * Layer: storage. Pure bookkeeping.
 */

/** Bytes used against a limit; a limit of 0 means none. */
export class StorageQuota {
  readonly limitBytes: number;
  #used: number;

  constructor(limitBytes: number, usedBytes: number) {
    this.limitBytes = limitBytes;
    this.#used = usedBytes;
  }

  get usedBytes(): number {
    return this.#used;
  }

  /** False when the storage is already at or past its limit. */
  hasRoom(): boolean {
    return this.limitBytes === 0 || this.#used < this.limitBytes;
  }

  /** Counts `bytes` as used if they fit under the limit; false (and nothing counted) otherwise. */
  reserve(bytes: number): boolean {
    if (this.limitBytes !== 0 && this.#used + bytes > this.limitBytes) return false;
    this.#used += bytes;
    return true;
  }

  /** Gives back bytes of a removed file or a failed store. */
  release(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
  }
}
