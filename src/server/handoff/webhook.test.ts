import { createHmac } from 'node:crypto';
import {
  createServer,
  type IncomingHttpHeaders,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DicomServerError } from '../../errors.js';
import type { HandoffEvent } from './types.js';
import { deliverWebhook, eventPayload } from './webhook.js';

const SECRET = 'topsecret-🔑';

const event: HandoffEvent = {
  type: 'series.completed',
  idempotencyKey: '1.2.826.0.1.3680043.2.1125.7.1.1:1',
  occurredAt: '2025-03-01T10:00:00.000Z',
  folder: '/handler/1.2.826.0.1.3680043.2.1125.7.1/1.2.826.0.1.3680043.2.1125.7.1.1',
  series: {
    patientId: 'PAT1',
    patientName: 'Doe^Jane',
    studyInstanceUid: '1.2.826.0.1.3680043.2.1125.7.1',
    studyDate: '20250301',
    studyDescription: 'Head',
    accessionNumber: 'ACC7',
    seriesInstanceUid: '1.2.826.0.1.3680043.2.1125.7.1.1',
    seriesNumber: 3,
    seriesDescription: 'Axial',
    modality: 'CT',
    files: [1, 2].map((n) => ({
      sopInstanceUid: `1.2.826.0.1.3680043.2.1125.7.1.1.${n}`,
      sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
      transferSyntaxUid: '1.2.840.10008.1.2.1',
      path: `/data/storage/PAT1/IM${n}.dcm`,
      sizeBytes: 1000 + n,
    })),
  },
};

