/**
 * `dicom-server health`: asks a running server's health endpoint (`GET /dicom-server/api/health/`
 * on its web port) whether it is up: the container image's HEALTHCHECK, a monitoring probe, an
 * administrator after `systemctl start`. It reads the web port and address from the same
 * `DICOM_SERVER_HTTP_PORT` and `DICOM_SERVER_HTTP_HOST` as `serve`, so in the server's own
 * environment it needs no flag.
 *
 * Healthy (exit 0, one line on stdout): the endpoint answers 200 with status "ok" and the DICOM
 * service is not in error (stopped by an administrator counts as healthy: it is on purpose).
 * Unhealthy (exit 1, one line on stderr saying why): nothing listens, no answer within the
 * timeout, another HTTP status or body, the DICOM service in error. Docker reads 0 as healthy
 * and 1 as unhealthy and reserves 2, so usage errors exit 1 too (commander's default).
 *
 * Imports no server code, only commander and the option parsers: in a container it runs every
 * half minute, and loading the web layer for one GET would cost more than the GET.
 *
 * Layer: cli.
 */

import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { integerIn, secondsToMs } from './options.js';

/** The health endpoint's path: `API_PREFIX` of src/web/app.ts and `/health/`, written out (see above). */
export const HEALTH_PATH = '/dicom-server/api/health/';

/** Exit codes of `health`, as container runtimes read them. */
export const HealthExitCode = { Healthy: 0, Unhealthy: 1 } as const;

/** The answer bodies larger than this are not a health answer: read no further. */
const MAX_BODY_BYTES = 64 * 1024;

interface HealthCliOptions {
  readonly httpHost: string;
  readonly httpPort: number;
  readonly url: string | undefined;
  readonly timeout: number;
}

/** What the check found: healthy or not, and one line saying so. */
export interface HealthOutcome {
  readonly isHealthy: boolean;
  readonly message: string;
}

/**
 * The health URL of a server listening on `host`:`port`. A wildcard listen address (0.0.0.0,
 * ::, empty) is asked on the loopback address of its family: the check runs beside the server.
 */
export function healthUrl(host: string, port: number): string {
  const wildcards: Record<string, string> = {
    '': '127.0.0.1',
    '0.0.0.0': '127.0.0.1',
    '::': '::1',
  };
  const target = wildcards[host.trim()] ?? host.trim();
  return `http://${target.includes(':') ? `[${target}]` : target}:${port}${HEALTH_PATH}`;
}

/** An http or https URL, or a usage error naming what is wrong. */
function httpUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidArgumentError(
      'must be an absolute URL (http://HOST:PORT/dicom-server/api/health/)',
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError('must be an http:// or https:// URL');
  }
  return url.href;
}

/** The reason a request got no answer, in words. */
function unreachableReason(error: unknown, timeoutMs: number): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ERR_HEALTH_TIMEOUT') return `no answer within ${timeoutMs / 1000} s`;
  if (code === 'ECONNREFUSED') return 'connection refused: nothing listens there (ECONNREFUSED)';
  const message = error instanceof Error ? error.message : String(error);
  return code === undefined || message.includes(code) ? message : `${message} (${code})`;
}

/** GETs `url` (no keep-alive: the process ends right after); the status and up to 64 KiB of body. */
function fetchOnce(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith('https:') ? httpsGet : httpGet;
    const request = get(url, { agent: false, headers: { accept: 'application/json' } });
    const timer = setTimeout(() => {
      request.destroy(Object.assign(new Error('timed out'), { code: 'ERR_HEALTH_TIMEOUT' }));
    }, timeoutMs);
    request.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    request.once('response', (response: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let length = 0;
      response.on('data', (chunk: Buffer) => {
        length += chunk.length;
        if (length <= MAX_BODY_BYTES) chunks.push(chunk);
      });
      response.once('end', () => {
        clearTimeout(timer);
        resolve({
          status: response.statusCode ?? 0,
          body: Buffer.concat(chunks).toString('utf8'),
        });
      });
      response.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  });
}

/** The health answer's `service` field when the body is `{"status":"ok", ...}`; else undefined. */
function serviceStateOf(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { status?: unknown; service?: unknown };
    return parsed.status === 'ok' ? String(parsed.service) : undefined;
  } catch {
    return undefined;
  }
}

/** Asks the health endpoint at `url` and judges the answer. */
export async function checkHealth(url: string, timeoutMs: number): Promise<HealthOutcome> {
  let answer: { status: number; body: string };
  try {
    answer = await fetchOnce(url, timeoutMs);
  } catch (error) {
    return {
      isHealthy: false,
      message: `unhealthy: ${url}: ${unreachableReason(error, timeoutMs)}`,
    };
  }
  if (answer.status !== 200) {
    return {
      isHealthy: false,
      message: `unhealthy: ${url} answered HTTP ${answer.status}, not the health answer of a dicom-server`,
    };
  }
  const service = serviceStateOf(answer.body);
  if (service === undefined) {
    return {
      isHealthy: false,
      message: `unhealthy: ${url} answered without {"status":"ok"}: not a dicom-server health endpoint`,
    };
  }
  if (service === 'error') {
    return {
      isHealthy: false,
      message: `unhealthy: the web console answers but the DICOM service failed (state error): see the server's log or GET /dicom-server/api/status/`,
    };
  }
  return { isHealthy: true, message: `healthy: web console up, DICOM service ${service} (${url})` };
}

/** Adds the `health` command. */
export function registerHealth(program: Command): void {
  program
    .command('health')
    .description(
      'check that a running server answers on its health endpoint (exit 0 healthy, 1 not)',
    )
    .addOption(
      new Option('--http-host <host>', 'the web address the server listens on (as serve)')
        .env('DICOM_SERVER_HTTP_HOST')
        .default('0.0.0.0'),
    )
    .addOption(
      new Option('--http-port <port>', 'the web port the server listens on (as serve)')
        .env('DICOM_SERVER_HTTP_PORT')
        .default(8000)
        .argParser(integerIn(1, 65535)),
    )
    .addOption(
      new Option('--url <url>', 'the health URL to ask instead (another host, https)').argParser(
        httpUrl,
      ),
    )
    .addOption(
      new Option('--timeout <seconds>', 'how long to wait for the answer')
        .default(5_000, '5')
        .argParser(secondsToMs),
    )
    .action(async (options: HealthCliOptions) => {
      const url = options.url ?? healthUrl(options.httpHost, options.httpPort);
      const outcome = await checkHealth(url, options.timeout);
      (outcome.isHealthy ? process.stdout : process.stderr).write(`${outcome.message}\n`);
      process.exitCode = outcome.isHealthy ? HealthExitCode.Healthy : HealthExitCode.Unhealthy;
    });
}
