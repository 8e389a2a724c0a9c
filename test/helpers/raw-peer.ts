/**
 * A raw TCP peer for protocol tests: sends whatever bytes a test gives it and collects the
 * PDUs the server answers with, so that malformed, truncated or slow input can be tried.
 */

import net from 'node:net';
import { decodePdu } from '../../src/network/pdu/decode.js';
import { PduFramer } from '../../src/network/pdu/framer.js';
import type { Pdu } from '../../src/network/pdu/types.js';

/** A raw connection to a server. */
export class RawPeer {
  readonly socket: net.Socket;
  readonly received: Pdu[] = [];
  #framer = new PduFramer(() => 16 * 1024 * 1024);
  #closed: Promise<void>;
  #isClosed = false;
  #waiters: (() => void)[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.#framer.push(chunk);
      for (let bytes = this.#framer.next(); bytes !== null; bytes = this.#framer.next()) {
        this.received.push(decodePdu(bytes));
      }
      this.#wake();
    });
    socket.on('error', () => undefined);
    this.#closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.#isClosed = true;
        this.#wake();
        resolve();
      }),
    );
  }

  /** Connects to 127.0.0.1:port. */
  static connect(port: number, host = '127.0.0.1'): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port }, () => resolve(new RawPeer(socket)));
      socket.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The next PDU of `type` received (waiting up to `timeoutMs`); rejects if the connection closes first. */
  async waitForPdu<T extends Pdu['type']>(
    type: T,
    timeoutMs = 5_000,
  ): Promise<Extract<Pdu, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const found = this.received.find((pdu) => pdu.type === type);
      if (found !== undefined) {
        this.received.splice(this.received.indexOf(found), 1);
        return found as Extract<Pdu, { type: T }>;
      }
      if (this.#isClosed)
        throw new Error(
          `connection closed before ${type}; got ${this.received.map((p) => p.type)}`,
        );
      if (Date.now() > deadline) throw new Error(`no ${type} within ${timeoutMs} ms`);
      await this.#next(deadline - Date.now());
    }
  }

  /** Resolves when the server has closed the connection; rejects after `timeoutMs`. */
  async waitForClose(timeoutMs = 5_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`connection still open after ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([this.#closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  #next(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, Math.max(1, ms));
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }
}
