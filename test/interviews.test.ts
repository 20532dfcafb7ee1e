import { describe, expect, it } from 'vitest';
import { simulateInterviews } from '../examples/interviews.js';

describe('seed 002: 100 interviews of 10 turns', () => {
  it('take ten turns’ time, not a thousand calls’ time, in virtual time', async () => {
    const result = await simulateInterviews({ interviews: 100, turns: 10 }, { kind: 'fixed', ms: 300 });
    expect(result).toMatchObject({ interviews: 100, calls: 1000, failed: 0 });
    // Each interview is ten dependent 300 ms turns; the hundred run side by side within the limits.
    expect(result.wallMs).toBe(3000);
    expect(result.transcripts.every((t) => t.length === 21)).toBe(true);
  });
});
