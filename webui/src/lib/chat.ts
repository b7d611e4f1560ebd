// Sending prompts and receiving replies: streamed chat, one-shot image/speech/transcription, stop,
// regenerate any reply and edit any prompt (alternatives kept as branches), titles written by the model.
import { reactive } from "vue";
import { ApiError } from "./api";
import { active, currentConversation, draft, resetDraft, session } from "./active";
import { capabilities, catalog, chosenModel, effectiveInstance, embeddingInstance, instanceToSend, requestParams } from "./catalog";
import {
  chunkText, estimateTokens, MAX_DOCUMENT_CHARS, readDocumentText, retrievedContext, wholeContext, type DocumentContext, type DocumentEntry,
} from "./documents";
import {
  activePath, applyOutputs, applyStreamChunk, buildChatInputs, buildSingleInputs, newId, pathTo, plainWords, streamedTokensPerSecond,
  titleFrom, tokensPerSecond, type Attachment, type ChatMessage, type ChatSettings, type Conversation,
} from "./conversation";
import { humanError } from "./errors";
import { ConnectionLostError, followJob, isFinished, JobGoneError } from "./jobs";
import { conversations, saveConversations } from "./store";
import type { GenerateRequest, GenerationType, InputData, JobInfo, StreamChunk } from "./types";

export { currentConversation, session } from "./active";

/** The connected API client (as the reactive catalog holds it). */
type Client = NonNullable<typeof catalog.client>;

export function newConversation(from?: ChatSettings): Conversation {
  const settings = JSON.parse(JSON.stringify(from ?? draft)) as ChatSettings;
  const c: Conversation = { id: newId(), title: "New chat", createdAt: Date.now(), updatedAt: Date.now(), messages: [], settings };
  conversations.unshift(c);
  session.currentId = c.id;
  return conversations[0];
}

/** The empty screen of a new chat, with the user's default settings (created on the first message). */
export function startNewChat(): void {
  resetDraft();
  session.currentId = "";
}

function requestFor(kind: GenerationType, inputs: InputData[]): GenerateRequest {
  const chat = active();
  const instance = effectiveInstance(kind);
  return {
    input_data: inputs,
    generation_type: kind,
    stream: kind === "ttt" && chat.streaming,
    personality: kind === "ttt" && chat.personality ? chat.personality : null,
    binding_name: instanceToSend(kind),
    model_name: chosenModel(instance) || null,
    parameters: requestParams(instance, kind),
    ...(kind === "ttt" && chat.functions?.length ? { functions: [...chat.functions] } : {}),
  };
}

/** Add the user's prompt at the end of the branch on screen and get the reply. */
export async function sendPrompt(kind: GenerationType, prompt: string, attachments: Attachment[], extra: Partial<ChatMessage> = {}): Promise<void> {
  const conv = currentConversation() ?? newConversation();
  const parent = activePath(conv).at(-1);
  if (conv.messages.length === 0) {
    conv.title = titleFrom(prompt || attachments[0]?.name || "New chat");
    conv.titleSource = "first-message";
  }
  const user: ChatMessage = { id: newId(), role: "user", kind, content: prompt, attachments, createdAt: Date.now(), parentId: parent?.id ?? null, ...extra };
  conv.messages.push(user);
  conv.leafId = user.id;
  await answer(conv, conv.messages[conv.messages.length - 1]);
}

/** Ask again for the prompt a reply answered; the new reply becomes an alternative beside the old one. */
export async function regenerate(reply: ChatMessage): Promise<void> {
  const conv = currentConversation();
  if (!conv || session.busy) return;
  const user = conv.messages.find((m) => m.id === reply.parentId);
  if (user) await answer(conv, user);
}

/** A new version of a prompt (beside the old one, which keeps its replies) and its reply. */
export async function editPrompt(original: ChatMessage, text: string): Promise<void> {
  const conv = currentConversation();
  if (!conv || session.busy) return;
  const edited: ChatMessage = {
    id: newId(), role: "user", kind: original.kind, content: text, attachments: original.attachments,
    createdAt: Date.now(), parentId: original.parentId ?? null,
  };
  conv.messages.push(edited);
  conv.leafId = edited.id;
  await answer(conv, conv.messages[conv.messages.length - 1]);
}

