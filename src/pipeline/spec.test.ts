import { describe, expect, it } from 'vitest';
import { checkPipeline, resolveInputs } from './spec.js';

const errorsOf = (spec: unknown): string[] => {
  try {
    checkPipeline(spec, 'p');
  } catch (error) {
    return (error as { issues: string[] }).issues;
  }
  return [];
};

describe('pipeline checks', () => {
  it('accepts a valid pipeline and orders steps after what they depend on', () => {
    const pipeline = checkPipeline({
      inputs: ['diff'],
      steps: {
        summary: { model: 'mock:w', prompt: '{{ steps.review.output }} and {{ steps.style.output }}' },
        review: { model: 'mock:r', prompt: '{{ inputs.diff }}' },
        style: { model: 'mock:s', prompt: '{{ inputs.diff }}', needs: ['review'] },
      },
    });
    expect(pipeline.order).toEqual(['review', 'style', 'summary']);
    expect(pipeline.steps.get('summary')?.dependsOn.sort()).toEqual(['review', 'style']);
  });

  it('rejects a cycle, naming its path', () => {
    expect(
      errorsOf({
        steps: {
          a: { model: 'mock:m', prompt: '{{ steps.c.output }}' },
          b: { model: 'mock:m', prompt: 'x', needs: ['a'] },
          c: { model: 'mock:m', prompt: 'x', needs: ['b'] },
        },
      }),
    ).toEqual(['p: steps.a: dependency cycle a → c → b → a']);
  });

  it('rejects unknown steps, inputs and template variables, with the step and field', () => {
    expect(
      errorsOf({
        inputs: ['diff'],
        steps: {
          a: {
            model: 'mock:m',
            prompt: '{{ inputs.dif }} {{ steps.nope.output }} {{ steps.a.output }} {{ diff }}',
            needs: ['ghost'],
          },
          b: { model: 'mock:m', system: 'item {{ item }}', prompt: 'x', forEach: 'a' },
          c: { split: { from: 'nowhere', maxTokens: 10 } },
        },
      }),
    ).toEqual([
      'p: steps.a.needs: unknown step "ghost"',
      'p: steps.a.prompt: unknown input "dif"; declared inputs: diff',
      'p: steps.a.prompt: unknown step "nope"',
      'p: steps.a.prompt: a step cannot read its own output',
      'p: steps.a.prompt: unknown template variable "{{ diff }}"; expected inputs.<name>, steps.<name>.output, item or index',
      'p: steps.c.split.from: "nowhere" is neither an input nor a step',
      'p: steps.b.forEach: "a" gives one output, not a list (use a split step or another forEach step)',
    ]);
  });

  it('rejects {{ item }} outside a forEach step, and steps of no kind or of two', () => {
    expect(
      errorsOf({
        steps: {
          a: { model: 'mock:m', prompt: '{{ item }}' },
          b: { prompt: 'x' },
          c: { model: 'mock:m', tool: 't', prompt: 'x' },
          d: { model: 'mock:m' },
        },
      }),
    ).toEqual([
      'p: steps.a.prompt: "{{ item }}" is only known in a forEach step',
      'p: steps.b: expected exactly one of "model" (or "models"), "split", "tool" or "merge", found none',
      'p: steps.c: expected exactly one of "model" (or "models"), "split", "tool" or "merge", found llm and tool',
      'p: steps.d.prompt: an LLM step needs a prompt',
    ]);
  });

  it('names the field zod refuses', () => {
    expect(errorsOf({ steps: { a: { model: 'gpt-4o', prompt: 'x', maxTokens: -1 } } })).toEqual([
      'p.steps.a.model: expected "provider:model"',
      'p.steps.a.maxTokens: Too small: expected number to be >0',
    ]);
  });

  it('names every input that is missing or unknown before anything runs', () => {
    const pipeline = checkPipeline({
      inputs: { diff: {}, lang: { default: 'ts' } },
      steps: { a: { model: 'mock:m', prompt: '{{ inputs.diff }} {{ inputs.lang }}' } },
    });
    expect(resolveInputs(pipeline, { diff: 'd' })).toEqual({ diff: 'd', lang: 'ts' });
    expect(() => resolveInputs(pipeline, { other: 'x' })).toThrow(
      'pipeline: inputs.diff: required (pass --input diff=VALUE or --input diff=@FILE); pipeline: inputs.other: the pipeline declares no such input',
    );
  });

  it('bounds the tools a pipeline defines and a step names at 128', () => {
    const tools = Object.fromEntries(Array.from({ length: 129 }, (_, i) => [`t${i}`, {}]));
    expect(() => checkPipeline({ tools, steps: { a: { model: 'mock:m', prompt: 'p' } } }, 'p')).toThrow(
      'at most 128 tools',
    );
    expect(() =>
      checkPipeline({ tools, steps: { a: { model: 'mock:m', prompt: 'p', tools: Object.keys(tools) } } }, 'p'),
    ).toThrow('at most 128 tools');
  });
});
