import { isLosslessNumber, LosslessNumber, parse, stringify } from 'lossless-json';

/**
 * Query results are parsed without losing digits: JSON.parse turns 9223372036854775807 into
 * 9223372036854775808. Integers of up to 15 digits are exact as JS numbers and become numbers (so counts
 * and progress figures are plain numbers); every other number (longer integers, decimals, floats) stays a
 * LosslessNumber holding the text qrun sent, which is the value exactly as stored.
 */
const SAFE_INTEGER = /^-?(0|[1-9]\d{0,14})$/;

function parseNumber(text: string): number | LosslessNumber {
  return SAFE_INTEGER.test(text) ? Number(text) : new LosslessNumber(text);
}

export function parseExact<T>(text: string): T {
  return parse(text, null, parseNumber) as T;
}

/** JSON text of a parsed value, numbers written exactly as they came. */
export function stringifyExact(value: unknown, indent?: number): string {
  return stringify(value, null, indent) ?? 'null';
}

export { isLosslessNumber };

/** A number for charts and arithmetic (may round beyond 2^53, which a chart cannot show anyway). */
export function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (isLosslessNumber(value)) return Number(value.value);
  if (typeof value === 'string' && value.trim() !== '') return Number(value);
  if (typeof value === 'boolean') return value ? 1 : 0;
  return NaN;
}
