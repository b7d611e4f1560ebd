// Loaded on first use (a separate chunk): KaTeX with its stylesheet and fonts, bundled with the UI (no CDN).
import katex from "katex";
import "katex/dist/katex.min.css";

/** KaTeX's HTML with its style attributes renamed data-style: they are applied through the CSSOM later, so
 * even parsing the HTML never meets an inline style a strict CSP would report. */
export function renderTex(tex: string, display: boolean): string {
  const html = katex.renderToString(tex, { displayMode: display, throwOnError: false, output: "htmlAndMathml", strict: "ignore", maxSize: 50, maxExpand: 500 });
  return html.replace(/ style="/g, ' data-style="');
}
