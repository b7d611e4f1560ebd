// Conversations as the UI keeps them, and how they become a GenerateRequest's input_data.
import type { DocumentEntry, Source } from "./documents";
import type { JobCursor } from "./jobs";
import type { GenerationType, InputData, OutputData, ParamValue, StreamChunk, Usage } from "./types";

/** What a conversation sends with: each conversation keeps its own; new ones start from the user's defaults. */
export interface ChatSettings {
  mode: GenerationType;
  personality: string;
  systemPrompt: string;
  bindings: Partial<Record<GenerationType, string>>; // "" = server default
  models: Record<string, string>; // binding instance -> model ("" = instance default)
  params: Record<string, Record<string, ParamValue>>; // "instance:mode" -> parameter values
  streaming: boolean;
  functions: string[]; // server-side functions (module.function) the model may call in chat
}

/** One step of a tool-using reply: the call the model made and, once it ran, its result or error. */
export interface ToolStep {
  id: string;
  name: string;
  arguments: unknown;
  result?: unknown;
  error?: string | null;
  status: "call" | "result";
}

export interface Attachment {
  type: "image" | "audio";
  mime_type: string;
  data: string; // base64 without the data: prefix
  name: string;
}

export interface MediaOutput {
  type: "image" | "audio";
  mime_type: string;
  data: string; // base64
}

/** "interrupted": the answer can no longer arrive (its server job is gone); the text so far stays. */
export type MessageStatus = "streaming" | "done" | "stopped" | "error" | "interrupted";

export interface ChatMessage {
  id: string;
  role: "user" | "assistant";
  kind: GenerationType;
  content: string;
  thoughts?: string;
  info?: string; // latest progress note from the server while the reply is on its way
  attachments?: Attachment[];
  media?: MediaOutput[];
  status?: MessageStatus;
  error?: string;
  usage?: Usage;
  durationS?: number;
  tokensPerSecond?: number;
  firstTokenS?: number; // seconds from sending to the first streamed piece
  model?: string;
  binding?: string;
  toolCalls?: ToolStep[];
  sources?: Source[]; // document excerpts the reply was given
  contextNote?: string; // documents that did not fit in the context
  parentId?: string | null; // the message this one answers or follows (null: first of the conversation)
  createdAt: number;
  job?: JobCursor; // the server job of an answer still on its way (saved, so a reload resumes it)
}

export interface Conversation {
  id: string;
  title: string;
  createdAt: number;
  updatedAt: number;
  messages: ChatMessage[]; // every message of every branch, in creation order
  leafId?: string; // last message of the branch on screen
  settings?: ChatSettings;
  documents?: DocumentEntry[];
  titleSource?: "first-message" | "model" | "user";
}

/** Older conversations were one list: link each message to the one before it. */
export function linkLegacyMessages(conv: Conversation): void {
  conv.messages.forEach((m, i) => {
    if (m.parentId === undefined) m.parentId = i === 0 ? null : conv.messages[i - 1].id;
  });
}

/** The messages from the first one down to `leafId`, in order. */
export function pathTo(conv: Conversation, leafId: string | undefined): ChatMessage[] {
  const byId = new Map(conv.messages.map((m) => [m.id, m]));
  const path: ChatMessage[] = [];
  let cursor = leafId ? byId.get(leafId) : undefined;
  const seen = new Set<string>();
  while (cursor && !seen.has(cursor.id)) {
    seen.add(cursor.id);
    path.push(cursor);
    cursor = cursor.parentId ? byId.get(cursor.parentId) : undefined;
  }
  return path.reverse();
}

/** The branch on screen. */
export function activePath(conv: Conversation): ChatMessage[] {
  const leaf = conv.leafId && conv.messages.some((m) => m.id === conv.leafId) ? conv.leafId : conv.messages[conv.messages.length - 1]?.id;
  return pathTo(conv, leaf);
}

/** Messages sharing this one's parent (its alternatives), oldest first. */
export function siblingsOf(conv: Conversation, message: ChatMessage): ChatMessage[] {
  const parent = message.parentId ?? null;
  return conv.messages.filter((m) => (m.parentId ?? null) === parent);
}

/** The newest message at the end of the branch that starts at `id`. */
export function newestLeafUnder(conv: Conversation, id: string): string {
  let current = id;
  for (;;) {
    const children = conv.messages.filter((m) => m.parentId === current);
    if (!children.length) return current;
    current = children[children.length - 1].id;
  }
}

