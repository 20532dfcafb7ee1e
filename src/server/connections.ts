import { errorBody } from '../openai/wire.js';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { FanoutError } from '../contracts/errors.js';

/** Bounds on the connections a server holds, and on how long a request may take to arrive. */
export interface ConnectionLimits {
  /** Time for a request's headers to arrive, in ms. Default 10,000. */
  headersTimeoutMs?: number;
  /** Time for a whole request (headers and body) to arrive, in ms; past it, 408 and the connection closes. Default 30,000. */
  requestTimeoutMs?: number;
  /** Open connections at once, WebSockets and streams included; past it a new connection is answered 503 and closed. Default 10,000. */
  maxConnections?: number;
  /** Streams, event feeds, WebSockets and `?wait=1` requests one tenant may hold open at once; past it, 429. Default 1,000. */
  maxStreamsPerTenant?: number;
}

export const DEFAULT_CONNECTION_LIMITS: Required<ConnectionLimits> = Object.freeze({
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  maxConnections: 10_000,
  maxStreamsPerTenant: 1_000,
});

/** The `http.createServer` options that enforce the timeouts; checked every second rather than Node's default 30. */
export function timeoutOptions(limits: Required<ConnectionLimits>): {
  requestTimeout: number;
  http: { headersTimeout: number; requestTimeout: number; connectionsCheckingInterval: number };
} {
  const headersTimeout = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs);
  const connectionsCheckingInterval = Math.max(10, Math.min(1_000, Math.floor(headersTimeout / 2)));
  return {
    requestTimeout: limits.requestTimeoutMs,
    http: { headersTimeout, requestTimeout: limits.requestTimeoutMs, connectionsCheckingInterval },
  };
}

/**
 * Answers a connection beyond `max` with a 503 naming the cap, then closes
 * it, so that a flood of idle or slow connections cannot take every file
 * descriptor and leave none for the clients (and health checks) that follow.
 */
export function capConnections(server: Server, max: number): void {
  let open = 0;
  server.on('connection', (socket: Socket) => {
    if (open >= max) {
      const body = JSON.stringify(
        errorBody(
          'overloaded',
          `the server holds its maximum of ${max.toLocaleString('en-US')} connections; try again shortly`,
        ),
      );
      socket.end(
        `HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      return;
    }
    open += 1;
    socket.once('close', () => {
      open -= 1;
    });
  });
}

/** Open streams and waits per tenant, so that one tenant cannot hold every connection the server allows. */
export class TenantStreams {
  private readonly open = new Map<string, number>();

  constructor(private readonly max: number) {}

  /** Counts one more for `tenant`, or throws a 429-mapped error at the cap. Returns the release, safe to call twice. */
  take(tenant: string): () => void {
    const count = this.open.get(tenant) ?? 0;
    if (count >= this.max) {
      throw new FanoutError(
        'rate_limited',
        `tenant ${tenant} already holds ${this.max.toLocaleString('en-US')} streams, sockets and waits open; close one first`,
      );
    }
    this.open.set(tenant, count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(tenant) ?? 1) - 1;
      if (left === 0) this.open.delete(tenant);
      else this.open.set(tenant, left);
    };
  }
}
