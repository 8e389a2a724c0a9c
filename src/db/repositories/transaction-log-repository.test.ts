import { describe, expect, it } from 'vitest';
import { insertSizes } from './transaction-log-repository.js';

describe('insertSizes', () => {
  it('splits every batch size into few statement sizes, largest first, covering each row once', () => {
    const used = new Set<number>();
    for (let count = 0; count <= 2_000; count++) {
      const sizes = insertSizes(count);
      expect(
        sizes.reduce((sum, size) => sum + size, 0),
        `count ${count}`,
      ).toBe(count);
      expect(sizes, `count ${count}`).toEqual([...sizes].sort((a, b) => b - a));
      for (const size of sizes) used.add(size);
    }
    // One SQL text per size, whatever the batch: the prepared statements stay few.
    expect([...used].sort((a, b) => a - b)).toEqual([1, 2, 4, 8, 16, 32, 64, 128]);
  });

  it('keeps a statement within the bound-parameter limits (128 rows)', () => {
    expect(insertSizes(200)).toEqual([128, 64, 8]);
    expect(insertSizes(1)).toEqual([1]);
    expect(insertSizes(0)).toEqual([]);
  });
});
