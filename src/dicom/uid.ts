/**
 * UIDs the code names: the application context, SOP classes it serves, our implementation.
 *
 * Layer: dicom. Pure data. A literal UID in logic elsewhere is a bug; name it here.
 */

/** DICOM Application Context Name (PS3.7 Annex A.2.1). */
export const DICOM_APPLICATION_CONTEXT = '1.2.840.10008.3.1.1.1';

/** SOP classes by their PS3.6 keyword. */
export const SopClass = {
  Verification: '1.2.840.10008.1.1',
  PatientRootQueryRetrieveInformationModelFind: '1.2.840.10008.5.1.4.1.2.1.1',
  PatientRootQueryRetrieveInformationModelMove: '1.2.840.10008.5.1.4.1.2.1.2',
  PatientRootQueryRetrieveInformationModelGet: '1.2.840.10008.5.1.4.1.2.1.3',
  StudyRootQueryRetrieveInformationModelFind: '1.2.840.10008.5.1.4.1.2.2.1',
  StudyRootQueryRetrieveInformationModelMove: '1.2.840.10008.5.1.4.1.2.2.2',
  StudyRootQueryRetrieveInformationModelGet: '1.2.840.10008.5.1.4.1.2.2.3',
} as const;

/**
 * Our Implementation Class UID (PS3.7 §D.3.3.2). Made under the 2.25 arc from a UUID (PS3.5
 * §B.2), which needs no registered organization root.
 */
export const IMPLEMENTATION_CLASS_UID = '2.25.176543093722812408925093645385417629451';

/** Our Implementation Version Name: at most 16 characters (PS3.7 §D.3.3.2). */
export const IMPLEMENTATION_VERSION_NAME = 'DICOM_SERVER_01';

/** True when `uid` is a syntactically valid UID: digits and dots, no empty or leading-zero component, at most 64 characters (PS3.5 §9.1). */
export function isValidUid(uid: string): boolean {
  return uid.length > 0 && uid.length <= 64 && /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/.test(uid);
}
