// Parse a Server-Sent Events body (POST /api/v1/generate with stream:true, GET /api/v1/jobs/{id}/events)
// into StreamChunks with their event ids. EventSource can neither POST nor send X-API-Key, so the UI reads
// fetch()'s ReadableStream and feeds it here.
import type { StreamChunk } from "./types";

/** One dispatched event: its data and the last event id seen so far (the SSE "last event ID"). */
export interface SseEvent {
  data: string;
  id: string | null;
}

/** A StreamChunk and the id of the event that carried it (what `Last-Event-ID` resumes after). */
export interface StreamEvent {
  id: string | null;
  chunk: StreamChunk;
}

/** Incremental SSE parser: feed text pieces, get complete events back. */
export class SseParser {
  private buffer = "";
  private dataLines: string[] = [];
  /** The last `id:` field seen; like EventSource, it carries over to later events that have none. */
  lastEventId: string | null = null;

  /** Feed a decoded piece of the body; returns every event completed by it. */
  feed(text: string): SseEvent[] {
    this.buffer += text;
    const events: SseEvent[] = [];
    let newline: number;
    while ((newline = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buffer.slice(0, newline);
      const sepLength = this.buffer.startsWith("\r\n", newline) ? 2 : 1;
      // A lone "\r" at the end may be the first half of "\r\n": wait for more input.
      if (this.buffer[newline] === "\r" && sepLength === 1 && newline === this.buffer.length - 1) break;
      this.buffer = this.buffer.slice(newline + sepLength);
      this.line(line, events);
    }
    return events;
  }

  /** End of body: an event not followed by a blank line still counts. */
  flush(): SseEvent[] {
    const events: SseEvent[] = [];
    if (this.buffer) this.line(this.buffer, events);
    this.buffer = "";
    this.dispatch(events);
    return events;
  }

  private dispatch(events: SseEvent[]): void {
    if (this.dataLines.length) events.push({ data: this.dataLines.join("\n"), id: this.lastEventId });
    this.dataLines = [];
  }

  private line(line: string, events: SseEvent[]): void {
    if (line === "") {
      this.dispatch(events);
      return;
    }
    if (line.startsWith(":")) return; // comment / keep-alive
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.dataLines.push(value);
    else if (field === "id" && !value.includes("\0")) this.lastEventId = value;
  }
}

/** Turn one event's data into a StreamChunk; malformed data becomes an error chunk (never throws). */
export function toStreamChunk(data: string): StreamChunk {
  try {
    const parsed: unknown = JSON.parse(data);
    if (parsed && typeof parsed === "object" && typeof (parsed as StreamChunk).type === "string") {
      return parsed as StreamChunk;
    }
    return { type: "error", content: `unexpected stream event: ${data.slice(0, 200)}` };
  } catch {
    return { type: "error", content: `stream event is not JSON: ${data.slice(0, 200)}` };
  }
}

/** Read a streamed Response body, yielding each StreamChunk with its event id as it arrives. */
export async function* readStreamEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<StreamEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  const toEvent = (e: SseEvent): StreamEvent => ({ id: e.id, chunk: toStreamChunk(e.data) });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      for (const e of parser.feed(decoder.decode(value, { stream: true }))) yield toEvent(e);
    }
    for (const e of parser.feed(decoder.decode())) yield toEvent(e);
    for (const e of parser.flush()) yield toEvent(e);
  } finally {
    reader.releaseLock();
  }
}

/** Read a streamed Response body, yielding StreamChunks as they arrive. */
export async function* readStreamChunks(body: ReadableStream<Uint8Array>): AsyncGenerator<StreamChunk> {
  for await (const e of readStreamEvents(body)) yield e.chunk;
}
