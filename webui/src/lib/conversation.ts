// Conversations as the UI keeps them, and how they become a GenerateRequest's input_data.
import type { GenerationType, InputData, OutputData, Usage } from "./types";

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

export type MessageStatus = "streaming" | "done" | "stopped" | "error";

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
  createdAt: number;
}

export interface Conversation {
  id: string;
  title: string;
  createdAt: number;
  updatedAt: number;
  messages: ChatMessage[];
}

export function newId(): string {
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

export function titleFrom(text: string): string {
  const clean = text.replace(/\s+/g, " ").trim();
  return clean.length > 48 ? `${clean.slice(0, 47)}…` : clean || "New chat";
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
    } else if (m.content && m.status !== "error") {
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
    if (meta.usage && !message.usage) message.usage = meta.usage;
    if (typeof meta.duration === "number" && message.durationS === undefined) message.durationS = meta.duration;
    if (typeof meta.model === "string" && !message.model) message.model = meta.model;
    if (typeof meta.binding === "string" && !message.binding) message.binding = meta.binding;
  }
  if (!streamedText && texts.length) message.content = texts.join("\n\n");
  else if (streamedText && texts.length && !message.content) message.content = texts.join("\n\n");
  if (media.length) message.media = [...(message.media ?? []), ...media];
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
