// Seed 002: a hundred simulated interviews of ten turns each, through the library API.
// Interviewer and candidate are two models with their own request and token limits; each
// turn needs the one before it, and the hundred interviews run side by side.
//
//   npx tsx examples/interviews.ts             # on mock models with ~300 ms calls, in real time
//   npx tsx examples/interviews.ts --simulate  # the same in virtual time: the prediction, in milliseconds
//   npx tsx examples/interviews.ts --instant   # on zero-latency mock models (the seed measured 8.6/s)
import { createEngine, MockProvider, type ChatMessage, type Clock, type FanoutEngine, type LatencyProfile } from 'fanout';
import { ManualClock } from 'fanout/testing';

export interface InterviewOptions {
  interviews: number;
  turns: number;
}

export interface InterviewsResult {
  interviews: number;
  calls: number;
  failed: number;
  transcripts: ChatMessage[][];
}

/** Runs every interview at once; within one, turns alternate interviewer → candidate, each seeing the conversation so far. */
export async function runInterviews(engine: FanoutEngine, options: InterviewOptions): Promise<InterviewsResult> {
  let calls = 0;
  let failed = 0;
  const interview = async (n: number): Promise<ChatMessage[]> => {
    const transcript: ChatMessage[] = [{ role: 'user', content: `Interview ${n} for a backend engineer role. Interviewer, please begin.` }];
    for (let turn = 0; turn < options.turns; turn++) {
      const interviewer = turn % 2 === 0;
      calls += 1;
      try {
        const answer = await engine
          .submit({
            model: interviewer ? 'mock:interviewer' : 'mock:candidate',
            system: interviewer ? 'You interview a candidate. Ask one question at a time.' : 'You are the candidate. Answer the last question.',
            messages: transcript,
            maxTokens: 120,
            label: `interview-${n}-turn-${turn}`,
          })
          .result();
        transcript.push({ role: 'assistant', content: answer.text }, { role: 'user', content: interviewer ? 'Candidate, your answer.' : 'Interviewer, next question.' });
      } catch {
        failed += 1;
        break;
      }
    }
    return transcript;
  };
  const transcripts = await Promise.all(Array.from({ length: options.interviews }, (_, n) => interview(n)));
  return { interviews: options.interviews, calls, failed, transcripts };
}

/** The engine the example runs on: each role a mock model with its own limits. */
export function interviewEngine(latency: 'instant' | 'realistic' | LatencyProfile, clock?: Clock): FanoutEngine {
  const profile: LatencyProfile = latency === 'instant' ? 0 : latency === 'realistic' ? { kind: 'lognormal', medianMs: 300, sigma: 0.3 } : latency;
  const limits = { requestsPerMinute: 6000, tokensPerMinute: 3_000_000 };
  const mock = new MockProvider({
    models: {
      interviewer: { latency: profile, outputTokens: { min: 20, max: 60 }, limits },
      candidate: { latency: profile, outputTokens: { min: 40, max: 110 }, limits },
    },
  });
  return createEngine({ clock, cache: false, providers: [mock], models: { 'mock:interviewer': { limits }, 'mock:candidate': { limits } } });
}

/** Runs the interviews on a virtual clock: what a real run would take, computed in milliseconds. */
export async function simulateInterviews(options: InterviewOptions, latency: LatencyProfile): Promise<InterviewsResult & { wallMs: number }> {
  const clock = new ManualClock();
  const engine = interviewEngine(latency, clock);
  let result: InterviewsResult | undefined;
  const pending = runInterviews(engine, options).then((r) => (result = r));
  while (!result) await clock.runAll();
  await pending;
  await engine.close();
  return { ...result, wallMs: clock.now() };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const options = { interviews: 100, turns: 10 };
  if (process.argv.includes('--simulate')) {
    const result = await simulateInterviews(options, { kind: 'lognormal', medianMs: 300, sigma: 0.3 });
    const sequentialS = (result.calls * 0.3).toFixed(0);
    console.log(`simulated: ${result.interviews} interviews, ${result.calls} calls in ${(result.wallMs / 1000).toFixed(2)} s (about ${sequentialS} s one call at a time)`);
  } else {
    const instant = process.argv.includes('--instant');
    const engine = interviewEngine(instant ? 'instant' : 'realistic');
    const started = performance.now();
    const result = await runInterviews(engine, options);
    const seconds = (performance.now() - started) / 1000;
    await engine.close();
    console.log(`${result.interviews} interviews, ${result.calls} calls (${result.failed} failed) in ${seconds.toFixed(2)} s: ${(result.interviews / seconds).toFixed(1)} interviews/s`);
    console.log(`last turn of interview 0: ${result.transcripts[0]?.at(-2)?.content.slice(0, 80)}…`);
  }
}
