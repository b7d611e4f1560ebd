// Documents in a conversation: text, Markdown and PDF files read in the browser. With an embedding binding
// (defaults.embedding_binding) they are cut into chunks, embedded once, and the chunks nearest to each question
// go into the context with their sources; without one, whole documents go in when they fit the model's
// context, and the UI says when they do not.
import type { InputData } from "./types";

export interface DocChunk {
  text: string;
  vector?: number[];
}

export interface DocumentEntry {
  id: string;
  name: string;
  chars: number;
  text: string;
  chunks: DocChunk[];
  status: "reading" | "indexing" | "ready" | "error";
  error?: string;
  embeddedWith?: string; // embedding binding the vectors came from
}

export interface Source {
  n: number;
  name: string;
  part: number;
  excerpt: string;
}

export interface DocumentContext {
  items: InputData[];
  sources: Source[];
  note: string; // said to the user when documents did not fit
}

export const MAX_DOCUMENT_CHARS = 2_000_000;
export const DOCUMENT_ACCEPT = ".txt,.md,.markdown,.csv,.json,.yaml,.yml,.py,.js,.ts,.html,.xml,.log,.pdf,text/*,application/pdf";
const CHUNK_CHARS = 900;
const CHUNK_OVERLAP = 120;
const TOP_K = 4;

export function isDocument(file: File): boolean {
  if (file.type.startsWith("image/") || file.type.startsWith("audio/")) return false;
  return file.type.startsWith("text/") || file.type === "application/pdf" || file.type === "application/json"
    || /\.(txt|md|markdown|csv|json|ya?ml|py|js|ts|html|xml|log|pdf)$/i.test(file.name);
}

/** The text of a file: read directly, or extracted from a PDF with pdf.js (loaded on first use). */
export async function readDocumentText(file: File): Promise<string> {
  if (file.type === "application/pdf" || /\.pdf$/i.test(file.name)) {
    const { pdfText } = await import("./pdfText");
    return pdfText(new Uint8Array(await file.arrayBuffer()));
  }
  return file.text();
}

/** Chunks of about CHUNK_CHARS characters, cut at paragraph or sentence ends where possible, overlapping a little. */
export function chunkText(text: string): string[] {
  const clean = text.replace(/\r\n?/g, "\n").replace(/\n{3,}/g, "\n\n").trim();
  const chunks: string[] = [];
  let start = 0;
  while (start < clean.length) {
    let end = Math.min(clean.length, start + CHUNK_CHARS);
    if (end < clean.length) {
      const window = clean.slice(start + CHUNK_CHARS / 2, end);
      const cut = Math.max(window.lastIndexOf("\n\n"), window.lastIndexOf(". "), window.lastIndexOf("\n"));
      if (cut > 0) end = start + CHUNK_CHARS / 2 + cut + 1;
    }
    const piece = clean.slice(start, end).trim();
    if (piece) chunks.push(piece);
    if (end >= clean.length) break;
    start = Math.max(end - CHUNK_OVERLAP, start + 1);
    const space = clean.indexOf(" ", start);
    if (space > 0 && space - start < 40) start = space + 1; // begin on a word
  }
  return chunks;
}

export function cosine(a: number[], b: number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na && nb ? dot / Math.sqrt(na * nb) : 0;
}

/** Rough token count (≈4 characters per token for English text). */
export const estimateTokens = (text: string): number => Math.ceil(text.length / 4);

const INSTRUCTION = "The user attached documents. Use the excerpts below when they help, and cite them as [n].";

/** The nearest chunks to a question, as one system_context item, and the sources they came from. */
export function retrievedContext(docs: DocumentEntry[], question: number[], budgetTokens: number): DocumentContext {
  const scored: { doc: DocumentEntry; part: number; text: string; score: number }[] = [];
  for (const doc of docs) {
    doc.chunks.forEach((c, part) => {
      if (c.vector) scored.push({ doc, part, text: c.text, score: cosine(question, c.vector) });
    });
  }
  scored.sort((a, b) => b.score - a.score);
  const sources: Source[] = [];
  const blocks: string[] = [];
  let used = estimateTokens(INSTRUCTION);
  for (const hit of scored.slice(0, TOP_K)) {
    const cost = estimateTokens(hit.text) + 12;
    if (used + cost > budgetTokens) break;
    used += cost;
    const n = sources.length + 1;
    sources.push({ n, name: hit.doc.name, part: hit.part + 1, excerpt: hit.text.slice(0, 240) });
    blocks.push(`[${n}] ${hit.doc.name}, part ${hit.part + 1}:\n${hit.text}`);
  }
  const note = scored.length && !sources.length ? "The document excerpts do not fit in this model's context: none were sent." : "";
  return { items: sources.length ? [{ type: "text", role: "system_context", data: `${INSTRUCTION}\n\n${blocks.join("\n\n")}` }] : [], sources, note };
}

/** Whole documents when they fit the budget; otherwise as much as fits, and a note saying so. */
export function wholeContext(docs: DocumentEntry[], budgetTokens: number): DocumentContext {
  const blocks: string[] = [];
  const sources: Source[] = [];
  const cut: string[] = [];
  let used = estimateTokens(INSTRUCTION);
  for (const doc of docs) {
    const need = estimateTokens(doc.text) + 12;
    const room = budgetTokens - used;
    if (room <= 50) {
      cut.push(`${doc.name} (not sent)`);
      continue;
    }
    const text = need <= room ? doc.text : doc.text.slice(0, (room - 12) * 4);
    if (need > room) cut.push(`${doc.name} (only the first ${Math.round((text.length / doc.text.length) * 100)} % sent)`);
    used += estimateTokens(text) + 12;
    sources.push({ n: sources.length + 1, name: doc.name, part: 1, excerpt: text.slice(0, 240) });
    blocks.push(`[${sources.length}] ${doc.name}:\n${text}`);
  }
  const note = cut.length
    ? `The documents do not fit in this model's context (about ${budgetTokens} tokens left for them): ${cut.join(", ")}. `
      + "An embedding binding (defaults.embedding_binding) lets the server search large documents instead."
    : "";
  return { items: blocks.length ? [{ type: "text", role: "system_context", data: `${INSTRUCTION}\n\n${blocks.join("\n\n")}` }] : [], sources, note };
}
