// Parse a Server-Sent Events body (POST /api/v1/generate with stream:true) into StreamChunks.
// EventSource cannot POST, so the UI reads fetch()'s ReadableStream and feeds it here.
import type { StreamChunk } from "./types";

/** Incremental SSE parser: feed text pieces, get complete events' data payloads back. */
export class SseParser {
  private buffer = "";
  private dataLines: string[] = [];

  /** Feed a decoded piece of the body; returns the data of every event completed by it. */
  feed(text: string): string[] {
    this.buffer += text;
    const events: string[] = [];
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
  flush(): string[] {
    const events: string[] = [];
    if (this.buffer) this.line(this.buffer, events);
    this.buffer = "";
    if (this.dataLines.length) events.push(this.dataLines.join("\n"));
    this.dataLines = [];
    return events;
  }

  private line(line: string, events: string[]): void {
    if (line === "") {
      if (this.dataLines.length) events.push(this.dataLines.join("\n"));
      this.dataLines = [];
      return;
    }
    if (line.startsWith(":")) return; // comment / keep-alive
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.dataLines.push(value);
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

/** Read a streamed Response body, yielding StreamChunks as they arrive. */
export async function* readStreamChunks(body: ReadableStream<Uint8Array>): AsyncGenerator<StreamChunk> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      for (const data of parser.feed(decoder.decode(value, { stream: true }))) yield toStreamChunk(data);
    }
    for (const data of parser.feed(decoder.decode())) yield toStreamChunk(data);
    for (const data of parser.flush()) yield toStreamChunk(data);
  } finally {
    reader.releaseLock();
  }
}
