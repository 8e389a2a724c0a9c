import { describe, expect, it } from 'vitest';
import { decodeText } from './charset.js';

describe('text in its Specific Character Set', () => {
  it('decodes ISO_IR 100 (Latin-1)', () => {
    expect(
      decodeText(
        Buffer.from([0x4d, 0xfc, 0x6c, 0x6c, 0x65, 0x72, 0x5e, 0x4a, 0xe9, 0x72, 0xf4, 0x6d, 0x65]),
        'ISO_IR 100',
        'PN',
      ),
    ).toBe('Müller^Jérôme');
  });

  it('decodes ISO_IR 192 (UTF-8)', () => {
    expect(decodeText(Buffer.from('Wang^XiaoDong=王^小東', 'utf8'), 'ISO_IR 192', 'PN')).toBe(
      'Wang^XiaoDong=王^小東',
    );
  });

  it('decodes ISO 2022 IR 87 (Japanese kanji) switched in by escape sequences', () => {
    // PS3.5 Annex H example: Yamada^Tarou=山田^太郎 with ESC $ B ... ESC ( B.
    const bytes = Buffer.from([
      0x59, 0x61, 0x6d, 0x61, 0x64, 0x61, 0x5e, 0x54, 0x61, 0x72, 0x6f, 0x75, 0x3d, 0x1b, 0x24,
      0x42, 0x3b, 0x33, 0x45, 0x44, 0x1b, 0x28, 0x42, 0x5e, 0x1b, 0x24, 0x42, 0x42, 0x40, 0x4f,
      0x3a, 0x1b, 0x28, 0x42,
    ]);
    expect(decodeText(bytes, '\\ISO 2022 IR 87', 'PN')).toBe('Yamada^Tarou=山田^太郎');
  });

  it('decodes ISO 2022 IR 149 (Korean)', () => {
    // PS3.5 Annex I example: Hong^Gildong=洪^吉洞 (Hanja), with ESC $ ) C designating KS X 1001.
    const bytes = Buffer.from([
      0x48, 0x6f, 0x6e, 0x67, 0x5e, 0x47, 0x69, 0x6c, 0x64, 0x6f, 0x6e, 0x67, 0x3d, 0x1b, 0x24,
      0x29, 0x43, 0xfb, 0xf3, 0x5e, 0x1b, 0x24, 0x29, 0x43, 0xd1, 0xce, 0xd4, 0xd7,
    ]);
    expect(decodeText(bytes, '\\ISO 2022 IR 149', 'PN')).toBe('Hong^Gildong=洪^吉洞');
  });

  it('decodes ISO 2022 IR 13 (half-width katakana)', () => {
    // ESC ) I designates JIS X 0201 katakana to G1: 0xD4 0xCF 0xC0 0xDE is ﾔﾏﾀﾞ.
    const bytes = Buffer.from([0x1b, 0x29, 0x49, 0xd4, 0xcf, 0xc0, 0xde]);
    expect(decodeText(bytes, 'ISO 2022 IR 13', 'PN')).toBe('ﾔﾏﾀﾞ');
  });

  it('reads plain ASCII without a character set', () => {
    expect(decodeText(Buffer.from('DOE^JOHN'), undefined, 'PN')).toBe('DOE^JOHN');
  });
});
