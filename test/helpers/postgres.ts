/**
 * Where the PostgreSQL tests connect: the machines' server (trust auth, database `test`), or
 * what scripts/test.sh set up and exported.
 */
export const POSTGRES_URL =
  process.env.DICOM_SERVER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