/** Stop the answers on their way: their jobs are cancelled on the server (DELETE), then the streams close. */
export function stopGeneration(): void {
  session.controller?.abort();
}

/** Answers this page is receiving right now (message ids), so a reconnect never follows one twice. */
const receiving = new Set<string>();

const GONE_MESSAGE = "This answer was interrupted: the server no longer has its job (it expired, or the server restarted). "
  + "The text above is what arrived before. Regenerate to ask again.";
const PAGE_CLOSED_MESSAGE = "This answer was interrupted when the page was closed (it was not kept on the server as a job). "
  + "Regenerate to ask again.";

interface StreamTiming {
  firstMs?: number;
  lastMs?: number;
}

async function answer(conv: Conversation, user: ChatMessage): Promise<void> {
  const client = catalog.client;
  if (!client) return;
  const kind = user.kind;
  const chat = active();
  const inputs = kind === "ttt" ? buildChatInputs(pathTo(conv, user.id), chat.systemPrompt)
    : buildSingleInputs(kind, user.content, user.attachments ?? []);
  const request = requestFor(kind, inputs);
  conv.messages.push({ id: newId(), role: "assistant", kind, content: "", status: "streaming", createdAt: Date.now(), parentId: user.id });
  const reply = conv.messages[conv.messages.length - 1]; // the reactive proxy
  const docs = (conv.documents ?? []).filter((d) => d.status === "ready");
  if (kind === "ttt" && docs.length) {
    const context = await documentContext(docs, user.content, inputs, request.parameters);
    request.input_data = [...context.items, ...inputs];
    if (context.sources.length) reply.sources = context.sources;
    if (context.note) reply.contextNote = context.note;
  }
  conv.leafId = reply.id;
  reply.binding = effectiveInstance(kind) || undefined;
  const controller = new AbortController();
  session.controller = controller;
  session.busy = true;
  receiving.add(reply.id);
  const started = performance.now();
  const timing: StreamTiming = {};
  try {
    // A job keeps running when the page closes, and its events can be read again from where they stopped.
    const job = await client.createJob(request);
    if (job) {
      reply.job = { id: job.job_id, lastEventId: null, streamed: request.stream };
      saveConversations(); // a reload from now on finds the job
      controller.signal.throwIfAborted(); // Stop pressed while the job was being created
      await followReply(client, reply, controller.signal, timing);
    } else if (request.stream) {
      await streamInto(client, reply, request, controller.signal, timing);
    } else {
      applyOutputs(reply, (await client.generate(request, controller.signal)).output, false);
    }
    if (reply.status === "streaming") reply.status = "done";
  } catch (err) {
    await failed(client, reply, err, controller.signal);
  } finally {
    const elapsed = (performance.now() - started) / 1000;
    reply.durationS ??= Math.round(elapsed * 100) / 100;
    if (timing.firstMs !== undefined) reply.firstTokenS = Math.round((timing.firstMs - started) / 10) / 100;
    finish(conv, reply, timing);
    session.busy = false;
    session.controller = null;
  }
}

/** How an answer ends when something went wrong: stopped (its job cancelled), interrupted, or an error. */
async function failed(client: Client, reply: ChatMessage, err: unknown, signal: AbortSignal): Promise<void> {
  if (signal.aborted) {
    if (reply.job) await cancelJob(client, reply.job.id);
    reply.status = "stopped";
  } else if (err instanceof JobGoneError) {
    reply.status = "interrupted";
    reply.error = GONE_MESSAGE;
    reply.job = undefined;
  } else if (err instanceof ConnectionLostError) {
    reply.status = "interrupted"; // the job may well still run: its cursor is kept, the next load resumes it
    reply.error = `${err.message} The answer may still be running on the server: reload the page to pick it up.`;
  } else {
    reply.status = "error";
    reply.error = err instanceof ApiError ? err.message : `Request failed: ${String(err)}`;
  }
}

