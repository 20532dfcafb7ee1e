import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { createEngine } from '../src/create-engine.js';
import type { CallContext, ModelCall } from '../src/contracts/provider.js';
import type { ChatMessage, ModelResult } from '../src/contracts/types.js';
import { MockProvider } from '../src/providers/mock/mock-provider.js';
import { mergeJson } from '../src/pipeline/run.js';
import { checkPipeline, type PipelineSpec } from '../src/pipeline/spec.js';

/** The mock, keeping what each call was sent. */
class RecordingMock extends MockProvider {
  readonly sent: ModelCall[] = [];
  override complete(call: ModelCall, context: CallContext): Promise<ModelResult> {
    this.sent.push(call);
    return super.complete(call, context);
  }
}

const readFile = {
  description: 'Read a file of the repository',
  parameters: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] },
};

const agent = (extra: Record<string, unknown> = {}): PipelineSpec => ({
  tools: { read_file: readFile },
  steps: { context: { model: 'mock:agent', tools: ['read_file'], prompt: 'What does src/core do?', ...extra } },
});

describe('an agent step', () => {
  it('runs the tool the model calls with the arguments it wrote, hands the result back, and ends on the answer', async () => {
    const mock = new RecordingMock();
    const engine = createEngine({ providers: [mock], cache: false });
    const received: unknown[] = [];
    try {
      const run = await engine.run(
        agent(),
        {},
        {
          tools: {
            read_file: (args) => {
              received.push(args);
              return 'export class Engine {}';
            },
          },
        },
      );
      expect(run.ok).toBe(true);
      expect(mock.sent).toHaveLength(2);
      const [first, second] = mock.sent as [ModelCall, ModelCall];
      expect(first.tools).toEqual([{ name: 'read_file', ...readFile }]);
      const toolCall = JSON.parse(JSON.stringify(second.messages[1])) as ChatMessage;
      expect(toolCall.role).toBe('assistant');
      expect(received).toEqual([JSON.parse(toolCall.toolCalls?.[0]?.arguments ?? '')]);
      expect(second.messages[2]).toEqual({
        role: 'tool',
        toolCallId: toolCall.toolCalls?.[0]?.id,
        content: 'export class Engine {}',
      });
      expect(run.steps.context?.output).not.toBe('');
      expect(run.calls.map((c) => c.step)).toEqual(['context', 'context']);
      expect(run.tools.map((t) => [t.step, t.tool])).toEqual([['context', 'read_file']]);
    } finally {
      await engine.close();
    }
  });

  it('hands a tool’s failure back to the model as the tool’s answer', async () => {
    const mock = new RecordingMock();
    const engine = createEngine({ providers: [mock], cache: false });
    try {
      const run = await engine.run(
        agent(),
        {},
        {
          tools: {
            read_file: () => {
              throw new Error('no such file');
            },
          },
        },
      );
      expect(run.ok).toBe(true);
      expect(mock.sent[1]?.messages[2]?.content).toBe('error: no such file');
    } finally {
      await engine.close();
    }
  });

  it('fails with invalid_output when the model still calls tools after maxTurns calls', async () => {
    const engine = createEngine({ providers: [new RecordingMock()], cache: false });
    try {
      const run = await engine.run(agent({ maxTurns: 1 }), {}, { tools: { read_file: () => 'x' } });
      expect(run.ok).toBe(false);
      expect(run.steps.context?.error).toEqual({
        code: 'invalid_output',
        message: 'steps.context: the model still called tools after 1 turns (maxTurns)',
      });
    } finally {
      await engine.close();
    }
  });

  it('is refused before anything runs when a tool is not defined or not registered', async () => {
    expect(() => checkPipeline({ steps: { a: { model: 'mock:m', tools: ['grep'], prompt: 'p' } } })).toThrow(
      'steps.a.tools: unknown tool "grep"; defined tools: (none)',
    );
    expect(() =>
      checkPipeline({ tools: { grep: {} }, steps: { a: { split: { from: 'x', maxTokens: 5 }, tools: ['grep'] } } }),
    ).toThrow('steps.a.tools: only an LLM step takes it');
    expect(() => checkPipeline({ steps: { a: { model: 'mock:m', prompt: 'p', maxTurns: 3 } } })).toThrow(
      'steps.a.maxTurns: only an agent step (one with tools) makes more than one call',
    );
    const engine = createEngine({ cache: false });
    try {
      await expect(engine.run(agent(), {}, { tools: {} })).rejects.toThrow(
        'steps.context.tools: no tool "read_file" is registered',
      );
    } finally {
      await engine.close();
    }
  });
});

