import { describe, expect, it } from 'vitest';
import { uniqueFieldNames } from '../../src/encoding/field-names.js';

describe('uniqueFieldNames', () => {
  it('keeps unique names as they are, in order', () => {
    expect(uniqueFieldNames(['name', 'age', 'Name'])).toEqual(['name', 'age', 'Name']);
  });

  it('returns a new array', () => {
    const names = ['a', 'b'];
    expect(uniqueFieldNames(names)).not.toBe(names);
  });

  it('handles no columns', () => {
    expect(uniqueFieldNames([])).toEqual([]);
  });

  it('suffixes later duplicates _2, _3, ...', () => {
    expect(uniqueFieldNames(['a', 'a', 'a', 'b', 'a'])).toEqual(['a', 'a_2', 'a_3', 'b', 'a_4']);
  });

  it('never takes the name of a real column that comes later', () => {
    expect(uniqueFieldNames(['a', 'a', 'a_2'])).toEqual(['a', 'a_3', 'a_2']);
  });

  it('never takes the name of a real column that came earlier', () => {
    expect(uniqueFieldNames(['a_2', 'a', 'a'])).toEqual(['a_2', 'a', 'a_3']);
  });

  it('suffixes duplicates of a name that itself looks suffixed', () => {
    expect(uniqueFieldNames(['a', 'a', 'a_2', 'a_2'])).toEqual(['a', 'a_3', 'a_2', 'a_2_2']);
  });

  it('does not hand out a name twice across bases', () => {
    expect(uniqueFieldNames(['a', 'a_2', 'a', 'a_2', 'a_2_2', 'a'])).toEqual([
      'a',
      'a_2',
      'a_3',
      'a_2_3',
      'a_2_2',
      'a_4',
    ]);
  });

  it('keeps empty names and suffixes their duplicates', () => {
    expect(uniqueFieldNames(['', 'x', ''])).toEqual(['', 'x', '_2']);
    expect(uniqueFieldNames(['', '', '_2'])).toEqual(['', '_3', '_2']);
  });

  it('is case-sensitive, like JSON keys', () => {
    expect(uniqueFieldNames(['A', 'a'])).toEqual(['A', 'a']);
  });

  it('stays unique and linear for many duplicates', () => {
    const names = Array.from({ length: 20_000 }, () => 'c');
    const out = uniqueFieldNames(names);
    expect(new Set(out).size).toBe(names.length);
    expect(out[0]).toBe('c');
    expect(out[19_999]).toBe('c_20000');
  });

  it('always yields distinct names, whatever the mix', () => {
    const pool = ['a', 'a_2', 'a_3', 'a_2_2', '', '_2', 'b'];
    let seed = 7;
    for (let round = 0; round < 500; round++) {
      const names = Array.from({ length: 12 }, () => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return pool[seed % pool.length] as string;
      });
      const out = uniqueFieldNames(names);
      expect(new Set(out).size).toBe(out.length);
      // Every first occurrence keeps its own name.
      names.forEach((name, i) => {
        if (names.indexOf(name) === i) expect(out[i]).toBe(name);
      });
    }
  });
});