/** DELETE the job, waiting at most a few seconds (the answer shows as stopped either way). */
async function cancelJob(client: Client, jobId: string): Promise<void> {
  const timeout = new Promise<void>((resolve) => setTimeout(resolve, 5000));
  await Promise.race([client.cancelJob(jobId).then(() => undefined, () => undefined), timeout]);
}

/** Common end of an answer (new or resumed): speed, wording of errors, the job forgotten, saved, titled. */
function finish(conv: Conversation, reply: ChatMessage, timing: StreamTiming): void {
  reply.tokensPerSecond = streamedTokensPerSecond(reply.usage, timing.firstMs, timing.lastMs)
    ?? tokensPerSecond(reply.usage, reply.durationS);
  reply.info = undefined;
  if (reply.error) reply.error = humanError(reply.error, reply.kind);
  if (reply.status !== "streaming" && reply.status !== "interrupted") reply.job = undefined;
  receiving.delete(reply.id);
  conv.updatedAt = Date.now();
  saveConversations();
  if (reply.status === "done" && reply.kind === "ttt" && conv.titleSource === "first-message") void writeTitle(conv);
}

/** Read the reply's job events into it until the final one, resuming after drops (see jobs.ts). */
async function followReply(client: Client, reply: ChatMessage, signal: AbortSignal, timing: StreamTiming): Promise<void> {
  const cursor = reply.job!;
  await followJob(client, cursor, ({ chunk }) => applyChunk(reply, chunk, timing, cursor.streamed), signal);
}

/** Streamed generation without a job (a server that has no jobs endpoint). */
async function streamInto(client: Client, reply: ChatMessage, request: GenerateRequest, signal: AbortSignal, timing: StreamTiming): Promise<void> {
  for await (const chunk of client.generateStream(request, signal)) applyChunk(reply, chunk, timing, true);
}

/** Fold one StreamChunk into the reply on screen, noting when text arrives (for tokens/s). */
function applyChunk(reply: ChatMessage, chunk: StreamChunk, timing: StreamTiming, streamedText: boolean): void {
  if (chunk.type === "chunk" && streamedText) {
    timing.firstMs ??= performance.now();
    timing.lastMs = performance.now();
  } else if (chunk.type === "info" && chunk.metadata?.job_restarted) {
    timing.firstMs = timing.lastMs = undefined;
  }
  applyStreamChunk(reply, chunk, streamedText);
}

/** A finished job's outcome, read with GET /api/v1/jobs/{id} (the answer ended while the page was away). */
function applyJobResult(reply: ChatMessage, job: JobInfo): void {
  if (job.state === "succeeded" && job.result) {
    applyOutputs(reply, job.result.output, false); // the whole answer: replaces the text received so far
    if (typeof job.result.execution_time === "number") reply.durationS = Math.round(job.result.execution_time * 100) / 100;
    if (reply.status === "streaming") reply.status = "done";
  } else if (job.state === "cancelled") {
    reply.status = "stopped";
  } else {
    reply.status = "error";
    reply.error = job.error?.message || "The server could not finish this answer.";
  }
}

/** Pick up one unfinished answer after a reload: its result if the job ended, else its events from where they stopped. */
async function resumeReply(client: Client, conv: Conversation, reply: ChatMessage, signal: AbortSignal): Promise<void> {
  const cursor = reply.job!;
  receiving.add(reply.id);
  const timing: StreamTiming = {};
  try {
    let job: JobInfo | null = null;
    try {
      job = await client.getJob(cursor.id);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) throw new JobGoneError();
      if (!(err instanceof ApiError && err.status === 0)) throw err; // offline for now: the events follower retries
    }
    if (job && isFinished(job)) applyJobResult(reply, job);
    else await followReply(client, reply, signal, timing);
    if (reply.status === "streaming") reply.status = "done";
  } catch (err) {
    await failed(client, reply, err, signal);
  } finally {
    reply.durationS ??= Math.round((Date.now() - reply.createdAt) / 10) / 100;
    finish(conv, reply, timing);
  }
}