interface ReceivedRequest {
  readonly method: string | undefined;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

interface Receiver {
  readonly url: string;
  readonly requests: ReceivedRequest[];
  readonly server: Server;
}

const servers: Server[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

/** A webhook receiver on 127.0.0.1, port 0; `answer` decides the response to each request. */
async function startReceiver(
  answer: (response: ServerResponse, index: number) => void,
): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      requests.push({
        method: request.method,
        headers: request.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      answer(response, requests.length - 1);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hooks/dicom`, requests, server };
}

function reply(status: number, body = ''): (response: ServerResponse) => void {
  return (response) => response.writeHead(status, { 'Content-Type': 'text/plain' }).end(body);
}

async function failureOf(promise: Promise<unknown>): Promise<DicomServerError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DicomServerError);
  expect((error as DicomServerError).code).toBe('ERR_HANDOFF_FAILED');
  return error as DicomServerError;
}

describe('deliverWebhook', () => {
  it('POSTs the event as JSON, signed with HMAC-SHA256 over timestamp and body', async () => {
    const receiver = await startReceiver(reply(204));
    const before = Math.floor(Date.now() / 1000);
    expect(await deliverWebhook(receiver.url, event, SECRET)).toEqual({ status: 204 });
    const [request] = receiver.requests;
    expect(receiver.requests).toHaveLength(1);
    expect(request!.method).toBe('POST');
    const { headers, body } = request!;
    expect(headers['content-type']).toBe('application/json');
    expect(headers['x-dicom-server-event']).toBe('series.completed');
    expect(headers['idempotency-key']).toBe(event.idempotencyKey);
    const timestamp = headers['x-dicom-server-timestamp'] as string;
    expect(Number(timestamp)).toBeGreaterThanOrEqual(before);
    expect(Number(timestamp)).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
    const expected = createHmac('sha256', SECRET).update(`${timestamp}.${body}`).digest('hex');
    expect(headers['x-dicom-server-signature']).toBe(`sha256=${expected}`);
    expect(JSON.parse(body)).toEqual({
      type: 'series.completed',
      idempotencyKey: event.idempotencyKey,
      occurredAt: '2025-03-01T10:00:00.000Z',
      patientId: 'PAT1',
      patientName: 'Doe^Jane',
      studyInstanceUid: '1.2.826.0.1.3680043.2.1125.7.1',
      studyDate: '20250301',
      studyDescription: 'Head',
      accessionNumber: 'ACC7',
      seriesInstanceUid: '1.2.826.0.1.3680043.2.1125.7.1.1',
      seriesNumber: 3,
      seriesDescription: 'Axial',
      modality: 'CT',
      instanceCount: 2,
      folder: event.folder,
      files: event.series.files,
    });
  });

  it('sends no signature when the secret is empty, and a null folder when no copy was made', async () => {
    const receiver = await startReceiver(reply(200));
    const { folder: _, ...withoutFolder } = event;
    await deliverWebhook(receiver.url, withoutFolder, '');
    const { headers, body } = receiver.requests[0]!;
    expect(headers['x-dicom-server-signature']).toBeUndefined();
    expect(headers['x-dicom-server-timestamp']).toMatch(/^\d+$/);
    expect(JSON.parse(body)).toMatchObject({ folder: null, instanceCount: 2 });
  });

  it('rejects on a 500 with status and body excerpt, then delivers the same key on a 200', async () => {
    const receiver = await startReceiver((response, index) =>
      index === 0
        ? reply(500, `database locked ${'x'.repeat(5000)}`)(response)
        : reply(200)(response),
    );
    const failure = await failureOf(deliverWebhook(receiver.url, event, SECRET));
    expect(failure.details).toMatchObject({ action: 'webhook', status: 500 });
    expect(String(failure.details.bodyExcerpt)).toMatch(/^database locked x+$/);
    expect(String(failure.details.bodyExcerpt).length).toBeLessThanOrEqual(200);
    expect(await deliverWebhook(receiver.url, event, SECRET)).toEqual({ status: 200 });
    expect(receiver.requests.map((r) => r.headers['idempotency-key'])).toEqual([
      event.idempotencyKey,
      event.idempotencyKey,
    ]);
  });

  it('does not follow a redirect', async () => {
    const receiver = await startReceiver((response) =>
      response.writeHead(302, { Location: '/elsewhere' }).end(),
    );
    const failure = await failureOf(deliverWebhook(receiver.url, event, SECRET));
    expect(failure.details.status).toBe(302);
    expect(receiver.requests).toHaveLength(1);
  });

  it('rejects with the network error when the receiver is down', async () => {
    const receiver = await startReceiver(reply(200));
    receiver.server.close();
    await new Promise((resolve) => receiver.server.once('close', resolve));
    const failure = await failureOf(deliverWebhook(receiver.url, event, SECRET));
    expect(failure.details).toMatchObject({ networkError: 'ECONNREFUSED', timedOut: false });
  });

  it('rejects after timeoutMs when the receiver never answers', async () => {
    const receiver = await startReceiver(() => {
      // Never answers: the request is read, the response left open.
    });
    const failure = await failureOf(
      deliverWebhook(receiver.url, event, SECRET, { timeoutMs: 300 }),
    );
    expect(failure.details).toMatchObject({ timedOut: true, timeoutMs: 300 });
    expect(receiver.requests).toHaveLength(1);
  });

  it('stops when its signal is aborted', async () => {
    const receiver = await startReceiver(() => {});
    const controller = new AbortController();
    const delivery = deliverWebhook(receiver.url, event, SECRET, { signal: controller.signal });
    await new Promise<void>((resolve) => receiver.server.once('request', () => resolve()));
    controller.abort();
    const failure = await failureOf(delivery);
    expect(failure.details.timedOut).toBe(false);
  });

  it('keeps user name and password of the URL out of the error details', async () => {
    const receiver = await startReceiver(reply(401));
    const url = receiver.url.replace('http://', 'http://hook:pa55@');
    const failure = await failureOf(deliverWebhook(url, event, SECRET));
    expect(failure.details.url).toBe(receiver.url);
    expect(receiver.requests[0]!.headers.authorization).toMatch(/^Basic /);
  });

  it('refuses a URL that is not http or https', async () => {
    await failureOf(deliverWebhook('ftp://127.0.0.1/hook', event, SECRET));
    await failureOf(deliverWebhook('not a url', event, SECRET));
  });
});

describe('eventPayload', () => {
  it('counts the instances and lists the stored files', () => {
    const payload = eventPayload(event);
    expect(payload.instanceCount).toBe(2);
    expect(payload.files.map((file) => file.path)).toEqual([
      '/data/storage/PAT1/IM1.dcm',
      '/data/storage/PAT1/IM2.dcm',
    ]);
  });
});