/** Show the sibling `delta` steps away from `message` (and the newest branch under it). */
export function switchBranch(conv: Conversation, message: ChatMessage, delta: number): void {
  const siblings = siblingsOf(conv, message);
  const index = siblings.findIndex((m) => m.id === message.id) + delta;
  if (index < 0 || index >= siblings.length) return;
  conv.leafId = newestLeafUnder(conv, siblings[index].id);
}

export function newId(): string {
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Markdown text as plain words on one line: no table bars, emphasis marks, headings or code fences. */
export function plainWords(text: string): string {
  return text
    .replace(/<think>[\s\S]*?(<\/think>|$)/g, " ")
    .replace(/```[\w-]*|`/g, " ")
    .replace(/^\s*(title|titre)\s*:\s*/i, "")
    .replace(/^\s*[-:| ]+$/gm, " ")
    .replace(/[|*_#>~\[\]]+/g, " ")
    .replace(/^["'“”«»\s]+|["'“”«»\s.]+$/g, "")
    .replace(/\s+/g, " ")
    .trim();
}

/** A readable one-line title from Markdown text (at most 48 characters). */
export function titleFrom(text: string): string {
  const clean = plainWords(text);
  return clean.length > 48 ? `${clean.slice(0, 47).trimEnd()}…` : clean || "New chat";
}

/**
 * input_data for a chat turn: system prompt as system_context, earlier turns as user_prompt /
 * assistant_reply in order (only finished text replies), and the last user turn's images as input_image.
 */
export function buildChatInputs(messages: ChatMessage[], systemPrompt: string): InputData[] {
  const items: InputData[] = [];
  if (systemPrompt.trim()) items.push({ type: "text", role: "system_context", data: systemPrompt.trim() });
  const lastUser = messages.map((m) => m.role).lastIndexOf("user");
  messages.forEach((m, index) => {
    if (m.kind !== "ttt" && index !== lastUser) return; // image/speech turns are not chat history
    if (m.role === "user") {
      items.push({ type: "text", role: "user_prompt", data: m.content });
      if (index === lastUser) {
        for (const a of m.attachments ?? []) {
          if (a.type === "image") items.push({ type: "image", role: "input_image", data: a.data, mime_type: a.mime_type, metadata: { filename: a.name } });
        }
      }
    } else if (m.content && m.status !== "error" && m.status !== "interrupted") {
      items.push({ type: "text", role: "assistant_reply", data: m.content });
    }
  });
  return items;
}

/** input_data for a one-shot request (image, speech, transcription) from the prompt and its attachments. */
export function buildSingleInputs(kind: GenerationType, prompt: string, attachments: Attachment[]): InputData[] {
  const items: InputData[] = [];
  if (prompt.trim()) items.push({ type: "text", role: "user_prompt", data: prompt });
  for (const a of attachments) {
    if (a.type === "audio" && kind === "stt") {
      items.push({ type: "audio", role: "input_audio", data: a.data, mime_type: a.mime_type, metadata: { filename: a.name } });
    } else if (a.type === "image") {
      items.push({ type: "image", role: "input_image", data: a.data, mime_type: a.mime_type, metadata: { filename: a.name } });
    }
  }
  return items;
}

/** Fold a finished reply's outputs (final chunk content or a GenerateResponse's output) into the message. */
export function applyOutputs(message: ChatMessage, outputs: OutputData[], streamedText: boolean): void {
  const media: MediaOutput[] = [];
  const texts: string[] = [];
  for (const out of outputs) {
    if ((out.type === "image" || out.type === "audio") && typeof out.data === "string") {
      media.push({ type: out.type, mime_type: out.mime_type || (out.type === "image" ? "image/png" : "audio/wav"), data: out.data });
    } else if (out.type === "text" && typeof out.data === "string") {
      texts.push(out.data);
      if (out.thoughts) message.thoughts = out.thoughts;
    } else if (out.type === "error") {
      message.error = String(out.data);
      message.status = "error";
    } else if (out.type === "json") {
      texts.push("```json\n" + JSON.stringify(out.data, null, 2) + "\n```");
    }
    const meta = out.metadata ?? {};
    if (meta.tool_calls) applyToolCallsMetadata(message, meta.tool_calls);
    if (meta.usage && !message.usage) message.usage = meta.usage;
    if (typeof meta.duration === "number" && message.durationS === undefined) message.durationS = meta.duration;
    if (typeof meta.model === "string" && !message.model) message.model = meta.model;
    if (typeof meta.binding === "string" && !message.binding) message.binding = meta.binding;
  }
  if (!streamedText && texts.length) message.content = texts.join("\n\n");
  else if (streamedText && texts.length && !message.content) message.content = texts.join("\n\n");
  if (media.length) message.media = [...(message.media ?? []), ...media];
}

/** What a job's stream says when its runner died and it starts again from the beginning (Redis mode). */
function isRestart(chunk: StreamChunk): boolean {
  return chunk.type === "info" && Boolean(chunk.metadata?.job_restarted);
}

/** A job cancelled by anyone (this page's Stop, another tab, an API call) ends as stopped, not as an error. */
function isCancelledJob(chunk: StreamChunk): boolean {
  return chunk.metadata?.job_state === "cancelled";
}

/**
 * Fold one StreamChunk (of a streamed generate or of a job's events) into the reply. With `streamedText`
 * false (the user turned streaming off) the text shows at once from the final event.
 */
export function applyStreamChunk(message: ChatMessage, chunk: StreamChunk, streamedText: boolean): void {
  if (isRestart(chunk)) {
    // The answer is being written again from the start: what came of the lost attempt goes.
    message.content = "";
    message.thoughts = undefined;
    message.toolCalls = undefined;
    message.usage = undefined;
  }
  switch (chunk.type) {
    case "chunk":
      if (!streamedText) break;
      if (typeof chunk.content === "string") message.content += chunk.content;
      else if (Array.isArray(chunk.content)) applyOutputs(message, chunk.content as OutputData[], true);
      if (chunk.thoughts) message.thoughts = (message.thoughts ?? "") + chunk.thoughts;
      break;
    case "error":
      if (isCancelledJob(chunk)) break;
      message.error = String(chunk.content);
      message.status = "error";
      break;
    case "function_call":
      applyToolChunk(message, chunk.content);
      break;
    case "final": {
      let outputs = Array.isArray(chunk.content) ? (chunk.content as OutputData[]) : [];
      const cancelled = isCancelledJob(chunk) || outputs.some((o) => o.metadata?.finish_reason === "cancelled");
      if (isCancelledJob(chunk)) outputs = outputs.filter((o) => o.type !== "error");
      const hadThoughts = Boolean(message.thoughts);
      applyOutputs(message, outputs, streamedText);
      if (hadThoughts) message.thoughts = message.thoughts?.trim();
      if (chunk.metadata?.usage) message.usage = chunk.metadata.usage;
      if (cancelled && message.status === "streaming") message.status = "stopped";
      break;
    }
    case "info":
      if (typeof chunk.content === "string") message.info = chunk.content;
      break;
    default:
      break;
  }
}

/** Fold one `function_call` stream chunk (a call, then its result) into the reply's tool steps. */
export function applyToolChunk(message: ChatMessage, content: unknown): void {
  if (!content || typeof content !== "object") return;
  const c = content as Record<string, unknown>;
  const steps = (message.toolCalls ??= []);
  const id = typeof c.id === "string" && c.id ? c.id : `call-${steps.length + 1}`;
  const name = typeof c.name === "string" ? c.name : "tool";
  let step = steps.find((s) => s.id === id);
  if (!step) {
    step = { id, name, arguments: c.arguments ?? {}, status: "call" };
    steps.push(step);
  }
  if (c.arguments !== undefined) step.arguments = c.arguments;
  if (c.status === "result" || "result" in c || c.error) {
    step.status = "result";
    step.result = c.result;
    step.error = typeof c.error === "string" ? c.error : c.error ? JSON.stringify(c.error) : null;
  }
}

/** Tool steps recorded in a final output's metadata (`tool_calls`), merged with any streamed ones. */
function applyToolCallsMetadata(message: ChatMessage, calls: unknown): void {
  if (!Array.isArray(calls)) return;
  for (const call of calls) {
    if (call && typeof call === "object") applyToolChunk(message, { ...(call as object), status: "result" });
  }
}

/** Tokens per second of a reply: completion tokens over the generation time. */
export function tokensPerSecond(usage: Usage | undefined, seconds: number | undefined): number | undefined {
  const tokens = usage?.completion_tokens;
  if (!tokens || !seconds || seconds <= 0) return undefined;
  return Math.round((tokens / seconds) * 10) / 10;
}

/**
 * Decoding speed of a streamed reply: the tokens after the first over the time between the first and the
 * last piece, so model loading and prompt processing do not count. Undefined when it cannot be measured.
 */
export function streamedTokensPerSecond(usage: Usage | undefined, firstMs: number | undefined, lastMs: number | undefined): number | undefined {
  const tokens = usage?.completion_tokens;
  if (!tokens || tokens < 2 || firstMs === undefined || lastMs === undefined || lastMs <= firstMs) return undefined;
  return Math.round(((tokens - 1) / ((lastMs - firstMs) / 1000)) * 10) / 10;
}
