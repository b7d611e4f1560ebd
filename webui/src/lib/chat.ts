// Sending prompts and receiving replies: streamed chat, one-shot image/speech/transcription, stop, retry, edit.
import { reactive } from "vue";
import { ApiError } from "./api";
import { catalog, effectiveInstance, requestParams } from "./catalog";
import {
  applyOutputs, buildChatInputs, buildSingleInputs, newId, streamedTokensPerSecond, titleFrom, tokensPerSecond,
  type Attachment, type ChatMessage, type Conversation,
} from "./conversation";
import { conversations, saveConversations, settings } from "./store";
import type { GenerateRequest, GenerationType, OutputData } from "./types";

export const session = reactive({ currentId: "", busy: false, controller: null as AbortController | null });

export function currentConversation(): Conversation | undefined {
  return conversations.find((c) => c.id === session.currentId);
}

export function newConversation(): Conversation {
  const c: Conversation = { id: newId(), title: "New chat", createdAt: Date.now(), updatedAt: Date.now(), messages: [] };
  conversations.unshift(c);
  session.currentId = c.id;
  return conversations[0];
}

function requestFor(kind: GenerationType, inputs: GenerateRequest["input_data"]): GenerateRequest {
  const instance = effectiveInstance(kind);
  const model = instance ? settings.models[instance] : "";
  return {
    input_data: inputs,
    generation_type: kind,
    stream: kind === "ttt" && settings.streaming,
    personality: kind === "ttt" && settings.personality ? settings.personality : null,
    binding_name: settings.bindings[kind] && settings.bindings[kind]! in catalog.active ? settings.bindings[kind] : null,
    model_name: model || null,
    parameters: requestParams(instance, kind),
  };
}

/** Add the user's prompt to the conversation and get the reply. */
export async function sendPrompt(kind: GenerationType, prompt: string, attachments: Attachment[]): Promise<void> {
  const conv = currentConversation() ?? newConversation();
  if (conv.messages.length === 0) conv.title = titleFrom(prompt || attachments[0]?.name || "New chat");
  conv.messages.push({ id: newId(), role: "user", kind, content: prompt, attachments, createdAt: Date.now() });
  await answer(conv, kind);
}

/** Ask again for the last user turn (drops the reply after it). */
export async function retryLast(): Promise<void> {
  const conv = currentConversation();
  if (!conv || session.busy) return;
  while (conv.messages.length && conv.messages[conv.messages.length - 1].role === "assistant") conv.messages.pop();
  const last = conv.messages[conv.messages.length - 1];
  if (last) await answer(conv, last.kind);
}

/** Replace the last user turn's text and ask again. */
export async function editLast(text: string): Promise<void> {
  const conv = currentConversation();
  if (!conv || session.busy) return;
  const index = conv.messages.map((m) => m.role).lastIndexOf("user");
  if (index < 0) return;
  conv.messages.splice(index + 1);
  conv.messages[index].content = text;
  await answer(conv, conv.messages[index].kind);
}

export function stopGeneration(): void {
  session.controller?.abort();
}

async function answer(conv: Conversation, kind: GenerationType): Promise<void> {
  const client = catalog.client;
  if (!client) return;
  const user = conv.messages[conv.messages.length - 1];
  const inputs = kind === "ttt" ? buildChatInputs(conv.messages, settings.systemPrompt)
    : buildSingleInputs(kind, user.content, user.attachments ?? []);
  const request = requestFor(kind, inputs);
  conv.messages.push({ id: newId(), role: "assistant", kind, content: "", status: "streaming", createdAt: Date.now() });
  const reply = conv.messages[conv.messages.length - 1]; // the reactive proxy
  reply.binding = effectiveInstance(kind) || undefined;
  const controller = new AbortController();
  session.controller = controller;
  session.busy = true;
  const started = performance.now();
  const timing: StreamTiming = {};
  try {
    if (request.stream) await streamInto(reply, request, controller.signal, timing);
    else {
      const response = await client.generate(request, controller.signal);
      applyOutputs(reply, response.output, false);
    }
    if (reply.status === "streaming") reply.status = "done";
    reply.info = undefined;
  } catch (err) {
    if (controller.signal.aborted) reply.status = "stopped";
    else {
      reply.status = "error";
      reply.error = err instanceof ApiError ? err.message : `Request failed: ${String(err)}`;
    }
  } finally {
    const elapsed = (performance.now() - started) / 1000;
    reply.durationS ??= Math.round(elapsed * 100) / 100;
    if (timing.firstMs !== undefined) reply.firstTokenS = Math.round((timing.firstMs - started) / 10) / 100;
    reply.tokensPerSecond = streamedTokensPerSecond(reply.usage, timing.firstMs, timing.lastMs)
      ?? tokensPerSecond(reply.usage, reply.durationS);
    reply.info = undefined;
    session.busy = false;
    session.controller = null;
    conv.updatedAt = Date.now();
    saveConversations();
  }
}

interface StreamTiming {
  firstMs?: number;
  lastMs?: number;
}

async function streamInto(reply: ChatMessage, request: GenerateRequest, signal: AbortSignal, timing: StreamTiming): Promise<void> {
  const client = catalog.client!;
  for await (const chunk of client.generateStream(request, signal)) {
    switch (chunk.type) {
      case "chunk":
        timing.firstMs ??= performance.now();
        timing.lastMs = performance.now();
        if (typeof chunk.content === "string") reply.content += chunk.content;
        else if (Array.isArray(chunk.content)) applyOutputs(reply, chunk.content as OutputData[], true);
        if (chunk.thoughts) reply.thoughts = (reply.thoughts ?? "") + chunk.thoughts;
        break;
      case "error":
        reply.error = String(chunk.content);
        reply.status = "error";
        break;
      case "function_call":
        reply.content += `\n\n\`function call: ${JSON.stringify(chunk.content)}\`\n\n`;
        break;
      case "final": {
        const outputs = Array.isArray(chunk.content) ? (chunk.content as OutputData[]) : [];
        const hadThoughts = Boolean(reply.thoughts);
        applyOutputs(reply, outputs, true);
        if (hadThoughts) reply.thoughts = reply.thoughts?.trim();
        if (chunk.metadata?.usage) reply.usage = chunk.metadata.usage;
        if (outputs.some((o) => o.metadata?.finish_reason === "cancelled") && reply.status === "streaming") reply.status = "stopped";
        break;
      }
      case "info":
        if (typeof chunk.content === "string") reply.info = chunk.content;
        break;
      default:
        break;
    }
  }
}

/** Speak a reply's text: a tts request whose audio is attached to the message. */
export async function speakMessage(message: ChatMessage): Promise<string> {
  const client = catalog.client;
  if (!client) return "Not connected.";
  try {
    const request = requestFor("tts", [{ type: "text", role: "user_prompt", data: message.content }]);
    const response = await client.generate(request);
    const audio = response.output.find((o) => o.type === "audio" && typeof o.data === "string");
    if (!audio) return response.output.find((o) => o.type === "error")?.data as string ?? "No audio came back.";
    message.media = [...(message.media ?? []).filter((m) => m.type !== "audio"),
      { type: "audio", mime_type: audio.mime_type || "audio/wav", data: audio.data as string }];
    return "";
  } catch (err) {
    return err instanceof ApiError ? err.message : String(err);
  }
}
