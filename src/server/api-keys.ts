import { createHash } from 'node:crypto';

/** sha256 of a key, hex: what is kept in memory instead of the key. */
export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/**
 * API keys and the tenants they belong to. Keys are kept hashed; a presented
 * key is hashed and looked up, so the lookup time depends on the hash, not
 * on how much of a real key was guessed. Keys are read only from the
 * `Authorization: Bearer` header, never from a URL.
 */
export class ApiKeys {
  private readonly tenants = new Map<string, string>();

  constructor(entries: ReadonlyArray<{ tenant: string; key: string }> = []) {
    for (const { tenant, key } of entries) this.tenants.set(hashKey(key), tenant);
  }

  get size(): number {
    return this.tenants.size;
  }

  /** The tenant of an `Authorization` header, or undefined when it names no known key. */
  tenantOf(authorization: string | undefined): string | undefined {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    return match ? this.tenants.get(hashKey(match[1] as string)) : undefined;
  }
}
