// Following a generation job on the server (POST /api/v1/jobs): its events stream is read with fetch, the
// id of every applied event is kept, and a dropped connection resumes strictly after it (Last-Event-ID),
// a bounded number of times with growing waits. A job the server no longer knows (404) is "gone".
import { ApiError } from "./api";
import type { StreamEvent } from "./sse";
import type { JobInfo, JobStateName } from "./types";

/** Where an answer's job stands in the browser; kept on the message, so it is saved with the conversation. */
export interface JobCursor {
  id: string;
  lastEventId: string | null; // id of the last event applied to the message (null: none yet)
  streamed: boolean; // the request asked for a streamed answer (text shown as it comes)
}

/** The server no longer has the job: it expired, or the server restarted (embedded mode keeps jobs in memory). */
export class JobGoneError extends Error {
  constructor() {
    super("The server no longer has this answer's job (it expired, or the server restarted).");
    this.name = "JobGoneError";
  }
}

/** The events stream dropped and could not be reopened within the allowed attempts. */
export class ConnectionLostError extends Error {
  constructor(attempts: number) {
    super(`Lost the connection to the server and could not reconnect (${attempts} attempts).`);
    this.name = "ConnectionLostError";
  }
}

/** The part of the API client that follows a job (a small interface, so tests can script the stream). */
export interface JobEventsSource {
  jobEvents(jobId: string, lastEventId: string | null, signal?: AbortSignal): AsyncIterable<StreamEvent>;
}

export interface FollowOptions {
  retries?: number; // reconnections in a row without a new event before giving up
  backoffMs?: number; // first wait before reconnecting, doubled each time
  maxBackoffMs?: number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export const FOLLOW_DEFAULTS = { retries: 6, backoffMs: 500, maxBackoffMs: 8000 } as const;

const TERMINAL: ReadonlySet<JobStateName> = new Set(["succeeded", "failed", "cancelled"]);

export function isFinished(job: Pick<JobInfo, "state">): boolean {
  return TERMINAL.has(job.state);
}

function abortError(): DOMException {
  return new DOMException("The operation was aborted.", "AbortError");
}

/** Wait `ms`, or reject at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError());
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError());
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Errors worth reconnecting after: the network, a stream cut short, a busy or restarting server. */
function isTransient(err: unknown): boolean {
  if (err instanceof ApiError) return err.status === 0 || err.status === 408 || err.status === 429 || err.status >= 500;
  return err instanceof TypeError; // fetch() and a body reader fail with TypeError when the network drops
}

/**
 * Hand every event of the job to `apply` until its `final` event, then return. `cursor.lastEventId` moves
 * forward right after each event is applied (in the same turn, so a saved conversation never holds text
 * and an event id that disagree). After a drop the stream is reopened strictly after that id.
 */
export async function followJob(
  source: JobEventsSource, cursor: JobCursor, apply: (event: StreamEvent) => void, signal?: AbortSignal, options: FollowOptions = {},
): Promise<void> {
  const retries = options.retries ?? FOLLOW_DEFAULTS.retries;
  const backoffMs = options.backoffMs ?? FOLLOW_DEFAULTS.backoffMs;
  const maxBackoffMs = options.maxBackoffMs ?? FOLLOW_DEFAULTS.maxBackoffMs;
  const wait = options.sleep ?? sleep;
  let failures = 0;
  for (;;) {
    try {
      for await (const event of source.jobEvents(cursor.id, cursor.lastEventId, signal)) {
        apply(event);
        if (event.id !== null) cursor.lastEventId = event.id;
        failures = 0; // progress: the next drop starts a fresh series of attempts
        if (event.chunk.type === "final") return;
      }
      // The stream ended without its final event: the connection was cut; reconnect.
    } catch (err) {
      if (signal?.aborted) throw err;
      if (err instanceof ApiError && err.status === 404) throw new JobGoneError();
      if (!isTransient(err)) throw err;
    }
    failures += 1;
    if (failures > retries) throw new ConnectionLostError(failures);
    await wait(Math.min(maxBackoffMs, backoffMs * 2 ** (failures - 1)), signal);
  }
}
