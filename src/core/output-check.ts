import { Ajv, type ValidateFunction } from 'ajv';
import { FanoutError } from '../contracts/errors.js';
import type { ModelResult, ResponseFormat } from '../contracts/types.js';

/** Compiled schemas kept, by their JSON text; beyond this the oldest are compiled again when next needed. */
const MAX_SCHEMAS = 256;
/** Validation errors named in an attempt's error, at most. */
const MAX_ERRORS = 5;

/**
 * Holds an answer to the response format its request asked for: JSON that
 * parses (and, for a JSON Schema, matches it, checked by Ajv). An answer that
 * does not is a retryable `invalid_output` whose message names what was
 * wrong: the call is asked again within the task's attempts, charged to the
 * limits like any call. A passing answer carries the parsed value as
 * `result.object`.
 */
export class OutputCheck {
  private readonly ajv = new Ajv({ allErrors: true, strict: false });
  private readonly compiled = new Map<string, ValidateFunction>();

  /** The result with its parsed `object`, or throws `invalid_output`. */
  check(result: ModelResult, format: ResponseFormat): ModelResult {
    if (format.type === 'text') return result;
    let value: unknown;
    try {
      value = JSON.parse(result.text);
    } catch (error) {
      throw invalid(`the answer is not JSON (${(error as Error).message})`);
    }
    if (format.type === 'json_object') {
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        throw invalid('the answer is JSON but not an object');
      return { ...result, object: value };
    }
    const validate = this.validator(format.schema);
    if (!validate(value)) {
      const errors = (validate.errors ?? [])
        .slice(0, MAX_ERRORS)
        .map((e) => `${e.instancePath || '(root)'} ${e.message}`);
      throw invalid(`the answer does not match the schema "${format.name}": ${errors.join('; ')}`);
    }
    return { ...result, object: value };
  }

  /** Compiles a request's schema at submit, so a schema Ajv cannot read is refused before any call. */
  prepare(format: ResponseFormat | undefined): void {
    if (format?.type === 'json_schema') this.validator(format.schema);
  }

  private validator(schema: Record<string, unknown>): ValidateFunction {
    const key = JSON.stringify(schema);
    let validate = this.compiled.get(key);
    if (!validate) {
      try {
        validate = this.ajv.compile(schema);
      } catch (error) {
        throw new FanoutError(
          'invalid_request',
          `responseFormat.schema: not a JSON Schema Ajv can compile (${(error as Error).message})`,
        );
      }
      if (this.compiled.size >= MAX_SCHEMAS) this.compiled.delete(this.compiled.keys().next().value as string);
      this.compiled.set(key, validate);
    }
    return validate;
  }
}

function invalid(message: string): FanoutError {
  return new FanoutError('invalid_output', message, { retryable: true });
}

/** The one output check of the process: its compiled schemas are shared by every engine. */
export const outputCheck = new OutputCheck();
