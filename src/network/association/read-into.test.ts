/**
 * Checks `readInto` on real loopback sockets: an accepted socket reads into the memory given,
 * every byte arrives in order however the reads fall, pausing holds the data back until resumed,
 * and the socket still ends and closes as usual.
 *
 * Layer: network/association (unit test, real TCP on 127.0.0.1).
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { readInto } from './read-into.js';

const servers: net.Server[] = [];

afterEach(async () => {
  await Promise.all(
    servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))),
  );
});

/** A server whose first accepted socket is handed to `onSocket`; resolves with its port. */
async function listen(onSocket: (socket: net.Socket) => void): Promise<number> {
  const server = net.createServer(onSocket);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

/** A receiver that reads into one small reused buffer and keeps copies of what it got. */
function receiver(size: number) {
  const memory = Buffer.alloc(size);
  const state = { received: [] as Buffer[], isPausing: false };
  return {
    state,
    target: () => memory,
    /** Keeps a copy, overwrites the memory (as the framer reuses it); false to pause. */
    onRead(bytes: number): boolean {
      state.received.push(Buffer.from(memory.subarray(0, bytes)));
      memory.fill(0xab);
      return !state.isPausing;
    },
  };
}

describe('readInto', () => {
  it('reads an accepted socket into the memory given, every byte in order', async () => {
    const sent = randomBytes(3 * 1024 * 1024 + 17);
    const reader = receiver(64 * 1024);
    let isReadingInto = false;
    let dataEvents = 0;
    const ended = new Promise<void>((resolve) => {
      void listen((socket) => {
        isReadingInto = readInto(socket, reader.target, (bytes) => reader.onRead(bytes));
        socket.on('data', () => {
          dataEvents += 1;
        });
        socket.on('end', () => resolve());
      }).then((port) => {
        const client = net.connect(port, '127.0.0.1', () => client.end(sent));
      });
    });
    await ended;
    expect(isReadingInto).toBe(true);
    expect(dataEvents).toBe(0);
    expect(Buffer.concat(reader.state.received).equals(sent)).toBe(true);
    expect(reader.state.received.every((chunk) => chunk.length <= 64 * 1024)).toBe(true);
  });

  it('holds the data back while paused and reads on when resumed', async () => {
    const sent = randomBytes(512 * 1024);
    const reader = receiver(16 * 1024);
    reader.state.isPausing = true;
    let accepted!: net.Socket;
    const ended = new Promise<void>((resolve) => {
      void listen((socket) => {
        accepted = socket;
        readInto(socket, reader.target, (bytes) => reader.onRead(bytes));
        socket.on('end', () => resolve());
      }).then((port) => {
        const client = net.connect(port, '127.0.0.1', () => client.end(sent));
      });
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    // One read came in; its false paused the socket, so nothing more was read meanwhile.
    expect(reader.state.received.length).toBe(1);
    reader.state.isPausing = false;
    accepted.resume();
    await ended;
    expect(Buffer.concat(reader.state.received).equals(sent)).toBe(true);
  });
});
