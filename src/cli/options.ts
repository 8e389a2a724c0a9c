/**
 * Parsers for command-line values, each failing with a message that names what is wrong.
 *
 * Layer: cli.
 */

import { InvalidArgumentError, Option } from 'commander';

/** An integer within [min, max]. */
export function integerIn(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}`);
    }
    return n;
  };
}

/** A number (fractions allowed) within [min, max]. */
export function numberIn(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`must be a number from ${min} to ${max}`);
    }
    return n;
  };
}

/** Seconds as a positive number, returned in milliseconds. */
export function secondsToMs(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 86_400) {
    throw new InvalidArgumentError('must be a number of seconds above 0 and at most 86400');
  }
  return Math.round(n * 1000);
}

/**
 * An AE title: 1 to 16 characters of the default repertoire, no backslash or control
 * characters, not only spaces (PS3.5 §6.2, VR AE). Leading and trailing spaces are dropped.
 */
export function aeTitle(value: string): string {
  const trimmed = value.trim();
  if (
    trimmed.length === 0 ||
    trimmed.length > 16 ||
    !/^[\x20-\x7e]+$/.test(trimmed) ||
    trimmed.includes('\\')
  ) {
    throw new InvalidArgumentError('must be 1 to 16 printable ASCII characters without backslash');
  }
  return trimmed;
}

/** The --aec and --aet options every SCU command takes. */
export function peerAeOptions(): [calledAe: Option, callingAe: Option] {
  return [
    new Option('--aec <title>', 'called AE title (the peer)').default('ANY-SCP').argParser(aeTitle),
    new Option('--aet <title>', 'calling AE title (us)').default('DICOM-SERVER').argParser(aeTitle),
  ];
}
