// Markdown to safe HTML: markdown-it, highlight.js core with a few languages, TeX math typeset by KaTeX (loaded
// on first use), sanitized by DOMPurify. Inline style attributes (KaTeX uses them) are kept as data-style and
// applied through the CSSOM by applyStyles(), so the UI works under a CSP without 'unsafe-inline' styles.
import MarkdownIt from "markdown-it";
import { reactive } from "vue";
import { mathPlugin, type TexRenderer } from "./mathPlugin";
import hljs from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import python from "highlight.js/lib/languages/python";
import typescript from "highlight.js/lib/languages/typescript";
import xml from "highlight.js/lib/languages/xml";
import css from "highlight.js/lib/languages/css";
import cpp from "highlight.js/lib/languages/cpp";
import yaml from "highlight.js/lib/languages/yaml";
import sql from "highlight.js/lib/languages/sql";
import DOMPurify from "dompurify";

const languages = { bash, javascript, json, python, typescript, xml, css, cpp, yaml, sql };
for (const [name, lang] of Object.entries(languages)) hljs.registerLanguage(name, lang);
hljs.registerAliases(["sh", "shell", "console"], { languageName: "bash" });
hljs.registerAliases(["js"], { languageName: "javascript" });
hljs.registerAliases(["ts"], { languageName: "typescript" });
hljs.registerAliases(["py"], { languageName: "python" });
hljs.registerAliases(["html", "vue"], { languageName: "xml" });
hljs.registerAliases(["c", "c++"], { languageName: "cpp" });

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string);
}

const md = new MarkdownIt({
  html: false,
  linkify: true,
  breaks: true,
  highlight(code: string, lang: string): string {
    const known = lang && hljs.getLanguage(lang);
    const body = known ? hljs.highlight(code, { language: lang, ignoreIllegals: true }).value : escapeHtml(code);
    const label = escapeHtml(lang || "text");
    return `<pre class="code-block"><div class="code-head"><span>${label}</span><button type="button" class="copy-code" data-copy-code>Copy</button></div><code class="hljs">${body}</code></pre>`;
  },
});

/** Bumped when KaTeX has loaded, so rendered messages typeset their math. */
export const mathState = reactive({ ready: false, failed: false });
let texRenderer: TexRenderer | null = null;
let loading = false;

function texOrLoad(): TexRenderer | null {
  if (texRenderer || loading) return texRenderer;
  loading = true;
  import("./katexRender").then((m) => {
    texRenderer = m.renderTex;
    mathState.ready = true;
  }).catch(() => {
    mathState.failed = true;
  });
  return null;
}
mathPlugin(md, texOrLoad, escapeHtml);

// Links open in a new tab without giving it access to this page; style attributes become data-style.
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
  const style = node.getAttribute?.("style");
  if (style !== null && style !== undefined) {
    node.removeAttribute("style");
    node.setAttribute("data-style", style);
  }
});

export function renderMarkdown(text: string): string {
  void mathState.ready; // re-render once KaTeX is there
  return DOMPurify.sanitize(md.render(text), { ADD_ATTR: ["target", "data-copy-code", "data-style"] });
}

/** Give rendered elements their styles through the CSSOM (allowed by a strict CSP, unlike style attributes). */
export function applyStyles(root: HTMLElement | null): void {
  if (!root) return;
  for (const el of root.querySelectorAll<HTMLElement>("[data-style]")) el.style.cssText = el.dataset.style ?? "";
}
