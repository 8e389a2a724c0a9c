/**
 * The Storage SOP Classes we accept (PS3.4 Annex B, Table B.5-1), grouped the way an
 * administrator switches them on and off (the specification's CT, MR, RT Structure, RT Plan,
 * RT Dose, Secondary Capture, and the other modalities a hospital sends).
 *
 * Layer: dicom. Pure data.
 */

/** Group names, as stored in the settings. */
export const STORAGE_GROUPS = [
  'ct',
  'mr',
  'rt_structure',
  'rt_plan',
  'rt_dose',
  'secondary_capture',
  'rt_image',
  'rt_record',
  'radiography',
  'mammography',
  'ultrasound',
  'nuclear_medicine',
  'pet',
  'angiography',
  'segmentation',
  'registration',
  'structured_report',
  'document',
  'raw_data',
  'presentation_state',
] as const;

/** A group of Storage SOP Classes. */
export type StorageGroup = (typeof STORAGE_GROUPS)[number];

/** Each group's SOP Class UIDs with their PS3.6 names. */
export const STORAGE_SOP_CLASSES: Readonly<Record<StorageGroup, Readonly<Record<string, string>>>> =
  {
    ct: {
      '1.2.840.10008.5.1.4.1.1.2': 'CT Image Storage',
      '1.2.840.10008.5.1.4.1.1.2.1': 'Enhanced CT Image Storage',
      '1.2.840.10008.5.1.4.1.1.2.2': 'Legacy Converted Enhanced CT Image Storage',
    },
    mr: {
      '1.2.840.10008.5.1.4.1.1.4': 'MR Image Storage',
      '1.2.840.10008.5.1.4.1.1.4.1': 'Enhanced MR Image Storage',
      '1.2.840.10008.5.1.4.1.1.4.2': 'MR Spectroscopy Storage',
      '1.2.840.10008.5.1.4.1.1.4.3': 'Enhanced MR Color Image Storage',
      '1.2.840.10008.5.1.4.1.1.4.4': 'Legacy Converted Enhanced MR Image Storage',
    },
    rt_structure: { '1.2.840.10008.5.1.4.1.1.481.3': 'RT Structure Set Storage' },
    rt_plan: {
      '1.2.840.10008.5.1.4.1.1.481.5': 'RT Plan Storage',
      '1.2.840.10008.5.1.4.1.1.481.8': 'RT Ion Plan Storage',
    },
    rt_dose: { '1.2.840.10008.5.1.4.1.1.481.2': 'RT Dose Storage' },
    secondary_capture: {
      '1.2.840.10008.5.1.4.1.1.7': 'Secondary Capture Image Storage',
      '1.2.840.10008.5.1.4.1.1.7.1': 'Multi-frame Single Bit Secondary Capture Image Storage',
      '1.2.840.10008.5.1.4.1.1.7.2': 'Multi-frame Grayscale Byte Secondary Capture Image Storage',
      '1.2.840.10008.5.1.4.1.1.7.3': 'Multi-frame Grayscale Word Secondary Capture Image Storage',
      '1.2.840.10008.5.1.4.1.1.7.4': 'Multi-frame True Color Secondary Capture Image Storage',
    },
    rt_image: { '1.2.840.10008.5.1.4.1.1.481.1': 'RT Image Storage' },
    rt_record: {
      '1.2.840.10008.5.1.4.1.1.481.4': 'RT Beams Treatment Record Storage',
      '1.2.840.10008.5.1.4.1.1.481.6': 'RT Brachy Treatment Record Storage',
      '1.2.840.10008.5.1.4.1.1.481.7': 'RT Treatment Summary Record Storage',
      '1.2.840.10008.5.1.4.1.1.481.9': 'RT Ion Beams Treatment Record Storage',
    },
    radiography: {
      '1.2.840.10008.5.1.4.1.1.1': 'Computed Radiography Image Storage',
      '1.2.840.10008.5.1.4.1.1.1.1': 'Digital X-Ray Image Storage - For Presentation',
      '1.2.840.10008.5.1.4.1.1.1.1.1': 'Digital X-Ray Image Storage - For Processing',
      '1.2.840.10008.5.1.4.1.1.1.3': 'Digital Intra-Oral X-Ray Image Storage - For Presentation',
      '1.2.840.10008.5.1.4.1.1.1.3.1': 'Digital Intra-Oral X-Ray Image Storage - For Processing',
    },
    mammography: {
      '1.2.840.10008.5.1.4.1.1.1.2': 'Digital Mammography X-Ray Image Storage - For Presentation',
      '1.2.840.10008.5.1.4.1.1.1.2.1': 'Digital Mammography X-Ray Image Storage - For Processing',
      '1.2.840.10008.5.1.4.1.1.13.1.3': 'Breast Tomosynthesis Image Storage',
    },
    ultrasound: {
      '1.2.840.10008.5.1.4.1.1.6.1': 'Ultrasound Image Storage',
      '1.2.840.10008.5.1.4.1.1.3.1': 'Ultrasound Multi-frame Image Storage',
      '1.2.840.10008.5.1.4.1.1.6.2': 'Enhanced US Volume Storage',
    },
    nuclear_medicine: { '1.2.840.10008.5.1.4.1.1.20': 'Nuclear Medicine Image Storage' },
    pet: {
      '1.2.840.10008.5.1.4.1.1.128': 'Positron Emission Tomography Image Storage',
      '1.2.840.10008.5.1.4.1.1.130': 'Enhanced PET Image Storage',
      '1.2.840.10008.5.1.4.1.1.128.1': 'Legacy Converted Enhanced PET Image Storage',
    },
    angiography: {
      '1.2.840.10008.5.1.4.1.1.12.1': 'X-Ray Angiographic Image Storage',
      '1.2.840.10008.5.1.4.1.1.12.1.1': 'Enhanced XA Image Storage',
      '1.2.840.10008.5.1.4.1.1.12.2': 'X-Ray Radiofluoroscopic Image Storage',
      '1.2.840.10008.5.1.4.1.1.12.2.1': 'Enhanced XRF Image Storage',
    },
    segmentation: {
      '1.2.840.10008.5.1.4.1.1.66.4': 'Segmentation Storage',
      '1.2.840.10008.5.1.4.1.1.66.5': 'Surface Segmentation Storage',
    },
    registration: {
      '1.2.840.10008.5.1.4.1.1.66.1': 'Spatial Registration Storage',
      '1.2.840.10008.5.1.4.1.1.66.2': 'Spatial Fiducials Storage',
      '1.2.840.10008.5.1.4.1.1.66.3': 'Deformable Spatial Registration Storage',
    },
    structured_report: {
      '1.2.840.10008.5.1.4.1.1.88.11': 'Basic Text SR Storage',
      '1.2.840.10008.5.1.4.1.1.88.22': 'Enhanced SR Storage',
      '1.2.840.10008.5.1.4.1.1.88.33': 'Comprehensive SR Storage',
      '1.2.840.10008.5.1.4.1.1.88.34': 'Comprehensive 3D SR Storage',
      '1.2.840.10008.5.1.4.1.1.88.35': 'Extensible SR Storage',
      '1.2.840.10008.5.1.4.1.1.88.40': 'Procedure Log Storage',
      '1.2.840.10008.5.1.4.1.1.88.50': 'Mammography CAD SR Storage',
      '1.2.840.10008.5.1.4.1.1.88.59': 'Key Object Selection Document Storage',
      '1.2.840.10008.5.1.4.1.1.88.65': 'Chest CAD SR Storage',
      '1.2.840.10008.5.1.4.1.1.88.67': 'X-Ray Radiation Dose SR Storage',
      '1.2.840.10008.5.1.4.1.1.88.68': 'Radiopharmaceutical Radiation Dose SR Storage',
      '1.2.840.10008.5.1.4.1.1.88.76': 'Enhanced X-Ray Radiation Dose SR Storage',
    },
    document: {
      '1.2.840.10008.5.1.4.1.1.104.1': 'Encapsulated PDF Storage',
      '1.2.840.10008.5.1.4.1.1.104.2': 'Encapsulated CDA Storage',
      '1.2.840.10008.5.1.4.1.1.104.3': 'Encapsulated STL Storage',
    },
    raw_data: { '1.2.840.10008.5.1.4.1.1.66': 'Raw Data Storage' },
    presentation_state: {
      '1.2.840.10008.5.1.4.1.1.11.1': 'Grayscale Softcopy Presentation State Storage',
    },
  };

/** Every Storage SOP Class UID of the given groups. */
export function storageSopClasses(groups: readonly StorageGroup[] = STORAGE_GROUPS): Set<string> {
  return new Set(groups.flatMap((group) => Object.keys(STORAGE_SOP_CLASSES[group])));
}

/** The PS3.6 name of a Storage SOP Class UID, if we know it. */
export function storageSopClassName(uid: string): string | undefined {
  for (const group of STORAGE_GROUPS) {
    const name = STORAGE_SOP_CLASSES[group][uid];
    if (name !== undefined) return name;
  }
  return undefined;
}
