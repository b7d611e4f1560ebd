// A markdown-it plugin for TeX math: $…$ and \(…\) inline, $$…$$ and \[…\] as blocks. The actual typesetting is
// a function given by the caller (KaTeX, loaded lazily); until it is there, the TeX source is shown as is.
import MarkdownIt from "markdown-it";
import type { StateBlock, StateInline } from "markdown-it";

export type TexRenderer = (tex: string, display: boolean) => string;

function inlineMath(state: StateInline, silent: boolean): boolean {
  const src = state.src;
  const start = state.pos;
  let open: string;
  let close: string;
  if (src.startsWith("\\(", start)) [open, close] = ["\\(", "\\)"];
  else if (src[start] === "$" && src[start + 1] !== "$") [open, close] = ["$", "$"];
  else return false;
  const from = start + open.length;
  if (open === "$" && (/\s/.test(src[from] ?? " "))) return false; // "$ 5" is money, not math
  let end = src.indexOf(close, from);
  while (end > 0 && src[end - 1] === "\\") end = src.indexOf(close, end + 1);
  if (end < 0 || end === from) return false;
  if (open === "$" && (/\s/.test(src[end - 1]) || /\d/.test(src[end + 1] ?? ""))) return false;
  if (!silent) {
    const token = state.push("math_inline", "math", 0);
    token.content = src.slice(from, end);
    token.markup = open;
  }
  state.pos = end + close.length;
  return true;
}

function blockMath(state: StateBlock, startLine: number, endLine: number, silent: boolean): boolean {
  const lineStart = state.bMarks[startLine] + state.tShift[startLine];
  const first = state.src.slice(lineStart, state.eMarks[startLine]);
  const pair = first.startsWith("$$") ? ["$$", "$$"] : first.startsWith("\\[") ? ["\\[", "\\]"] : null;
  if (!pair || state.sCount[startLine] - state.blkIndent >= 4) return false;
  const [open, close] = pair;
  let body = first.slice(open.length);
  let line = startLine;
  let found = false;
  if (body.trimEnd().endsWith(close)) {
    body = body.trimEnd().slice(0, -close.length);
    found = true;
  }
  while (!found && ++line < endLine) {
    const text = state.src.slice(state.bMarks[line] + state.tShift[line], state.eMarks[line]);
    if (text.trimEnd().endsWith(close)) {
      body += "\n" + text.trimEnd().slice(0, -close.length);
      found = true;
    } else body += "\n" + text;
  }
  if (!found) return false;
  if (silent) return true;
  const token = state.push("math_block", "math", 0);
  token.block = true;
  token.content = body.trim();
  token.markup = open;
  token.map = [startLine, line + 1];
  state.line = line + 1;
  return true;
}

export function mathPlugin(md: InstanceType<typeof MarkdownIt>, render: () => TexRenderer | null, escape: (s: string) => string): void {
  md.inline.ruler.after("escape", "math_inline", inlineMath);
  md.block.ruler.before("fence", "math_block", blockMath, { alt: ["paragraph", "reference", "blockquote", "list"] });
  const pending = (tex: string, open: string, display: boolean): string => {
    const close = open === "$" || open === "$$" ? open : open === "\\(" ? "\\)" : "\\]";
    return `<span class="math-pending${display ? " block" : ""}">${escape(open + tex + close)}</span>`;
  };
  md.renderer.rules.math_inline = (tokens, i) => {
    const tex = render();
    return tex ? tex(tokens[i].content, false) : pending(tokens[i].content, tokens[i].markup, false);
  };
  md.renderer.rules.math_block = (tokens, i) => {
    const tex = render();
    return tex ? `<div class="math-block">${tex(tokens[i].content, true)}</div>\n` : `<div class="math-block">${pending(tokens[i].content, tokens[i].markup, true)}</div>\n`;
  };
}
