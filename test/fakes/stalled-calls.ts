import { expect, it } from 'vitest';
import type { CallTimeouts, Provider } from '../../src/contracts/provider.js';
import { createEngine } from '../../src/create-engine.js';

/**
 * The two ways a provider stops answering, against a vendor fake: a server
 * that accepts the call and says nothing, and a stream that stops halfway.
 * Each must end at its limit (0.3 s here), named in the error.
 */
export function stalledCallCases(fake: {
  model: string;
  provider: (timeouts: CallTimeouts) => Provider;
  scriptHang: () => void;
  scriptStall: () => void;
}): void {
  const timeouts = { firstByteMs: 300, idleMs: 300, perOutputTokenMs: 0 };
  const run = async (stream: boolean): Promise<unknown> => {
    const engine = createEngine({ providers: [fake.provider(timeouts)], cache: false });
    const handle = engine.submit({
      model: fake.model,
      messages: [{ role: 'user', content: 'hi' }],
      maxAttempts: 1,
      stream,
    });
    const error = await handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    await engine.close();
    return error;
  };

  it('ends a call whose server accepted it and never answered at the first-byte limit', async () => {
    fake.scriptHang();
    expect(await run(false)).toMatchObject({
      code: 'timeout',
      message: 'no answer began within 0.3 s of sending the call (first-byte limit)',
    });
  });

  it('ends a stream that stopped halfway at the idle-stream limit', async () => {
    fake.scriptStall();
    expect(await run(true)).toMatchObject({
      code: 'timeout',
      message: 'the answer stopped for 0.3 s (idle-stream limit)',
    });
  });
}
