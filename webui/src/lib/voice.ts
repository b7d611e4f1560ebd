// Microphone input: record with MediaRecorder (bounded length), transcribe with the stt binding, and the
// push-to-talk voice mode (speak, the transcript is sent, the answer is spoken back).
import { ApiError } from "./api";
import { catalog, effectiveInstance, instanceToSend, chosenModel } from "./catalog";
import type { Attachment } from "./conversation";
import { humanError } from "./errors";

const MAX_RECORDING_MS = 5 * 60 * 1000;

export function microphoneAvailable(): boolean {
  return typeof navigator !== "undefined" && Boolean(navigator.mediaDevices?.getUserMedia) && typeof MediaRecorder !== "undefined";
}

/** One recording: start() asks for the microphone, stop() gives the audio as an attachment. */
export class Recording {
  private recorder: MediaRecorder | null = null;
  private stream: MediaStream | null = null;
  private chunks: Blob[] = [];
  private timer: number | undefined;
  private done: Promise<Attachment> | null = null;

  async start(onLimit: () => void): Promise<void> {
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (err) {
      throw new Error(err instanceof DOMException && err.name === "NotAllowedError"
        ? "The browser did not allow the microphone: allow it for this site and try again."
        : "No microphone could be opened.");
    }
    const type = ["audio/webm;codecs=opus", "audio/webm", "audio/ogg;codecs=opus"].find((t) => MediaRecorder.isTypeSupported(t));
    this.recorder = new MediaRecorder(this.stream, type ? { mimeType: type } : undefined);
    this.recorder.ondataavailable = (e) => {
      if (e.data.size) this.chunks.push(e.data);
    };
    this.done = new Promise((resolve) => {
      this.recorder!.onstop = () => {
        const mime = (this.recorder?.mimeType || "audio/webm").split(";")[0];
        const blob = new Blob(this.chunks, { type: mime });
        void blob.arrayBuffer().then((buffer) => {
          resolve({ type: "audio", mime_type: mime, data: toBase64(new Uint8Array(buffer)), name: `recording.${mime.split("/")[1] || "webm"}` });
        });
      };
    });
    this.recorder.start(250);
    this.timer = window.setTimeout(onLimit, MAX_RECORDING_MS);
  }

  async stop(): Promise<Attachment> {
    window.clearTimeout(this.timer);
    if (this.recorder && this.recorder.state !== "inactive") this.recorder.stop();
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    if (!this.done) throw new Error("Nothing was recorded.");
    return this.done;
  }
}

function toBase64(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

/** The text of a recording, from the conversation's transcription binding. */
export async function transcribe(audio: Attachment): Promise<string> {
  const client = catalog.client;
  if (!client) throw new Error("Not connected.");
  const instance = effectiveInstance("stt");
  if (!instance) throw new Error("No binding can transcribe speech on this server.");
  try {
    const response = await client.generate({
      input_data: [{ type: "audio", role: "input_audio", data: audio.data, mime_type: audio.mime_type, metadata: { filename: audio.name } }],
      generation_type: "stt", stream: false, binding_name: instanceToSend("stt"), model_name: chosenModel(instance) || null,
    });
    const error = response.output.find((o) => o.type === "error");
    if (error) throw new Error(humanError(String(error.data), "stt"));
    const text = response.output.filter((o) => o.type === "text" && typeof o.data === "string").map((o) => o.data as string).join(" ").trim();
    if (!text) throw new Error("Nothing was heard in the recording.");
    return text;
  } catch (err) {
    throw err instanceof ApiError ? new Error(humanError(err.message, "stt")) : err;
  }
}
