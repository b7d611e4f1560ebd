import { describe, expect, it } from "vitest";
import { readStreamChunks, readStreamEvents, SseParser, toStreamChunk, type SseEvent } from "./sse";

const data = (events: SseEvent[]): string[] => events.map((e) => e.data);

function bodyOf(pieces: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const p of pieces) controller.enqueue(encoder.encode(p));
      controller.close();
    },
  });
}

async function collect(pieces: string[]): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const chunk of readStreamChunks(bodyOf(pieces))) out.push(chunk);
  return out;
}

describe("SseParser", () => {
  it("splits events on blank lines and joins multi-line data", () => {
    const p = new SseParser();
    expect(data(p.feed("data: a\ndata: b\n\ndata: c\n\n"))).toEqual(["a\nb", "c"]);
  });

  it("handles events split at any byte and CRLF line ends", () => {
    const text = 'data: {"type":"chunk","content":"Hel"}\r\n\r\ndata: {"type":"final","content":[]}\r\n\r\n';
    for (let cut = 1; cut < text.length; cut++) {
      const p = new SseParser();
      const got = data([...p.feed(text.slice(0, cut)), ...p.feed(text.slice(cut)), ...p.flush()]);
      expect(got).toEqual(['{"type":"chunk","content":"Hel"}', '{"type":"final","content":[]}']);
    }
  });

  it("ignores comments (keep-alive), other fields and events without data", () => {
    const p = new SseParser();
    expect(data(p.feed(": ping\n\nevent: message\nid: 3\nretry: 10\n\ndata: x\n\n"))).toEqual(["x"]);
  });

  it("keeps the value without the single leading space only", () => {
    const p = new SseParser();
    expect(data(p.feed("data:  two spaces\ndata:none\n\n"))).toEqual([" two spaces\nnone"]);
  });

  it("flushes an unterminated last event at end of body", () => {
    const p = new SseParser();
    expect(p.feed("data: tail")).toEqual([]);
    expect(data(p.flush())).toEqual(["tail"]);
  });
});

describe("SseParser event ids", () => {
  it("gives each event the id sent with it, also when the id line comes after the data", () => {
    const p = new SseParser();
    expect(p.feed("id: 1\ndata: a\n\ndata: b\nid: 2\n\n")).toEqual([{ data: "a", id: "1" }, { data: "b", id: "2" }]);
  });

  it("keeps the last id for later events without one, like EventSource; an empty id resets it", () => {
    const p = new SseParser();
    expect(p.feed("id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\n")).toEqual([
      { data: "a", id: "7" }, { data: "b", id: "7" }, { data: "c", id: "" },
    ]);
  });

  it("keeps the id of a keep-alive or data-less event for the next one, and ignores ids with NUL", () => {
    const p = new SseParser();
    expect(p.feed("id: 4\n\n: ping\n\nid: 5\u0000\ndata: x\n\n")).toEqual([{ data: "x", id: "4" }]);
    expect(p.lastEventId).toBe("4");
  });

  it("keeps ids whole when the body is cut anywhere (Redis-style ids with a dash)", () => {
    const text = "id: 1700000000000-0\ndata: {\"type\":\"chunk\",\"content\":\"Hi\"}\n\nid: 1700000000000-1\r\ndata: {\"type\":\"final\",\"content\":[]}\r\n\r\n";
    for (let cut = 1; cut < text.length; cut++) {
      const p = new SseParser();
      const got = [...p.feed(text.slice(0, cut)), ...p.feed(text.slice(cut)), ...p.flush()];
      expect(got.map((e) => e.id)).toEqual(["1700000000000-0", "1700000000000-1"]);
    }
  });
});

describe("toStreamChunk", () => {
  it("parses a StreamChunk", () => {
    expect(toStreamChunk('{"type":"chunk","content":"hi","thoughts":null}')).toEqual({ type: "chunk", content: "hi", thoughts: null });
  });
  it("turns non-JSON or shapeless data into an error chunk instead of throwing", () => {
    expect(toStreamChunk("[DONE]").type).toBe("error");
    expect(toStreamChunk('{"content":"x"}').type).toBe("error");
  });
});

describe("readStreamChunks", () => {
  it("yields chunks in order across network pieces, including multi-byte characters split mid-way", async () => {
    const full = 'data: {"type":"chunk","content":"héllo ✓"}\n\n: keep-alive\n\ndata: {"type":"final","content":[{"type":"text","data":"héllo ✓"}],"metadata":{"usage":{"completion_tokens":2}}}\n\n';
    const bytes = new TextEncoder().encode(full);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 7) controller.enqueue(bytes.slice(i, i + 7));
        controller.close();
      },
    });
    const out = [];
    for await (const c of readStreamChunks(stream)) out.push(c);
    expect(out).toHaveLength(2);
    expect(out[0]).toMatchObject({ type: "chunk", content: "héllo ✓" });
    expect(out[1]).toMatchObject({ type: "final", metadata: { usage: { completion_tokens: 2 } } });
  });

  it("yields an event that ends without a trailing blank line", async () => {
    expect(await collect(['data: {"type":"error","content":"boom"}'])).toEqual([{ type: "error", content: "boom" }]);
  });
});

describe("readStreamEvents", () => {
  it("yields each chunk with the id of its event", async () => {
    const out = [];
    for await (const e of readStreamEvents(bodyOf(['id: 3\ndata: {"type":"chunk","content":"a"}\n\nid: 4\nda', 'ta: {"type":"final","content":[]}\n\n']))) out.push(e);
    expect(out).toEqual([{ id: "3", chunk: { type: "chunk", content: "a" } }, { id: "4", chunk: { type: "final", content: [] } }]);
  });
});
