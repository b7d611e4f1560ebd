import { describe, expect, it } from "vitest";
import { activePath, applyToolChunk, linkLegacyMessages, siblingsOf, switchBranch, titleFrom, type ChatMessage, type Conversation } from "./conversation";
import { importConversations } from "./importers";
import { specsFromDeclarations } from "./params";
import { humanError } from "./errors";

const m = (id: string, role: "user" | "assistant", parentId: string | null): ChatMessage =>
  ({ id, role, kind: "ttt", content: id, createdAt: 0, parentId });

function tree(): Conversation {
  // u1 -> a1 -> u2 -> a2 ; u1 -> a1b (regenerated) ; u1b (edited, root sibling) -> a3
  return { id: "c", title: "t", createdAt: 0, updatedAt: 0, leafId: "a2", messages: [
    m("u1", "user", null), m("a1", "assistant", "u1"), m("u2", "user", "a1"), m("a2", "assistant", "u2"),
    m("a1b", "assistant", "u1"), m("u1b", "user", null), m("a3", "assistant", "u1b"),
  ] };
}

describe("branches", () => {
  it("shows the path to the leaf and the versions beside each message", () => {
    const c = tree();
    expect(activePath(c).map((x) => x.id)).toEqual(["u1", "a1", "u2", "a2"]);
    expect(siblingsOf(c, c.messages[1]).map((x) => x.id)).toEqual(["a1", "a1b"]);
    expect(siblingsOf(c, c.messages[0]).map((x) => x.id)).toEqual(["u1", "u1b"]);
  });
  it("switching a version shows the newest branch under it", () => {
    const c = tree();
    switchBranch(c, c.messages[0], 1);
    expect(activePath(c).map((x) => x.id)).toEqual(["u1b", "a3"]);
    switchBranch(c, c.messages[5], -1);
    expect(activePath(c).map((x) => x.id)).toEqual(["u1", "a1b"]);
    switchBranch(c, c.messages[0], -1); // out of range: nothing changes
    expect(c.leafId).toBe("a1b");
  });
  it("links the messages of older, linear conversations", () => {
    const c: Conversation = { id: "c", title: "t", createdAt: 0, updatedAt: 0, messages: [
      { id: "x", role: "user", kind: "ttt", content: "", createdAt: 0 }, { id: "y", role: "assistant", kind: "ttt", content: "", createdAt: 0 }] };
    linkLegacyMessages(c);
    expect(c.messages.map((x) => x.parentId)).toEqual([null, "x"]);
    expect(activePath(c).map((x) => x.id)).toEqual(["x", "y"]);
  });
});

describe("tool steps", () => {
  it("pairs a call with its result by id, and takes the final metadata", () => {
    const reply = m("r", "assistant", null);
    applyToolChunk(reply, { id: "1", name: "math.add", arguments: { a: 1, b: 2 }, status: "call" });
    expect(reply.toolCalls).toEqual([{ id: "1", name: "math.add", arguments: { a: 1, b: 2 }, status: "call" }]);
    applyToolChunk(reply, { id: "1", name: "math.add", result: 3, error: null, status: "result" });
    expect(reply.toolCalls?.[0]).toMatchObject({ status: "result", result: 3, error: null, arguments: { a: 1, b: 2 } });
    applyToolChunk(reply, { id: "2", name: "web.get", error: "timeout", status: "result" });
    expect(reply.toolCalls?.[1]).toMatchObject({ status: "result", error: "timeout" });
    applyToolChunk(reply, "not an object");
    expect(reply.toolCalls).toHaveLength(2);
  });
});

describe("titles", () => {
  it("turns Markdown into plain words", () => {
    expect(titleFrom("| **Animal** | Legs |\n|---|---|\n| Zebra | 4 |")).toBe("Animal Legs Zebra 4");
    expect(titleFrom('Title: "Lighthouses at night."')).toBe("Lighthouses at night");
    expect(titleFrom("   ")).toBe("New chat");
    expect(titleFrom("x".repeat(60))).toHaveLength(48);
  });
});

describe("declared parameters", () => {
  it("become fields for the mode, with the server's defaults", () => {
    const specs = specsFromDeclarations([
      { name: "max_tokens", type: "integer", default: 1024, minimum: 1, maximum: null, help: "Longest reply", generation_types: ["ttt"] },
      { name: "temperature", type: "number", default: 0.8, minimum: 0, maximum: 2, generation_types: null },
      { name: "width", type: "integer", default: 512, generation_types: ["tti"] },
      { name: "style", type: "string", default: "vivid", choices: ["vivid", "natural"] },
      { name: "stop", type: "array", default: [] },
      { name: "json", type: "boolean", default: false },
    ], "ttt");
    expect(Object.keys(specs)).toEqual(["max_tokens", "temperature", "style", "json"]);
    expect(specs.max_tokens).toMatchObject({ type: "int", default: 1024, min: 1, max: undefined });
    expect(specs.temperature).toMatchObject({ type: "float", default: 0.8, min: 0, max: 2 });
    expect(specs.style).toMatchObject({ type: "string", choices: ["vivid", "natural"] });
    expect(specs.json).toMatchObject({ type: "bool", default: false });
  });
});

describe("human errors", () => {
  it("explains a refused image without the request's jargon", () => {
    const text = humanError("input_data[1]: binding 'dummy' with model 'dummy-echo' does not accept image input (accepts: text) (HTTP 400)", "ttt");
    expect(text).toContain("“dummy-echo” cannot read images");
    expect(text).not.toContain("input_data");
  });
});

describe("import", () => {
  it("reads a ChatGPT export tree, dropping system and empty nodes", () => {
    const [c] = importConversations([{ title: "T", current_node: "b", mapping: {
      r: { id: "r", message: null, parent: null, children: ["a"] },
      a: { id: "a", parent: "r", children: ["b"], message: { author: { role: "user" }, content: { parts: ["hi"] }, create_time: 1 } },
      b: { id: "b", parent: "a", children: [], message: { author: { role: "assistant" }, content: { parts: ["hello"] }, create_time: 2 } },
    } }]);
    expect(activePath(c).map((x) => [x.role, x.content])).toEqual([["user", "hi"], ["assistant", "hello"]]);
  });
  it("imports an answer that was still on its way as stopped, without its server job", () => {
    const [c] = importConversations([{ title: "Mine", messages: [
      { id: "u", role: "user", content: "hi", parentId: null },
      { id: "a", role: "assistant", content: "hel", status: "streaming", parentId: "u", job: { id: "j1", lastEventId: "3", streamed: true } },
    ] }]);
    expect(c.messages[1]).toMatchObject({ status: "stopped", content: "hel" });
    expect(c.messages[1].job).toBeUndefined();
  });

  it("reads an Open WebUI export and refuses unknown JSON", () => {
    const [c] = importConversations({ title: "O", chat: { history: { currentId: "2", messages: {
      1: { id: "1", parentId: null, role: "user", content: "q" }, 2: { id: "2", parentId: "1", role: "assistant", content: "a" } } } } });
    expect(activePath(c).map((x) => x.content)).toEqual(["q", "a"]);
    expect(() => importConversations({ foo: 1 })).toThrow(/No conversation found/);
  });
});
