import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type { LimitDimension } from '../../contracts/limiter.js';

/**
 * The Redis limiter's Lua scripts (`lua/<name>-<key count>.lua`), each one
 * atomic operation, with `lua/bucket.lua` (the token bucket and the layout of
 * a key's hash) prepended to each.
 */
const SCRIPTS = { define: 1, lease: 2, cooldown: 1, observe: 1 } as const;
type ScriptName = keyof typeof SCRIPTS;

const luaText = (file: string): string => readFileSync(new URL(`./lua/${file}`, import.meta.url), 'utf8');

/** A bucket as a script answered it: numbers as Redis holds them (level in 1/window units, times in Redis ms). */
export interface RemoteBucket {
  name: LimitDimension;
  limit: number;
  window: number;
  cap: number;
  transit: number;
  level: number;
  at: number;
  gen: number;
  learned: boolean;
}

/** What every script answers: the key as it stands after it ran, at Redis time `now`. */
export interface RemoteState {
  now: number;
  cooldown: number;
  /** Calls in flight allowed across all processes; undefined when unlimited. */
  max: number | undefined;
  dims: RemoteBucket[];
  /** lease: units leased (0: none, and `wait`/`reason` say why). */
  granted: number;
  /** lease: ms from `now` until the slice may be spent (0: at once). */
  start: number;
  wait: number;
  reason: string;
  /** lease: slots granted by this call, and held by this process in all. */
  slots: number;
  held: number;
  /** The key's newest bucket generation. */
  gen: number;
  /** observe: whether what was seen changed a bucket. */
  changed: boolean;
  /** lease: Redis holds no limits for a key the caller has limits for. */
  missing: boolean;
}

type Raw = Record<string, unknown> & { dims: Record<string, Record<string, string>> | Array<Record<string, string>> };

function parseState(text: string): RemoteState {
  const raw = JSON.parse(text) as Raw;
  // cjson writes an empty table as {}, not [].
  const rows = Array.isArray(raw.dims) ? raw.dims : Object.values(raw.dims);
  const number = (value: unknown): number => (value === undefined || value === '' ? 0 : Number(value));
  return {
    now: number(raw.now),
    cooldown: number(raw.cooldown),
    max: raw.max === '' || raw.max === undefined ? undefined : Number(raw.max),
    dims: rows.map((row) => ({
      name: row.name as LimitDimension,
      limit: Number(row.limit),
      window: Number(row.window),
      cap: Number(row.cap),
      transit: Number(row.transit),
      level: Number(row.level),
      at: Number(row.at),
      gen: Number(row.gen),
      learned: row.learned === '1',
    })),
    granted: number(raw.granted),
    start: number(raw.start),
    wait: number(raw.wait),
    reason: typeof raw.reason === 'string' ? raw.reason : '',
    slots: number(raw.slots),
    held: number(raw.held),
    gen: number(raw.gen),
    changed: raw.changed === true,
    missing: raw.missing === true,
  };
}

export type LimiterScripts = Record<ScriptName, (keys: string[], args: Array<string | number>) => Promise<RemoteState>>;

/** Defines the scripts on `redis` (EVALSHA, loaded on first use) and returns them as functions. */
export function limiterScripts(redis: Redis): LimiterScripts {
  const bucket = luaText('bucket.lua');
  const scripts = {} as LimiterScripts;
  for (const [name, numberOfKeys] of Object.entries(SCRIPTS) as Array<[ScriptName, number]>) {
    const command = `fanoutLimiter_${name}`;
    redis.defineCommand(command, { numberOfKeys, lua: `${bucket}\n${luaText(`${name}-${numberOfKeys}.lua`)}` });
    const call = (redis as unknown as Record<string, (...args: Array<string | number>) => Promise<string>>)[command];
    scripts[name] = async (keys, args) =>
      parseState(await (call as (...a: unknown[]) => Promise<string>).call(redis, ...keys, ...args));
  }
  return scripts;
}

/** The bucket library alone, for tests that run its arithmetic beside the in-memory one. */
export const bucketLua = (): string => luaText('bucket.lua');
