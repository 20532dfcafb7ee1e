/**
 * Prompt templates: `{{ inputs.name }}`, `{{ steps.name.output }}`,
 * `{{ item }}` and `{{ index }}` (in a `forEach` step). No logic, no escapes:
 * a template is text with holes, checked before anything runs.
 */

import { FanoutError } from '../contracts/errors.js';

const HOLE = /\{\{\s*([^{}]*?)\s*\}\}/g;

export type TemplateRef =
  { kind: 'input'; name: string } | { kind: 'step'; name: string } | { kind: 'item' } | { kind: 'index' };

/** Every hole in a template, parsed; a hole that is none of the known forms is returned as `unknown`. */
export function templateRefs(template: string): Array<TemplateRef | { kind: 'unknown'; text: string }> {
  const refs: Array<TemplateRef | { kind: 'unknown'; text: string }> = [];
  for (const match of template.matchAll(HOLE)) refs.push(parseRef(match[1] ?? ''));
  return refs;
}

function parseRef(text: string): TemplateRef | { kind: 'unknown'; text: string } {
  if (text === 'item') return { kind: 'item' };
  if (text === 'index') return { kind: 'index' };
  const input = /^inputs\.([\w-]+)$/.exec(text);
  if (input) return { kind: 'input', name: input[1] as string };
  const step = /^steps\.([\w-]+)\.output$/.exec(text);
  if (step) return { kind: 'step', name: step[1] as string };
  return { kind: 'unknown', text };
}

export interface TemplateValues {
  inputs: Readonly<Record<string, string>>;
  steps: Readonly<Record<string, string>>;
  item?: string;
  index?: number;
}

/** Longest text `render` makes by default: 1,000,000 characters (about 250,000 tokens, past any model's context). */
export const DEFAULT_MAX_RENDERED_CHARS = 1_000_000;

/**
 * Fills every hole. Validation has made sure each one has a value. Throws an
 * `invalid_request` error as soon as the text would pass `maxChars`, before it
 * is built: a template that names a large input many times cannot make the
 * process build a text of hundreds of megabytes.
 */
export function render(template: string, values: TemplateValues, maxChars = DEFAULT_MAX_RENDERED_CHARS): string {
  let length = template.length;
  const text = template.replace(HOLE, (hole: string, raw: string) => {
    const value = valueOf(parseRef(raw.trim()), values);
    length += value.length - hole.length;
    if (length > maxChars)
      throw new FanoutError(
        'invalid_request',
        `the rendered template is over ${maxChars.toLocaleString('en-US')} characters`,
      );
    return value;
  });
  return text;
}

function valueOf(ref: TemplateRef | { kind: 'unknown'; text: string }, values: TemplateValues): string {
  switch (ref.kind) {
    case 'input':
      return values.inputs[ref.name] ?? '';
    case 'step':
      return values.steps[ref.name] ?? '';
    case 'item':
      return values.item ?? '';
    case 'index':
      return String(values.index ?? '');
    default:
      return '';
  }
}
