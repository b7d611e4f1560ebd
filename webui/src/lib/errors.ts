// Server error messages turned into sentences a person can act on (the original stays in brackets).
import type { GenerationType } from "./types";

const MODE_WORDS: Record<GenerationType, string> = { ttt: "chat", tti: "image", tts: "speech", stt: "transcription" };

export function humanError(message: string, kind: GenerationType): string {
  const text = message.replace(/\s*\(HTTP \d+\)$/, "");
  const modality = /does not accept (?:an? )?(image|audio|video|document)/.exec(text);
  if (modality) {
    const model = /with model '([^']+)'/.exec(text)?.[1];
    const what = { image: "images", audio: "audio", video: "video", document: "documents" }[modality[1]] ?? modality[1];
    return `${model ? `The model “${model}”` : "This model"} cannot read ${what}. Remove the attachment, or pick a model that accepts ${what} in the settings panel.`;
  }
  if (/no (default )?binding|no binding instance/i.test(text)) {
    return `No binding can serve ${MODE_WORDS[kind]} requests yet: pick one in the settings panel. (${text})`;
  }
  if (/mime_type '([^']+)' is not accepted/.test(text)) {
    return `This file type is not accepted here. ${text.replace(/^input_data\[\d+\]:\s*/, "")}`;
  }
  return text.replace(/^input_data\[\d+\]:\s*/, "");
}
