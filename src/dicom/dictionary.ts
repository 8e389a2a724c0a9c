/**
 * The data dictionary (PS3.6): keyword, name and VR of each standard tag, from the
 * `@iwharris/dicom-data-dictionary` package, indexed by tag number once on first use.
 *
 * The package is one 1.3 MB JavaScript object literal: loaded, it costs some 27 MB of memory,
 * more than anything else the server loads. So it is required only when first needed (a data
 * set in Implicit VR, a keyword to look up), read into the index, and dropped from the module
 * cache, so that only the index stays.
 *
 * Layer: dicom. Used where the encoding does not say the VR (Implicit VR Little Endian) and
 * for names in logs and the console.
 */

import { createRequire } from 'node:module';
import { isVr, type Vr } from './vr.js';

const PACKAGE = '@iwharris/dicom-data-dictionary';

/** The package's elements, loaded now; the package leaves the module cache again. */
function packageElements(): Record<string, PackageElement> {
  const require = createRequire(import.meta.url);
  const path = require.resolve(PACKAGE);
  try {
    return (require(PACKAGE) as { elements: Record<string, PackageElement> }).elements;
  } finally {
    delete require.cache[path];
  }
}

/** What the dictionary knows of a tag. */
export interface DictionaryEntry {
  readonly keyword: string;
  readonly name: string;
  /** The VR to use when the encoding does not state one. */
  readonly vr: Vr;
  readonly isRetired: boolean;
}

interface PackageElement {
  readonly tag: string;
  readonly name: string;
  readonly keyword: string;
  readonly vr: string;
  readonly isRetired: boolean;
}

let exact: Map<number, DictionaryEntry> | undefined;
/** Entries with 'x' digits (repeating groups like 60xx): a mask of the fixed digits and their value. */
let masked: { readonly mask: number; readonly value: number; readonly entry: DictionaryEntry }[] =
  [];

/**
 * The VR to assume from the dictionary's text: "OB or OW" and "US or SS" name the first;
 * an empty VR (item delimiters) or one we do not know becomes UN.
 */
function implicitVr(text: string): Vr {
  const first = text.split(' ')[0] ?? '';
  return isVr(first) ? first : 'UN';
}

/** The package's names carry HTML character references ("Patient&#x27;s Name"). */
function unescapeName(name: string): string {
  return name
    .replace(/&#x([0-9a-f]+);/gi, (_, hex: string) =>
      String.fromCodePoint(Number.parseInt(hex, 16)),
    )
    .replace(/&#(\d+);/g, (_, dec: string) => String.fromCodePoint(Number(dec)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function load(): Map<number, DictionaryEntry> {
  if (exact !== undefined) return exact;
  exact = new Map();
  for (const element of Object.values(packageElements())) {
    const digits = element.tag.replace(/[(),]/g, '');
    if (digits.length !== 8) continue;
    const entry: DictionaryEntry = {
      keyword: element.keyword,
      name: unescapeName(element.name),
      vr: implicitVr(element.vr),
      isRetired: element.isRetired,
    };
    if (/x/i.test(digits)) {
      const mask = Number.parseInt(digits.replace(/[0-9a-f]/gi, 'F').replace(/x/gi, '0'), 16) >>> 0;
      const value = Number.parseInt(digits.replace(/x/gi, '0'), 16) >>> 0;
      masked.push({ mask, value, entry });
    } else {
      exact.set(Number.parseInt(digits, 16) >>> 0, entry);
    }
  }
  return exact;
}

let byKeyword: Map<string, number> | undefined;

/** The tag of a PS3.6 keyword (`PatientName`), or undefined for a keyword the dictionary lacks. */
export function tagOfKeyword(keyword: string): number | undefined {
  if (byKeyword === undefined) {
    byKeyword = new Map();
    for (const [tag, entry] of load()) if (entry.keyword !== '') byKeyword.set(entry.keyword, tag);
  }
  return byKeyword.get(keyword);
}

/** The dictionary entry of a tag, or undefined for private and unknown tags. */
export function lookupTag(tag: number): DictionaryEntry | undefined {
  const found = load().get(tag);
  if (found !== undefined) return found;
  if ((tag & 0xffff) === 0x0000) {
    // Group lengths (gggg,0000) are UL in every group (PS3.5 §7.2).
    return { keyword: 'GroupLength', name: 'Group Length', vr: 'UL', isRetired: true };
  }
  for (const candidate of masked)
    if ((tag & candidate.mask) >>> 0 === candidate.value) return candidate.entry;
  return undefined;
}

/** The VR of a tag for implicit VR decoding: the dictionary's, or UN. */
export function implicitVrOf(tag: number): Vr {
  if ((tag >>> 16) % 2 === 1 && (tag & 0xffff) < 0x0100 && (tag & 0xffff) >= 0x0010) {
    // Private creator elements (gggg,0010-00FF) are LO (PS3.5 §7.8.1).
    return 'LO';
  }
  return lookupTag(tag)?.vr ?? 'UN';
}

/** For tests: forget the index (it is rebuilt on next use). */
export function resetDictionaryForTests(): void {
  exact = undefined;
  masked = [];
  byKeyword = undefined;
}