/**
 * After (re)connecting: every answer saved as still on its way (or cut off by a lost connection) is picked
 * up — resumed from its job, or, when it had none (a server without jobs), marked interrupted instead of
 * spinning forever.
 */
export async function resumeUnfinished(): Promise<void> {
  const client = catalog.client;
  if (!client || session.busy) return;
  const pending: [Conversation, ChatMessage][] = [];
  for (const conv of conversations) {
    for (const m of conv.messages) {
      const lostConnection = m.status === "interrupted" && Boolean(m.job?.id);
      if (m.role !== "assistant" || (m.status !== "streaming" && !lostConnection) || receiving.has(m.id)) continue;
      if (m.job?.id) {
        m.status = "streaming";
        m.error = undefined;
        pending.push([conv, m]);
      } else {
        m.status = "interrupted";
        m.error = PAGE_CLOSED_MESSAGE;
        m.info = undefined;
      }
    }
  }
  if (!pending.length) return saveConversations();
  const controller = new AbortController();
  session.controller = controller;
  session.busy = true;
  try {
    await Promise.all(pending.map(([conv, m]) => resumeReply(client, conv, m, controller.signal)));
  } finally {
    session.busy = false;
    session.controller = null;
  }
}

/** The document excerpts (with an embedding binding) or whole documents (when they fit) for a question. */
async function documentContext(docs: DocumentEntry[], question: string, inputs: InputData[], params?: Record<string, unknown>): Promise<DocumentContext> {
  const contextSize = capabilities("ttt").contextSize ?? 4096;
  const reserve = typeof params?.max_tokens === "number" ? params.max_tokens : Math.min(1024, Math.floor(contextSize / 4));
  const used = inputs.reduce((n, item) => n + estimateTokens(item.data) + 8, 0);
  const budget = Math.max(0, contextSize - reserve - used - 64);
  const embedder = embeddingInstance();
  if (embedder && catalog.client && docs.every((d) => d.chunks.every((c) => c.vector))) {
    try {
      const [vector] = await catalog.client.embed([question], embedder);
      return retrievedContext(docs, vector, budget);
    } catch {
      /* fall back to whole documents */
    }
  }
  return wholeContext(docs, budget);
}

/** Read files into the conversation's documents; with an embedding binding, chunk and embed them once. */
export async function addDocuments(files: File[]): Promise<string> {
  const conv = currentConversation() ?? newConversation();
  const problems: string[] = [];
  for (const file of files) {
    const entry: DocumentEntry = { id: newId(), name: file.name, chars: 0, text: "", chunks: [], status: "reading" };
    (conv.documents ??= []).push(entry);
    const doc = conv.documents[conv.documents.length - 1];
    try {
      const text = await readDocumentText(file);
      if (!text.trim()) throw new Error(`${file.name} has no text to read (a scanned PDF needs OCR first).`);
      if (text.length > MAX_DOCUMENT_CHARS) throw new Error(`${file.name} is too long (${Math.round(text.length / 1000)} k characters; at most ${MAX_DOCUMENT_CHARS / 1000} k).`);
      doc.text = text;
      doc.chars = text.length;
      doc.chunks = chunkText(text).map((t) => ({ text: t }));
      const embedder = embeddingInstance();
      if (embedder && catalog.client) {
        doc.status = "indexing";
        for (let i = 0; i < doc.chunks.length; i += 64) {
          const batch = doc.chunks.slice(i, i + 64);
          const vectors = await catalog.client.embed(batch.map((c) => c.text), embedder);
          batch.forEach((c, j) => (c.vector = vectors[j].map((v) => Math.round(v * 1e4) / 1e4)));
        }
        doc.embeddedWith = embedder;
      }
      doc.status = "ready";
    } catch (err) {
      doc.status = "error";
      doc.error = err instanceof ApiError ? err.message : err instanceof Error ? err.message : String(err);
      problems.push(doc.error);
    }
  }
  conv.updatedAt = Date.now();
  saveConversations();
  return problems.join(" ");
}