const findings = {
  type: 'object',
  properties: {
    findings: {
      type: 'array',
      items: { type: 'object', properties: { file: { type: 'string' } }, required: ['file'] },
    },
    verdict: { enum: ['approve', 'request-changes'] },
  },
  required: ['findings', 'verdict'],
};

describe('structured output fanned out and merged', () => {
  it('answers each item in JSON that matches the step’s schema, and merges them into one value', async () => {
    const engine = createEngine({ cache: false });
    try {
      const run = await engine.run({
        steps: {
          review: {
            forEach: ['quality', 'design'],
            model: 'mock:reviewer',
            prompt: 'Review for {{ item }}',
            schema: findings,
          },
          all: { merge: 'review' },
        },
      });
      expect(run.ok).toBe(true);
      const items = (run.steps.review?.output as string[]).map((text) => JSON.parse(text) as Record<string, unknown>);
      expect(items).toHaveLength(2);
      expect(JSON.parse(run.steps.all?.output as string)).toEqual({
        findings: [...(items[0]?.findings as unknown[]), ...(items[1]?.findings as unknown[])],
        verdict: [items[0]?.verdict, items[1]?.verdict],
      });
    } finally {
      await engine.close();
    }
  });

  it('merges lists into one list, objects key by key, anything else into a list', () => {
    expect(mergeJson([[1], [2, 3]])).toEqual([1, 2, 3]);
    expect(
      mergeJson([
        { a: [1], b: 'x' },
        { a: [2], c: true },
      ]),
    ).toEqual({ a: [1, 2], b: ['x'], c: [true] });
    expect(mergeJson([1, 'two', { three: 3 }])).toEqual([1, 'two', { three: 3 }]);
    expect(() => checkPipeline({ steps: { a: { model: 'mock:m', prompt: 'p' }, b: { merge: 'a' } } })).toThrow(
      'steps.b.merge: "a" is not an LLM step run for each item of a list',
    );
  });
});

describe('the agents example, from the command line', () => {
  it('calls read_file, checks three reviews against the schema and merges their findings', async () => {
    const root = join(import.meta.dirname, '..');
    // The example as it is, but for its mock latencies (46 s of real time): instant here.
    const example = parseYaml(readFileSync(join(root, 'examples/pr-review-agents.yaml'), 'utf8')) as {
      config: { providers: { mock: { models: Record<string, { latency: number }> } } };
    };
    for (const model of Object.values(example.config.providers.mock.models)) model.latency = 0;
    const dir = mkdtempSync(join(tmpdir(), 'fanout-agents-'));
    writeFileSync(join(dir, 'pr-review-agents.yaml'), stringifyYaml(example));
    copyFileSync(join(root, 'examples/pr-review.diff'), join(dir, 'pr-review.diff'));
    const fanout = [join(root, 'bin/fanout.js'), 'run', join(dir, 'pr-review-agents.yaml')];
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [...fanout, '--tools', join(root, 'examples/review-tools.mjs'), '--json', '--no-progress'],
      { cwd: dir },
    ).finally(() => rmSync(dir, { recursive: true, force: true }));
    const run = JSON.parse(stdout) as {
      ok: boolean;
      steps: Record<string, { output: string | string[] }>;
      calls: Array<{ step: string }>;
      tools: Array<{ step: string; tool?: string }>;
    };
    expect(run.ok).toBe(true);
    expect(run.tools).toMatchObject([{ step: 'context', tool: 'read_file' }]);
    expect(run.calls.filter((c) => c.step === 'context')).toHaveLength(2);
    const reviews = (run.steps.review?.output as string[]).map(
      (t) => JSON.parse(t) as { findings: unknown[]; verdict: string },
    );
    expect(reviews).toHaveLength(3);
    const merged = JSON.parse(run.steps.findings?.output as string) as { findings: unknown[]; verdict: string[] };
    expect(merged.findings).toEqual(reviews.flatMap((r) => r.findings));
    expect(merged.verdict).toEqual(reviews.map((r) => r.verdict));
  });
});
