/**
 * Helpers shared by the benchmarks: free ports, waiting for a listener, the DCMTK environment.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { SERVE_NODE_FLAGS } from '../src/cli/node-flags.js';

/** DCMTK tools with Nagle's algorithm off: Debian's build otherwise measures its own 40 ms stalls. */
export const TOOL_ENV = { ...process.env, TCP_NODELAY: '1' };

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts connections on the port (10 s at most). */
export async function waitForPort(port: number): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const isOpen = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (isOpen) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`nothing listens on ${port}`);
}

/** Starts our built server (`npm run build` first) on a free port with `args` added; resolves once it listens. */
export async function startDicomServer(
  args: readonly string[],
): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      // As every launcher of ours starts it (npm start, the image, the systemd unit).
      ...SERVE_NODE_FLAGS,
      'dist/src/cli/main.js',
      'serve',
      '--dicom-port',
      String(port),
      '--dicom-host',
      '127.0.0.1',
      '--http-host',
      '127.0.0.1',
      '--http-port',
      '0',
      '--log-level',
      'warn',
      ...args,
    ],
    // A password of its own for the first start's console user, so that none is printed.
    {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, DICOM_SERVER_ADMIN_PASSWORD: 'bench-only-password' },
    },
  );
  await waitForPort(port);
  return { child, port };
}
