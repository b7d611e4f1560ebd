import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError, LollmsClient } from "./api";
import { ConnectionLostError, followJob, JobGoneError, type JobCursor, type JobEventsSource } from "./jobs";
import type { StreamEvent } from "./sse";

const BASE = "http://127.0.0.1:9";
const WORDS = ["Hel", "lo", ", ", "wor", "ld", "!"];
/** The events a job's stream holds: one chunk per word, then the final; ids 1..n as the server numbers them. */
const EVENTS = [
  ...WORDS.map((w, i) => ({ id: String(i + 1), data: JSON.stringify({ type: "chunk", content: w }) })),
  { id: String(WORDS.length + 1), data: JSON.stringify({ type: "final", content: [{ type: "text", data: WORDS.join("") }] }) },
];

interface Call {
  url: string;
  lastEventId: string | null;
}

/**
 * A stand-in for the server's events endpoint: answers strictly after Last-Event-ID, and cuts the
 * connection (a network error in the body) after `cutAfter[n]` events on the n-th connection.
 */
function serveEvents(cutAfter: (number | null)[], status = 200): { calls: Call[] } {
  const calls: Call[] = [];
  vi.stubGlobal("fetch", async (url: string, init: RequestInit = {}) => {
    init.signal?.throwIfAborted(); // like fetch(): an aborted request never starts
    const headers = new Headers(init.headers);
    calls.push({ url, lastEventId: headers.get("Last-Event-ID") });
    if (status !== 200) return new Response(JSON.stringify({ detail: "Job not found" }), { status });
    const after = Number(headers.get("Last-Event-ID") ?? "0");
    const cut = cutAfter[calls.length - 1] ?? null;
    const todo = EVENTS.filter((e) => Number(e.id) > after);
    const encoder = new TextEncoder();
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) { // one event per read; erroring drops what is queued, so the cut comes on the read after
        if (cut !== null && sent === cut) return controller.error(new TypeError("network error"));
        if (sent === todo.length) return controller.close();
        const e = todo[sent++];
        controller.enqueue(encoder.encode(`id: ${e.id}\ndata: ${e.data}\n\n`));
      },
    });
    return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
  });
  return { calls };
}

/** Follow the job like the chat does: text appended per chunk, the cursor saved beside it. */
async function follow(cursor: JobCursor, source: JobEventsSource, waits: number[] = []): Promise<string> {
  let text = "";
  await followJob(source, cursor, ({ chunk }) => {
    if (chunk.type === "chunk") text += String(chunk.content);
  }, undefined, { sleep: async (ms) => void waits.push(ms) });
  return text;
}

afterEach(() => vi.unstubAllGlobals());

describe("LollmsClient job calls", () => {
  it("reads events from the start without Last-Event-ID, then resumes strictly after the id given", async () => {
    const { calls } = serveEvents([null, null]);
    const client = new LollmsClient(BASE, "k");
    const all: StreamEvent[] = [];
    for await (const e of client.jobEvents("j1", null)) all.push(e);
    expect(all.map((e) => e.id)).toEqual(["1", "2", "3", "4", "5", "6", "7"]);
    const rest: StreamEvent[] = [];
    for await (const e of client.jobEvents("j1", "4")) rest.push(e);
    expect(rest.map((e) => e.id)).toEqual(["5", "6", "7"]);
    expect(calls).toEqual([{ url: `${BASE}/api/v1/jobs/j1/events`, lastEventId: null }, { url: `${BASE}/api/v1/jobs/j1/events`, lastEventId: "4" }]);
  });

  it("says a server without jobs (404/405 on POST /api/v1/jobs) so the UI can stream from generate", async () => {
    for (const status of [404, 405]) {
      vi.stubGlobal("fetch", async () => new Response("{}", { status }));
      expect(await new LollmsClient(BASE, "").createJob({ input_data: [], generation_type: "ttt", stream: true })).toBeNull();
    }
    vi.stubGlobal("fetch", async () => new Response(JSON.stringify({ detail: "input_data: empty" }), { status: 422 }));
    await expect(new LollmsClient(BASE, "").createJob({ input_data: [], generation_type: "ttt", stream: true })).rejects.toBeInstanceOf(ApiError);
  });
});

describe("followJob", () => {
  it("after a drop mid-answer reconnects with the last applied id: every piece exactly once", async () => {
    const { calls } = serveEvents([2, 3, null]);
    const cursor: JobCursor = { id: "j1", lastEventId: null, streamed: true };
    const waits: number[] = [];
    expect(await follow(cursor, new LollmsClient(BASE, "k"), waits)).toBe("Hello, world!");
    expect(calls.map((c) => c.lastEventId)).toEqual([null, "2", "5"]);
    expect(cursor.lastEventId).toBe("7");
    expect(waits).toEqual([500, 500]); // each drop came after progress: the backoff starts again
  });

  it("resumes a saved cursor (a reloaded page) without repeating what was already shown", async () => {
    const { calls } = serveEvents([null]);
    const cursor: JobCursor = { id: "j1", lastEventId: "3", streamed: true };
    const shownBefore = WORDS.slice(0, 3).join("");
    expect(shownBefore + (await follow(cursor, new LollmsClient(BASE, "k")))).toBe("Hello, world!");
    expect(calls[0].lastEventId).toBe("3");
  });

  it("reconnects when the stream ends without its final event", async () => {
    let connection = 0;
    const source: JobEventsSource = {
      async *jobEvents(_id, last) {
        connection += 1;
        const after = Number(last ?? "0");
        for (const e of EVENTS.filter((x) => Number(x.id) > after).slice(0, connection === 1 ? 4 : undefined)) {
          yield { id: e.id, chunk: JSON.parse(e.data) };
        }
      },
    };
    expect(await follow({ id: "j", lastEventId: null, streamed: true }, source)).toBe("Hello, world!");
    expect(connection).toBe(2);
  });

  it("gives up after a bounded number of attempts with growing waits", async () => {
    const calls: (string | null)[] = [];
    const source: JobEventsSource = {
      // eslint-disable-next-line require-yield
      async *jobEvents(_id, last) {
        calls.push(last);
        throw new ApiError("Cannot reach the server.", 0);
      },
    };
    const waits: number[] = [];
    await expect(follow({ id: "j", lastEventId: "2", streamed: true }, source, waits)).rejects.toBeInstanceOf(ConnectionLostError);
    expect(calls).toEqual(Array(7).fill("2"));
    expect(waits).toEqual([500, 1000, 2000, 4000, 8000, 8000]);
  });

  it("reports a job the server no longer has (404) as gone, without retrying", async () => {
    const { calls } = serveEvents([], 404);
    await expect(follow({ id: "old", lastEventId: "9", streamed: true }, new LollmsClient(BASE, "k"))).rejects.toBeInstanceOf(JobGoneError);
    expect(calls).toHaveLength(1);
  });

  it("does not retry a refused key or stop being stopped", async () => {
    serveEvents([], 401);
    await expect(follow({ id: "j", lastEventId: null, streamed: true }, new LollmsClient(BASE, "bad"))).rejects.toMatchObject({ status: 401 });
    serveEvents([null]);
    const controller = new AbortController();
    controller.abort();
    const cursor: JobCursor = { id: "j", lastEventId: null, streamed: true };
    await expect(followJob(new LollmsClient(BASE, "k"), cursor, () => undefined, controller.signal)).rejects.toMatchObject({ name: "AbortError" });
  });
});
