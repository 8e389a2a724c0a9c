import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DicomServerError } from '../../errors.js';
import {
  eventEnvironmentValue,
  parseCommandLine,
  runProcessingCommand,
  seriesFolder,
} from './command.js';
import type { HandoffEvent, HandoffFile } from './types.js';
import { eventPayload } from './webhook.js';

const SERIES_UID = '1.2.826.0.1.3680043.2.1125.7.1.1';

function fileAt(path: string, n: number): HandoffFile {
  return {
    sopInstanceUid: `${SERIES_UID}.${n}`,
    sopClassUid: '1.2.840.10008.5.1.4.1.1.4',
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    path,
    sizeBytes: 2048,
  };
}

function eventWith(files: readonly HandoffFile[], folder?: string): HandoffEvent {
  return {
    type: 'series.updated',
    idempotencyKey: `${SERIES_UID}:2`,
    occurredAt: '2025-03-01T10:00:00.000Z',
    ...(folder === undefined ? {} : { folder }),
    series: {
      patientId: 'PAT1',
      patientName: null,
      studyInstanceUid: '1.2.826.0.1.3680043.2.1125.7.1',
      studyDate: null,
      studyDescription: null,
      accessionNumber: null,
      seriesInstanceUid: SERIES_UID,
      seriesNumber: null,
      seriesDescription: null,
      modality: 'MR',
      files,
    },
  };
}

let work: string;
let recordScript: string;
let sleepScript: string;
const node = JSON.stringify(process.execPath);

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'handoff-command-'));
  // Records its argv and the event variables, writes a line to stderr, exits with argv[3].
  recordScript = join(work, 'record.mjs');
  writeFileSync(
    recordScript,
    [
      "import { writeFileSync } from 'node:fs';",
      'const [out, code, ...rest] = process.argv.slice(2);',
      'const { DICOM_SERVER_EVENT: event, DICOM_SERVER_EVENT_TYPE: type } = process.env;',
      'writeFileSync(out, JSON.stringify({ rest, event, type }));',
      "process.stderr.write('x'.repeat(5000) + '\\nsegmentation failed: no brain found\\n');",
      'process.exit(Number(code));',
    ].join('\n'),
  );
  // A script that starts a child and waits for it: both must go when the run times out.
  sleepScript = join(work, 'sleep.sh');
  writeFileSync(sleepScript, '#!/bin/sh\nsleep 30 &\necho $! > "$1"\nwait\n');
  chmodSync(sleepScript, 0o755);
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

interface Recorded {
  readonly rest: string[];
  readonly event: string;
  readonly type: string;
}

