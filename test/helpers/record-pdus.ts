/**
 * Records the upper-layer PDUs of real DICOM exchanges: a TCP proxy on 127.0.0.1 that forwards a
 * requestor's connection to an acceptor and writes every PDU seen in either direction to a hex
 * fixture file. This is how the fixtures in `test/fixtures/pdu/` were made (see their comments).
 *
 * Layer: test helper, a command-line tool. It cuts PDUs with its own minimal reading of the
 * 6-byte PDU header (PS3.8 §9.3.1), independent of `src/network/pdu/`, so that a bug in the code
 * under test cannot shape the fixtures it is tested against.
 *
 * Usage:
 *   npx tsx test/helpers/record-pdus.ts --listen 24105 --target 24104 --out /tmp/rec \
 *     [--connections 1] [--note "echoscu v3.6.7 -> storescp v3.6.7"]...
 * then point the requestor (e.g. `echoscu 127.0.0.1 24105`) at the listening port. Each PDU is
 * written to `<out>/c<connection>-<sequence>-<direction>-<pdu>.hex`, where direction is `rq`
 * (requestor to acceptor) or `ac` (acceptor to requestor). With `--connections n` the proxy
 * exits once n connections have closed.
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatHexFixture } from './hex-fixture.js';

const HOST = '127.0.0.1';
const HEADER_LENGTH = 6;

/** PDU names by type byte (PS3.8 §9.3), used in file names and comments. */
const PDU_NAMES: Readonly<Record<number, string>> = {
  1: 'a-associate-rq',
  2: 'a-associate-ac',
  3: 'a-associate-rj',
  4: 'p-data-tf',
  5: 'a-release-rq',
  6: 'a-release-rp',
  7: 'a-abort',
};

type Direction = 'rq' | 'ac';

const DIRECTION_TEXT: Readonly<Record<Direction, string>> = {
  rq: 'requestor -> acceptor',
  ac: 'acceptor -> requestor',
};

interface RecorderOptions {
  readonly listenPort: number;
  readonly targetPort: number;
  readonly outDir: string;
  readonly notes: readonly string[];
  /** Exit after this many connections have closed; undefined runs until killed. */
  readonly connections: number | undefined;
}

/** Cuts whole PDUs out of one direction of the stream; chunks are joined once per PDU. */
class PduCutter {
  #chunks: Buffer[] = [];
  #buffered = 0;

  push(chunk: Buffer): Buffer[] {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    const pdus: Buffer[] = [];
    for (;;) {
      if (this.#buffered < HEADER_LENGTH) return pdus;
      const joined = this.#joined();
      const total = HEADER_LENGTH + joined.readUInt32BE(2);
      if (this.#buffered < total) return pdus;
      pdus.push(Buffer.from(joined.subarray(0, total)));
      this.#chunks = joined.length > total ? [joined.subarray(total)] : [];
      this.#buffered -= total;
    }
  }

  /** Bytes left over when the connection closed: a PDU cut short. */
  get rest(): Buffer {
    return this.#joined();
  }

  #joined(): Buffer {
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks, this.#buffered)];
    return this.#chunks[0] ?? Buffer.alloc(0);
  }
}

/** Writes one recorded PDU as a hex fixture and prints a line about it. */
function writePdu(
  options: RecorderOptions,
  connection: number,
  sequence: number,
  direction: Direction,
  pdu: Buffer,
  isPartial: boolean,
): void {
  const type = pdu[0] ?? -1;
  const name = PDU_NAMES[type] ?? `unknown-${type.toString(16)}`;
  const file = `c${connection}-${String(sequence).padStart(3, '0')}-${direction}-${name}${
    isPartial ? '-partial' : ''
  }.hex`;
  const comments = [
    'Recorded by test/helpers/record-pdus.ts (TCP proxy on 127.0.0.1).',
    `Connection ${connection}, PDU ${sequence}, ${DIRECTION_TEXT[direction]}.`,
    `${name.toUpperCase()} (type 0x${type.toString(16).padStart(2, '0')}), ${pdu.length} bytes with header${
      isPartial ? ', cut short: the connection closed first' : ''
    }.`,
    ...options.notes,
  ];
  writeFileSync(join(options.outDir, file), formatHexFixture(comments, pdu));
  process.stdout.write(`${file} ${pdu.length} bytes\n`);
}

/** Forwards one accepted connection to the target and records both directions. */
function proxyConnection(
  options: RecorderOptions,
  connection: number,
  requestor: Socket,
  onClosed: () => void,
): void {
  const acceptor = connect({ host: HOST, port: options.targetPort });
  let sequence = 0;
  let openSockets = 2;
  const record = (direction: Direction, source: Socket, sink: Socket): void => {
    const cutter = new PduCutter();
    source.on('data', (chunk: Buffer) => {
      sink.write(chunk);
      for (const pdu of cutter.push(chunk)) {
        sequence += 1;
        writePdu(options, connection, sequence, direction, pdu, false);
      }
    });
    source.on('end', () => sink.end());
    source.on('error', (error) => {
      process.stderr.write(`connection ${connection} ${direction}: ${error.message}\n`);
      sink.destroy();
    });
    source.on('close', () => {
      if (cutter.rest.length > 0) {
        sequence += 1;
        writePdu(options, connection, sequence, direction, cutter.rest, true);
      }
      openSockets -= 1;
      if (openSockets === 0) onClosed();
    });
  };
  record('rq', requestor, acceptor);
  record('ac', acceptor, requestor);
}

function parseOptions(): RecorderOptions {
  const { values } = parseArgs({
    options: {
      listen: { type: 'string' },
      target: { type: 'string' },
      out: { type: 'string' },
      note: { type: 'string', multiple: true },
      connections: { type: 'string' },
    },
  });
  const port = (text: string | undefined, flag: string): number => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < 1 || value > 65535) {
      throw new Error(`--${flag} needs a TCP port number`);
    }
    return value;
  };
  if (values.out === undefined) throw new Error('--out needs a directory');
  return {
    listenPort: port(values.listen, 'listen'),
    targetPort: port(values.target, 'target'),
    outDir: values.out,
    notes: values.note ?? [],
    connections: values.connections === undefined ? undefined : Number(values.connections),
  };
}

function main(): void {
  const options = parseOptions();
  mkdirSync(options.outDir, { recursive: true });
  let accepted = 0;
  let closed = 0;
  const server = createServer((requestor) => {
    accepted += 1;
    proxyConnection(options, accepted, requestor, () => {
      closed += 1;
      if (options.connections !== undefined && closed >= options.connections) server.close();
    });
  });
  server.listen(options.listenPort, HOST, () => {
    process.stdout.write(
      `recording ${HOST}:${options.listenPort} -> ${HOST}:${options.targetPort} into ${options.outDir}\n`,
    );
  });
}

main();
