/**
 * Sequence keys of a C-FIND identifier (PS3.4 §C.2.2.2.6): the ones the index holds
 * (SEQUENCE_KEYS) carry a single item, whose item keys with a value are matched within one
 * stored item; with none (an empty item, or no item at all) the sequence is a return key. Item
 * keys we do not hold are answered empty, and those carrying a value make the sequence count
 * as an unsupported key (0xFF01), as do sequences we do not hold. A sequence below the level is
 * answered empty, and ignored with 0xFF01 when its item carries a value, as plain keys below
 * the level are (see query-request.ts).
 *
 * Layer: services. Pure.
 */

import type { IdentifierElement } from '../dicom/query/identifier.js';
import type { ItemCondition, SequenceKey } from '../dicom/query/model.js';
import {
  carriesMatchingValue,
  depthOf,
  isGroupLength,
  isQueryRefusal,
  matchOf,
  misplaced,
  type ParseContext,
  type ParsedKeys,
  type QueryRefusal,
} from './query-key-values.js';

/**
 * A sequence key of a C-FIND, added to the parsed keys: a return key, and a condition when its
 * item has item keys with a value. Refused when it has several items (0xA900) or an item key's
 * value cannot be matched (0xC000).
 */
export function addSequenceKey(
  element: IdentifierElement,
  sequence: SequenceKey,
  context: ParseContext,
  parsed: ParsedKeys,
): QueryRefusal | undefined {
  if (depthOf(sequence, context) > 0) {
    if (carriesMatchingValue(element, context)) parsed.unsupportedKeys.push(element.tag);
    return undefined;
  }
  const items = element.items ?? [];
  if (items.length > 1) return misplaced(`${sequence.keyword} needs a single item`, element.tag);
  const itemConditions: ItemCondition[] = [];
  let isUnsupported = false;
  for (const inner of items[0] ?? []) {
    if (isGroupLength(inner.tag)) continue;
    const itemKey = inner.items === undefined ? sequence.itemKeys.get(inner.tag) : undefined;
    if (itemKey === undefined) {
      isUnsupported ||= carriesMatchingValue(inner, context);
      continue;
    }
    const match = matchOf(inner, itemKey, context, element.tag);
    if (isQueryRefusal(match)) return match;
    if (match !== undefined) itemConditions.push({ keyword: itemKey.keyword, match });
  }
  if (isUnsupported) parsed.unsupportedKeys.push(element.tag);
  parsed.returnSequences.push(sequence.keyword);
  if (itemConditions.length > 0) {
    parsed.sequenceConditions.push({ keyword: sequence.keyword, itemConditions });
  }
  return undefined;
}
