// Conversations from JSON files: this UI's own export, ChatGPT's conversations.json and Open WebUI's chat
// export. Branches are kept (all three formats store a message tree). Unknown shapes give a clear error.
import { newId, type ChatMessage, type Conversation } from "./conversation";

export class ImportError extends Error {}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => Boolean(v) && typeof v === "object" && !Array.isArray(v);
const seconds = (v: unknown): number | undefined => (typeof v === "number" && v > 0 ? (v > 1e12 ? v : v * 1000) : undefined);

/** Every conversation found in a parsed JSON file (one conversation or a list). */
export function importConversations(data: unknown): Conversation[] {
  const items = Array.isArray(data) ? data : [data];
  const out: Conversation[] = [];
  for (const item of items) {
    if (!isObject(item)) continue;
    const conv = isObject(item.mapping) ? fromChatGpt(item)
      : isObject(item.chat) ? fromOpenWebUi(item)
      : Array.isArray(item.messages) ? fromOwn(item)
      : null;
    if (conv && conv.messages.length) out.push(conv);
  }
  if (!out.length) {
    throw new ImportError("No conversation found: the file is not an export of this UI, of ChatGPT (conversations.json) or of Open WebUI.");
  }
  return out;
}

function fromOwn(item: Json): Conversation {
  const messages = (item.messages as unknown[]).filter(isObject).filter((m) => m.role === "user" || m.role === "assistant")
    .map((m) => ({ ...m, id: typeof m.id === "string" ? m.id : newId(), content: typeof m.content === "string" ? m.content : "",
      kind: typeof m.kind === "string" ? m.kind : "ttt", createdAt: typeof m.createdAt === "number" ? m.createdAt : Date.now() }) as ChatMessage)
    .map(({ job: _job, ...m }) => (m.status === "streaming" ? { ...m, status: "stopped" as const } : m)); // a server job is not imported
  const now = Date.now();
  return {
    id: newId(), title: typeof item.title === "string" && item.title ? item.title : "Imported chat",
    createdAt: typeof item.createdAt === "number" ? item.createdAt : now, updatedAt: typeof item.updatedAt === "number" ? item.updatedAt : now,
    messages, leafId: typeof item.leafId === "string" ? item.leafId : undefined, titleSource: "user",
  };
}

interface TreeNode {
  id: string;
  parent: string | null;
  role: string;
  text: string;
  time?: number;
  model?: string;
}

/** Keep user and assistant messages with text; a dropped node's children hang from its nearest kept ancestor. */
function fromTree(nodes: TreeNode[], leaf: string | null | undefined, title: string, created?: number, updated?: number): Conversation {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const kept = new Map<string, string>(); // source id -> new id
  const keptParent = (id: string | null): string | null => {
    const seen = new Set<string>();
    let cursor = id;
    while (cursor && !seen.has(cursor)) {
      seen.add(cursor);
      if (kept.has(cursor)) return kept.get(cursor)!;
      cursor = byId.get(cursor)?.parent ?? null;
    }
    return null;
  };
  const messages: ChatMessage[] = [];
  for (const n of orderParentsFirst(nodes)) {
    if ((n.role !== "user" && n.role !== "assistant") || !n.text.trim()) continue;
    const id = newId() + messages.length;
    messages.push({
      id, role: n.role, kind: "ttt", content: n.text, createdAt: n.time ?? Date.now(), parentId: keptParent(n.parent),
      status: n.role === "assistant" ? "done" : undefined, model: n.model,
    });
    kept.set(n.id, id);
  }
  const now = Date.now();
  return {
    id: newId(), title: title || "Imported chat", createdAt: created ?? now, updatedAt: updated ?? now, messages,
    leafId: leaf ? keptParent(leaf) ?? undefined : undefined, titleSource: "user",
  };
}

function orderParentsFirst(nodes: TreeNode[]): TreeNode[] {
  const ids = new Set(nodes.map((n) => n.id));
  const children = new Map<string | null, TreeNode[]>();
  for (const n of nodes) {
    const parent = n.parent && ids.has(n.parent) ? n.parent : null;
    children.set(parent, [...(children.get(parent) ?? []), n]);
  }
  const out: TreeNode[] = [];
  const visit = (parent: string | null): void => {
    for (const n of (children.get(parent) ?? []).sort((a, b) => (a.time ?? 0) - (b.time ?? 0))) {
      if (out.length > 100_000) return;
      out.push(n);
      visit(n.id);
    }
  };
  visit(null);
  return out;
}

/** ChatGPT's conversations.json: `mapping` of nodes {message: {author: {role}, content: {parts}}, parent}. */
function fromChatGpt(item: Json): Conversation {
  const nodes: TreeNode[] = [];
  for (const [key, raw] of Object.entries(item.mapping as Json)) {
    if (!isObject(raw)) continue;
    const message = isObject(raw.message) ? raw.message : {};
    const author = isObject(message.author) ? message.author : {};
    const content = isObject(message.content) ? message.content : {};
    const parts = Array.isArray(content.parts) ? content.parts : typeof content.text === "string" ? [content.text] : [];
    const meta = isObject(message.metadata) ? message.metadata : {};
    nodes.push({
      id: typeof raw.id === "string" ? raw.id : key, parent: typeof raw.parent === "string" ? raw.parent : null,
      role: String(author.role ?? ""), text: parts.filter((p): p is string => typeof p === "string").join("\n"),
      time: seconds(message.create_time), model: typeof meta.model_slug === "string" ? meta.model_slug : undefined,
    });
  }
  return fromTree(nodes, typeof item.current_node === "string" ? item.current_node : null, String(item.title ?? ""),
    seconds(item.create_time), seconds(item.update_time));
}

/** Open WebUI's chat export: `chat.history.messages` keyed by id with parentId (else the flat `chat.messages`). */
function fromOpenWebUi(item: Json): Conversation {
  const chat = item.chat as Json;
  const history = isObject(chat.history) ? chat.history : {};
  const title = String(item.title ?? chat.title ?? "");
  if (isObject(history.messages) && Object.keys(history.messages).length) {
    const nodes: TreeNode[] = Object.entries(history.messages).filter(([, m]) => isObject(m)).map(([key, m]) => {
      const msg = m as Json;
      return {
        id: typeof msg.id === "string" ? msg.id : key, parent: typeof msg.parentId === "string" ? msg.parentId : null,
        role: String(msg.role ?? ""), text: typeof msg.content === "string" ? msg.content : "", time: seconds(msg.timestamp),
        model: typeof msg.model === "string" ? msg.model : undefined,
      };
    });
    return fromTree(nodes, typeof history.currentId === "string" ? history.currentId : null, title, seconds(item.created_at), seconds(item.updated_at));
  }
  const flat = Array.isArray(chat.messages) ? chat.messages.filter(isObject) : [];
  let previous: string | null = null;
  const nodes: TreeNode[] = flat.map((m, i) => {
    const node: TreeNode = { id: String(m.id ?? `m${i}`), parent: previous, role: String(m.role ?? ""), text: typeof m.content === "string" ? m.content : "", time: seconds(m.timestamp) };
    previous = node.id;
    return node;
  });
  return fromTree(nodes, previous, title, seconds(item.created_at), seconds(item.updated_at));
}
