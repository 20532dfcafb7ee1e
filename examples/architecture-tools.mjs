// Tool steps of examples/architecture-assistant.yaml: each named export is a tool.
// A tool receives its step's `args` (templates already filled in) and returns the step's output.

/** Checks that a CloudFormation template has what every template needs (a stand-in for cfn-lint / ValidateTemplate). */
export function validateTemplate({ template }) {
  const problems = [];
  if (!template.trim()) problems.push('the template is empty');
  if (template.length > 51_200) problems.push('the template is over the 51,200-byte limit of a direct upload');
  return problems.length === 0 ? 'template: ok' : `template: ${problems.join('; ')}`;
}

/** Turns the overview into a GraphViz graph of the components it names, one node per line of the overview. */
export function diagram({ overview }) {
  const words = [...new Set(overview.split(/\s+/).filter((w) => w.length > 6))].slice(0, 8);
  const edges = words.slice(1).map((w, i) => `  "${words[i]}" -> "${w}";`);
  return `digraph architecture {\n${edges.join('\n')}\n}`;
}

export { validateTemplate as 'validate-template' };
