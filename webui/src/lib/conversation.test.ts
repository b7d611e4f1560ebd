import { describe, expect, it } from "vitest";
import { applyOutputs, applyStreamChunk, buildChatInputs, buildSingleInputs, streamedTokensPerSecond, tokensPerSecond, type ChatMessage } from "./conversation";

const msg = (role: "user" | "assistant", content: string, extra: Partial<ChatMessage> = {}): ChatMessage =>
  ({ id: content, role, kind: "ttt", content, createdAt: 0, status: "done", ...extra });

describe("buildChatInputs", () => {
  it("sends the system prompt then earlier turns in order with their roles", () => {
    const items = buildChatInputs([msg("user", "Hi"), msg("assistant", "Hello."), msg("user", "Name a colour.")], "Be terse.");
    expect(items.map((i) => [i.role, i.data])).toEqual([
      ["system_context", "Be terse."], ["user_prompt", "Hi"], ["assistant_reply", "Hello."], ["user_prompt", "Name a colour."],
    ]);
  });

  it("skips failed replies and non-chat turns, and attaches only the last turn's images", () => {
    const img = { type: "image" as const, mime_type: "image/png", data: "AAAA", name: "a.png" };
    const items = buildChatInputs([
      msg("user", "old", { attachments: [img] }), msg("assistant", "", { status: "error", error: "x" }),
      msg("user", "a cat", { kind: "tti" }), msg("assistant", "", { kind: "tti" }),
      msg("user", "what is this?", { attachments: [img] }),
    ], "");
    expect(items.map((i) => [i.type, i.role])).toEqual([
      ["text", "user_prompt"], ["text", "user_prompt"], ["image", "input_image"],
    ]);
    expect(items[2]).toMatchObject({ mime_type: "image/png", data: "AAAA" });
  });
});

describe("buildSingleInputs", () => {
  it("sends audio as input_audio for transcription", () => {
    const items = buildSingleInputs("stt", "", [{ type: "audio", mime_type: "audio/wav", data: "UklG", name: "a.wav" }]);
    expect(items).toEqual([{ type: "audio", role: "input_audio", data: "UklG", mime_type: "audio/wav", metadata: { filename: "a.wav" } }]);
  });
});

describe("applyOutputs", () => {
  it("takes text, thoughts, media, usage and duration from outputs", () => {
    const m = msg("assistant", "");
    applyOutputs(m, [
      { type: "text", data: "Paris", thoughts: "capital of France", metadata: { usage: { prompt_tokens: 5, completion_tokens: 1 }, duration: 0.5, model: "m" } },
      { type: "image", data: "iVBO", mime_type: "image/png" },
    ], false);
    expect(m.content).toBe("Paris");
    expect(m.thoughts).toBe("capital of France");
    expect(m.media).toEqual([{ type: "image", mime_type: "image/png", data: "iVBO" }]);
    expect(m.usage?.completion_tokens).toBe(1);
    expect(m.durationS).toBe(0.5);
  });

  it("keeps streamed text and marks errors", () => {
    const m = msg("assistant", "streamed");
    applyOutputs(m, [{ type: "text", data: "streamed" }, { type: "error", data: "backend failed" }], true);
    expect(m.content).toBe("streamed");
    expect(m.status).toBe("error");
    expect(m.error).toBe("backend failed");
  });
});

describe("tokensPerSecond", () => {
  it("divides completion tokens by seconds, and is undefined without data", () => {
    expect(tokensPerSecond({ completion_tokens: 50 }, 2)).toBe(25);
    expect(tokensPerSecond(undefined, 2)).toBeUndefined();
    expect(tokensPerSecond({ completion_tokens: 5 }, 0)).toBeUndefined();
  });
});

describe("streamedTokensPerSecond", () => {
  it("leaves out the wait before the first piece", () => {
    expect(streamedTokensPerSecond({ completion_tokens: 11 }, 2000, 2500)).toBe(20);
    expect(streamedTokensPerSecond({ completion_tokens: 1 }, 2000, 2500)).toBeUndefined();
    expect(streamedTokensPerSecond({ completion_tokens: 9 }, 2000, 2000)).toBeUndefined();
  });
});

describe("applyStreamChunk", () => {
  const streaming = (): ChatMessage => msg("assistant", "", { status: "streaming" });

  it("appends streamed text and takes the final's usage, leaving the streamed text as it is", () => {
    const m = streaming();
    for (const piece of ["Hel", "lo"]) applyStreamChunk(m, { type: "chunk", content: piece }, true);
    applyStreamChunk(m, { type: "final", content: [{ type: "text", data: "Hello" }], metadata: { usage: { completion_tokens: 2 } } }, true);
    expect(m).toMatchObject({ content: "Hello", status: "streaming", usage: { completion_tokens: 2 } });
  });

  it("shows a non-streamed answer at once from the final event, not piece by piece", () => {
    const m = streaming();
    applyStreamChunk(m, { type: "chunk", content: "Hel" }, false);
    expect(m.content).toBe("");
    applyStreamChunk(m, { type: "final", content: [{ type: "text", data: "Hello" }] }, false);
    expect(m.content).toBe("Hello");
  });

  it("starts the answer again when the job restarts from the beginning (its runner died)", () => {
    const m = streaming();
    applyStreamChunk(m, { type: "chunk", content: "first try", thoughts: "hmm" }, true);
    applyStreamChunk(m, { type: "info", content: "the job restarts", metadata: { job_restarted: true, attempt: 2 } }, true);
    expect(m).toMatchObject({ content: "", info: "the job restarts" });
    expect(m.thoughts).toBeUndefined();
    applyStreamChunk(m, { type: "chunk", content: "second try" }, true);
    expect(m.content).toBe("second try");
  });

  it("ends a job cancelled elsewhere as stopped, keeping its text, not as an error", () => {
    const m = streaming();
    applyStreamChunk(m, { type: "chunk", content: "partial" }, true);
    applyStreamChunk(m, { type: "error", content: "cancelled", metadata: { job_state: "cancelled" } }, true);
    applyStreamChunk(m, { type: "final", metadata: { job_state: "cancelled" }, content: [
      { type: "text", data: "partial" }, { type: "error", data: "cancelled", metadata: { finish_reason: "cancelled" } },
    ] }, true);
    expect(m).toMatchObject({ content: "partial", status: "stopped" });
    expect(m.error).toBeUndefined();
  });

  it("ends a failed job as an error with the server's message", () => {
    const m = streaming();
    applyStreamChunk(m, { type: "error", content: "the model crashed", metadata: { job_state: "failed" } }, true);
    applyStreamChunk(m, { type: "final", metadata: { job_state: "failed" }, content: [{ type: "error", data: "the model crashed" }] }, true);
    expect(m).toMatchObject({ status: "error", error: "the model crashed" });
  });
});

