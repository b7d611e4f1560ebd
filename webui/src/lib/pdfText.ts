// Text of a PDF with pdf.js, loaded on first use; its worker is a file of this UI (no CDN, strict-CSP friendly).
import { getDocument, GlobalWorkerOptions } from "pdfjs-dist";
import workerUrl from "pdfjs-dist/build/pdf.worker.min.mjs?url";

GlobalWorkerOptions.workerSrc = workerUrl;
const MAX_PAGES = 500;

export async function pdfText(data: Uint8Array): Promise<string> {
  const pdf = await getDocument({ data, isEvalSupported: false, useSystemFonts: false, disableFontFace: true }).promise;
  try {
    const pages: string[] = [];
    for (let n = 1; n <= Math.min(pdf.numPages, MAX_PAGES); n++) {
      const content = await (await pdf.getPage(n)).getTextContent();
      pages.push(content.items.map((item) => ("str" in item ? item.str + (item.hasEOL ? "\n" : "") : "")).join(""));
    }
    return pages.join("\n\n");
  } finally {
    await pdf.destroy();
  }
}
