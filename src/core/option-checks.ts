import type { CallTimeouts } from '../contracts/provider.js';
import { FanoutError } from '../contracts/errors.js';

/** `value` if it is a whole number ≥ 1, `fallback` if unset; otherwise an error naming the option and what came. */
export function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new FanoutError('invalid_config', `${name}: expected a whole number ≥ 1, received ${String(value)}`);
  }
  return value;
}

/** `value` if it is a finite number ≥ 0, `fallback` if unset; otherwise an error naming the option and what came. */
export function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) {
    throw new FanoutError('invalid_config', `${name}: expected a number ≥ 0, received ${String(value)}`);
  }
  return value;
}

/** `value` if it is a finite number > 0; otherwise an error naming the option and what came. */
export function positiveNumber(name: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new FanoutError('invalid_config', `${name}: expected a number > 0, received ${String(value)}`);
  }
  return value;
}

/** Call timeouts checked field by field (each a whole number of ms ≥ 1; `perOutputTokenMs` ≥ 0), over `fallback`. */
export function callTimeouts(
  name: string,
  value: CallTimeouts | undefined,
  fallback: Readonly<Required<CallTimeouts>>,
): Required<CallTimeouts> {
  return {
    firstByteMs: positiveInteger(`${name}.firstByteMs`, value?.firstByteMs, fallback.firstByteMs),
    idleMs: positiveInteger(`${name}.idleMs`, value?.idleMs, fallback.idleMs),
    perOutputTokenMs: nonNegative(`${name}.perOutputTokenMs`, value?.perOutputTokenMs, fallback.perOutputTokenMs),
  };
}