export function removeDocument(id: string): void {
  const conv = currentConversation();
  if (conv?.documents) conv.documents = conv.documents.filter((d) => d.id !== id);
}

/** Title requests running in the background, by conversation id (renaming or deleting cancels them). */
const titleJobs = new Map<string, AbortController>();
/** Conversations whose title is being written (reactive, for the sidebar). */
export const titleState = reactive({ pending: [] as string[] });

export function cancelTitle(conversationId: string): void {
  titleJobs.get(conversationId)?.abort();
  titleJobs.delete(conversationId);
  titleState.pending = [...titleJobs.keys()];
}

const TITLE_INSTRUCTION = "Write a short title (at most six words) for a conversation that starts with the user's message. "
  + "Answer with the title only: no quotes, no Markdown, no final period.";

/** Ask the chat model for a short title of the conversation, in the background. */
async function writeTitle(conv: Conversation): Promise<void> {
  const client = catalog.client;
  const first = conv.messages.find((m) => m.role === "user");
  if (!client || !first || titleJobs.has(conv.id)) return;
  const chat = conv.settings ?? active();
  const chosen = chat.bindings.ttt;
  const instance = chosen && chosen in catalog.active ? chosen : effectiveInstance("ttt");
  const controller = new AbortController();
  titleJobs.set(conv.id, controller);
  titleState.pending = [...titleJobs.keys()];
  conv.titleSource = "model";
  try {
    const response = await client.generate({
      input_data: [
        { type: "text", role: "system_context", data: TITLE_INSTRUCTION },
        { type: "text", role: "user_prompt", data: first.content.slice(0, 2000) },
      ],
      generation_type: "ttt", stream: false, personality: null,
      binding_name: chosen && chosen in catalog.active ? chosen : instanceToSend("ttt"),
      model_name: (instance && chat.models[instance]) || null,
      parameters: { max_tokens: 24 },
    }, controller.signal);
    const text = response.output.find((o) => o.type === "text" && typeof o.data === "string")?.data as string | undefined;
    if (text && conv.titleSource === "model" && !controller.signal.aborted) {
      const words = plainWords(text).split(" ").slice(0, 8).join(" ");
      if (words) conv.title = titleFrom(words);
    }
  } catch {
    /* the first-message title stays */
  } finally {
    if (titleJobs.get(conv.id) === controller) titleJobs.delete(conv.id);
    titleState.pending = [...titleJobs.keys()];
  }
}


/** Replies whose spoken audio plays as soon as it arrives (voice mode). */
export const autoplay = reactive(new Set<string>());

/** Voice mode: send what was said as a chat message, then speak the answer back. */
export async function sendSpoken(text: string): Promise<string> {
  await sendPrompt("ttt", text, []);
  const conv = currentConversation();
  const reply = conv ? activePath(conv).at(-1) : undefined;
  if (!reply || reply.role !== "assistant" || reply.status !== "done" || !reply.content) return reply?.error ?? "";
  autoplay.add(reply.id);
  return speakMessage(reply);
}

/** Speak a reply's text: a tts request whose audio is attached to the message. */
export async function speakMessage(message: ChatMessage): Promise<string> {
  const client = catalog.client;
  if (!client) return "Not connected.";
  try {
    const request = requestFor("tts", [{ type: "text", role: "user_prompt", data: message.content }]);
    const response = await client.generate(request);
    const audio = response.output.find((o) => o.type === "audio" && typeof o.data === "string");
    if (!audio) return humanError(response.output.find((o) => o.type === "error")?.data as string ?? "No audio came back.", "tts");
    message.media = [...(message.media ?? []).filter((m) => m.type !== "audio"),
      { type: "audio", mime_type: audio.mime_type || "audio/wav", data: audio.data as string }];
    return "";
  } catch (err) {
    return humanError(err instanceof ApiError ? err.message : String(err), "tts");
  }
}
