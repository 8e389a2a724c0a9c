/**
 * Index tests on both databases: a suite run once on SQLite and once on PostgreSQL, each test
 * with a fresh database (a new data directory, a new schema), closed and removed after it.
 *
 * Layer: test helper.
 */

import { afterEach, beforeEach, describe } from 'vitest';
import type { OpenDatabase } from '../../src/db/dialect.js';
import { type Backend, postgresBackend, sqliteBackend } from './postgres.js';

/** The database of the test running now. */
export interface CurrentDatabase {
  readonly database: OpenDatabase;
  /** Another connection to the same database (a second process); the caller closes it. */
  openAnother(): Promise<OpenDatabase>;
}

/**
 * Describes `suite` as "`title` on SQLite" and "`title` on PostgreSQL"; `on.database` is the
 * running test's database (the suite's own beforeEach hooks run after it is opened).
 */
export function describeOnEachBackend(
  title: string,
  name: string,
  suite: (on: CurrentDatabase) => void,
): void {
  describe.each([
    ['SQLite', () => sqliteBackend(`${name}-repository-test`)],
    ['PostgreSQL', () => postgresBackend(name)],
  ])(`${title} on %s`, (_backendName, makeBackend) => {
    let backend: Backend | undefined;
    let opened: OpenDatabase | undefined;
    beforeEach(async () => {
      backend = makeBackend();
      opened = await backend.open();
    });
    afterEach(async () => {
      await opened?.close();
      await backend?.dispose();
      opened = undefined;
      backend = undefined;
    });
    suite({
      get database(): OpenDatabase {
        if (opened === undefined) throw new Error('no database outside a test');
        return opened;
      },
      openAnother(): Promise<OpenDatabase> {
        if (backend === undefined) throw new Error('no database outside a test');
        return backend.open();
      },
    });
  });
}
