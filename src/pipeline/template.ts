/**
 * Prompt templates: `{{ inputs.name }}`, `{{ steps.name.output }}`,
 * `{{ item }}` and `{{ index }}` (in a `forEach` step). No logic, no escapes:
 * a template is text with holes, checked before anything runs.
 */

const HOLE = /\{\{\s*([^{}]*?)\s*\}\}/g;

export type TemplateRef =
  | { kind: 'input'; name: string }
  | { kind: 'step'; name: string }
  | { kind: 'item' }
  | { kind: 'index' };

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

/** Fills every hole. Validation has made sure each one has a value. */
export function render(template: string, values: TemplateValues): string {
  return template.replace(HOLE, (_, raw: string) => {
    const ref = parseRef(raw.trim());
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
  });
}
