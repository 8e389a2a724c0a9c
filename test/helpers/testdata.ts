/**
 * Where the shared test data is: `../shared/testdata` beside the project, wherever the
 * project was cloned.
 */

import { resolve } from 'node:path';

/** The storable Part 10 files (testdata/dicom). */
export const TESTDATA_DICOM = resolve(import.meta.dirname, '../../../shared/testdata/dicom');

/** The files that parse but are not storable as they are (testdata/dicom-parse-only). */
export const TESTDATA_PARSE_ONLY = resolve(
  import.meta.dirname,
  '../../../shared/testdata/dicom-parse-only',
);
