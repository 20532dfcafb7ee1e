import { randomBytes } from 'node:crypto';

/** The only source of randomness in fanout; seed it for repeatable runs. */
export interface Random {
  /** A number in [0, 1). */
  next(): number;
}

/** Math.random behind the `Random` interface. */
export const systemRandom: Random = { next: () => Math.random() };

/**
 * A small, fast, seeded generator (mulberry32). Not for secrets; for jitter,
 * simulated latencies and fault injection that must repeat exactly.
 */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return {
    next(): number {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    },
  };
}

/**
 * Task ids: a random prefix per generator (so ids from two runs or two
 * processes never collide) and a counter (so making one costs a string concat).
 * With a `Random`, the prefix comes from it and ids repeat run to run.
 */
export function createIdGenerator(random?: Random): () => string {
  const prefix = random
    ? Math.floor(random.next() * 2 ** 48)
        .toString(36)
        .padStart(10, '0')
    : randomBytes(6).readUIntBE(0, 6).toString(36).padStart(10, '0');
  let counter = 0;
  return () => `t_${prefix}${(counter++).toString(36).padStart(5, '0')}`;
}
