import { expect } from 'vitest';
import { ProviderError } from '../../src/contracts/errors.js';

/**
 * For each case, makes the fake answer with `reply`, calls the provider once,
 * and checks the error it throws is a `ProviderError` matching `expected`.
 */
export async function expectClassified<Reply>(
  cases: ReadonlyArray<readonly [Reply, Partial<ProviderError>]>,
  script: (reply: Reply) => void,
  call: () => Promise<unknown>,
): Promise<void> {
  for (const [reply, expected] of cases) {
    script(reply);
    const error = await call().catch((e: unknown) => e);
    expect(error, JSON.stringify(reply)).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject(expected);
  }
}
