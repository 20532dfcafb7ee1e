import { describe, expect, it } from 'vitest';
import { forgetOldest } from './batches.js';

describe('forgetOldest', () => {
  it('keeps the newest entries of an insertion-ordered map', () => {
    const map = new Map([
      ['a', 1],
      ['b', 2],
      ['c', 3],
      ['d', 4],
    ]);
    forgetOldest(map, 2);
    expect([...map.keys()]).toEqual(['c', 'd']);
    forgetOldest(map, 5);
    expect([...map.keys()]).toEqual(['c', 'd']);
  });
});
