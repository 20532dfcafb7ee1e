import { FanoutError } from '../contracts/errors.js';
const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function formatCount(n: number): string {
  return integer.format(n);
}

export function formatMs(ms: number | undefined): string {
  if (ms === undefined) return '-';
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(2)} s`;
  return `${Math.floor(ms / 60_000)} min ${((ms % 60_000) / 1000).toFixed(0)} s`;
}

export function formatPercent(ratio: number): string {
  return `${(ratio * 100).toFixed(1)} %`;
}

/** One notice line about a model used without limits of its own: a likely typo, limits to be learned, or none at all. */
export function unconfiguredNotice(model: string, notice: { suggestion?: string; learnsLimits?: boolean }): string {
  if (notice.suggestion) return `fanout: ${model} has no limits configured; did you mean ${notice.suggestion}?\n`;
  if (notice.learnsLimits)
    return `fanout: ${model} has no limits configured; fanout sends one call first and learns them from the provider's answers (set models["${model}"].limits to start at full speed)\n`;
  return `fanout: ${model} has no limits configured and its provider reports none: its calls go as fast as the worker pool allows (set models["${model}"].limits to pace them)\n`;
}

/** A commander parser for a flag that takes a positive number, naming the flag when it gets anything else. */
export function positiveNumber(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0)
      throw new FanoutError('invalid_config', `${flag}: expected a positive number, received "${value}"`);
    return n;
  };
}

/** A commander parser for a flag that takes a whole number ≥ 0, naming the flag when it gets anything else. */
export function wholeNumberFlag(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0)
      throw new FanoutError('invalid_config', `${flag}: expected a whole number ≥ 0, received "${value}"`);
    return n;
  };
}
