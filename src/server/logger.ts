/**
 * The root logger: JSON lines (pino), made readable with pino-pretty only when writing to a
 * terminal. Everything else receives child loggers from here.
 *
 * Layer: server.
 */

import { type LevelWithSilent, type Logger, pino } from 'pino';
import pretty from 'pino-pretty';

/** Makes the root logger at `level`, writing to standard output. */
export function createLogger(level: LevelWithSilent = 'info'): Logger {
  const options = { level, base: { pid: process.pid } };
  if (process.stdout.isTTY) {
    return pino(
      options,
      pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }),
    );
  }
  return pino(options);
}
