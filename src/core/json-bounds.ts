import { FanoutError } from '../contracts/errors.js';

/** How deep and how large a JSON value from outside may be. */
export interface JsonBounds {
  /** Levels of nested objects and arrays; a scalar at the top is level 0. */
  maxDepth: number;
  /** Values of any kind (objects, arrays, strings, numbers, booleans, nulls), the outermost included. */
  maxValues: number;
}

/**
 * Bounds for a request body: deep enough for any real request (a JSON Schema
 * with nested objects, tool calls with arguments), far short of the depth at
 * which `JSON.stringify` and other recursive walks overflow the stack.
 */
export const REQUEST_JSON_BOUNDS: Readonly<JsonBounds> = Object.freeze({ maxDepth: 64, maxValues: 200_000 });

/**
 * Throws an `invalid_request` error naming `where` when `value` is nested
 * deeper or holds more values than `bounds` allow. The walk is iterative, so
 * checking a hostile value cannot itself overflow the stack, and it stops at
 * the first bound crossed; a value that refers to itself crosses the depth
 * bound.
 */
export function assertJsonBounds(
  value: unknown,
  where: string,
  bounds: Readonly<JsonBounds> = REQUEST_JSON_BOUNDS,
): void {
  if (typeof value !== 'object' || value === null) return;
  const stack: Array<{ value: object; depth: number }> = [{ value, depth: 1 }];
  let values = 1;
  while (stack.length > 0) {
    const { value: current, depth } = stack.pop() as { value: object; depth: number };
    if (depth > bounds.maxDepth)
      throw new FanoutError('invalid_request', `${where}: nested more than ${bounds.maxDepth} levels deep`);
    const children = Array.isArray(current) ? current : Object.values(current);
    values += children.length;
    if (values > bounds.maxValues)
      throw new FanoutError(
        'invalid_request',
        `${where}: more than ${bounds.maxValues.toLocaleString('en-US')} values`,
      );
    for (const child of children)
      if (typeof child === 'object' && child !== null) stack.push({ value: child, depth: depth + 1 });
  }
}