function recorded(out: string): Recorded {
  return JSON.parse(readFileSync(out, 'utf8')) as Recorded;
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

/** True when `pid` names no live process (gone, or a zombie nobody reaped yet). */
function isDead(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  return !existsSync(stat) || / Z /.test(readFileSync(stat, 'utf8'));
}

describe('runProcessingCommand', () => {
  it('passes the quoted arguments, then the folder, and the event in the environment', async () => {
    const out = join(work, 'ok.json');
    const event = eventWith([fileAt('/data/s/IM1.dcm', 1)], '/handler/study/series dir');
    const command = `${node} ${recordScript} ${out} 0 'two words' "a \\"quoted\\" one" $HOME`;
    await runProcessingCommand(command, event);
    const { rest, event: json, type } = recorded(out);
    expect(rest).toEqual(['two words', 'a "quoted" one', '$HOME', '/handler/study/series dir']);
    expect(type).toBe('series.updated');
    expect(JSON.parse(json)).toEqual(eventPayload(event));
  });

  it('gives the folder of the stored files when no copy was made', async () => {
    const out = join(work, 'stored.json');
    const files = [
      fileAt('/data/storage/P/ST/SE/IM1.dcm', 1),
      fileAt('/data/storage/P/ST/SE/IM2.dcm', 2),
    ];
    await runProcessingCommand(`${node} ${recordScript} ${out} 0`, eventWith(files));
    expect(recorded(out).rest).toEqual(['/data/storage/P/ST/SE']);
  });

  it('rejects on a non-zero exit with the code and the tail of standard error', async () => {
    const out = join(work, 'fail.json');
    const failure = await failureOf(
      runProcessingCommand(`${node} ${recordScript} ${out} 3`, eventWith([], '/handler/x')),
    );
    expect(failure.details).toMatchObject({ action: 'command', exitCode: 3, timedOut: false });
    const tail = String(failure.details.stderrTail);
    expect(tail.endsWith('segmentation failed: no brain found\n')).toBe(true);
    expect(tail.length).toBeLessThanOrEqual(2048);
    expect(existsSync(out)).toBe(true);
  });

  it('ends the command and the processes it started when the timeout passes', async () => {
    const pidFile = join(work, 'sleep.pid');
    const failure = await failureOf(
      runProcessingCommand(sleepScript, eventWith([], pidFile), { timeoutMs: 300 }),
    );
    expect(failure.details).toMatchObject({ timedOut: true, signal: 'SIGTERM' });
    // The command's own child was signalled with it; on a loaded machine it may take a moment
    // to be scheduled and die.
    const pid = Number(readFileSync(pidFile, 'utf8'));
    for (let waited = 0; !isDead(pid) && waited < 2000; waited += 20) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(isDead(pid)).toBe(true);
  });

  it('ends the command when its signal is aborted', async () => {
    const pidFile = join(work, 'abort.pid');
    const controller = new AbortController();
    const run = runProcessingCommand(sleepScript, eventWith([], pidFile), {
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 100);
    const failure = await failureOf(run);
    expect(failure.details).toMatchObject({ cancelled: true, timedOut: false });
  });

  it('rejects when the program does not exist', async () => {
    const failure = await failureOf(
      runProcessingCommand(join(work, 'no-such-program'), eventWith([], '/handler/x')),
    );
    expect(failure.cause).toMatchObject({ code: 'ENOENT' });
  });

  it('rejects a command line with an unterminated quote without running anything', async () => {
    const failure = await failureOf(runProcessingCommand(`${node} "unclosed`, eventWith([], '/x')));
    expect(failure.cause).toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });

  it('leaves the file list out of the environment when it would be too long', async () => {
    const out = join(work, 'large.json');
    const files = Array.from({ length: 3000 }, (_, i) =>
      fileAt(`/data/storage/PATIENT/STUDY/SERIES/${'long-name-'.repeat(4)}${i}.dcm`, i),
    );
    await runProcessingCommand(`${node} ${recordScript} ${out} 0`, eventWith(files));
    const payload = JSON.parse(recorded(out).event) as Record<string, unknown>;
    expect(payload).toMatchObject({ instanceCount: 3000, files: [], filesOmitted: true });
    expect(recorded(out).rest).toEqual(['/data/storage/PATIENT/STUDY/SERIES']);
  });
});

describe('parseCommandLine', () => {
  it('splits on whitespace and honours quotes and escapes without expanding anything', () => {
    expect(parseCommandLine('  /opt/seg/run   --fast\t-o out  ')).toEqual([
      '/opt/seg/run',
      '--fast',
      '-o',
      'out',
    ]);
    expect(parseCommandLine(`run 'it''s' "a b" c\\ d "" '$X' "\\\\"`)).toEqual([
      'run',
      'its',
      'a b',
      'c d',
      '',
      '$X',
      '\\',
    ]);
    expect(parseCommandLine(`run "it's" 'say "hi"'`)).toEqual(['run', "it's", 'say "hi"']);
  });

  it('refuses an empty command and an unterminated quote', () => {
    for (const command of ['', '   ', 'run "open', "run 'open"]) {
      expect(() => parseCommandLine(command)).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
      );
    }
  });
});

describe('seriesFolder', () => {
  it('is the copy when there is one, else the deepest folder holding every file', () => {
    const files = [fileAt('/data/a/b/c/1.dcm', 1), fileAt('/data/a/b/d/2.dcm', 2)];
    expect(seriesFolder(eventWith(files, '/handler/s'))).toBe('/handler/s');
    expect(seriesFolder(eventWith(files))).toBe('/data/a/b');
    expect(seriesFolder(eventWith([fileAt('/1.dcm', 1), fileAt('/data/2.dcm', 2)]))).toBe('/');
  });

  it('keeps a small event whole in the environment', () => {
    const event = eventWith([fileAt('/data/1.dcm', 1)]);
    expect(JSON.parse(eventEnvironmentValue(event))).toEqual(eventPayload(event));
  });
});
