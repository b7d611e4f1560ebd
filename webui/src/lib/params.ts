// Generation parameters the UI offers, per binding type and mode. The server's per-binding declarations
// (`binding_types[t].parameters` in list_bindings, with the real defaults) come first; the tables below
// are only for servers that do not declare them yet.
import type { GenerationType, ParamDeclaration, ParamSpec } from "./types";

/** The fields for one mode from a binding's declarations (array/object parameters have no simple field). */
export function specsFromDeclarations(declared: ParamDeclaration[], kind: GenerationType): Record<string, ParamSpec> {
  const out: Record<string, ParamSpec> = {};
  for (const d of declared) {
    if (!d || typeof d.name !== "string") continue;
    if (d.generation_types?.length && !d.generation_types.includes(kind)) continue;
    const base = { help: d.help ?? undefined, min: d.minimum ?? undefined, max: d.maximum ?? undefined };
    const choices = Array.isArray(d.choices) ? d.choices.filter((c): c is string | number => typeof c === "string" || typeof c === "number") : undefined;
    const def = d.default === undefined ? null : d.default;
    if (d.type === "integer" || d.type === "number") {
      out[d.name] = { ...base, type: d.type === "integer" ? "int" : "float", default: typeof def === "number" ? def : null,
        step: d.type === "integer" ? 1 : stepFor(d.minimum, d.maximum), choices };
    } else if (d.type === "boolean") {
      out[d.name] = { ...base, type: "bool", default: typeof def === "boolean" ? def : null };
    } else if (d.type === "string") {
      out[d.name] = { ...base, type: "string", default: typeof def === "string" ? def : null, choices };
    }
  }
  return out;
}

function stepFor(min: number | null | undefined, max: number | null | undefined): number {
  if (typeof min === "number" && typeof max === "number" && max - min > 20) return 1;
  return 0.01;
}

const p = (type: ParamSpec["type"], def: number, min: number, max: number, step: number, help: string): ParamSpec =>
  ({ type, default: def, min, max, step, help });

const temperature = p("float", 0.7, 0, 2, 0.05, "Randomness: 0 is deterministic.");
const maxTokens = p("int", 1024, 1, 32768, 1, "Longest reply, in tokens.");
const topP = p("float", 0.95, 0, 1, 0.01, "Nucleus sampling: keep the most likely tokens up to this mass.");
const topK = p("int", 40, 0, 200, 1, "Sample among the k most likely tokens (0: all).");
const minP = p("float", 0.05, 0, 1, 0.01, "Drop tokens less likely than this fraction of the best one.");
const repeatPenalty = p("float", 1.0, 0.5, 2, 0.01, "Discourage repeating tokens (1: off).");
const seed = p("int", -1, -1, 2147483647, 1, "Random seed (-1: random).");
const width = p("int", 512, 64, 2048, 64, "Image width in pixels.");
const height = p("int", 512, 64, 2048, 64, "Image height in pixels.");

export const GENERIC_PARAMS: Partial<Record<GenerationType, Record<string, ParamSpec>>> = {
  ttt: { temperature, max_tokens: maxTokens, top_p: topP, top_k: topK, repeat_penalty: repeatPenalty, seed },
  tti: { width, height, seed },
};

export const TYPE_PARAMS: Record<string, Partial<Record<GenerationType, Record<string, ParamSpec>>>> = {
  llamacpp_binding: {
    ttt: { temperature, max_tokens: maxTokens, top_p: topP, top_k: topK, min_p: minP, repeat_penalty: repeatPenalty, seed },
  },
  ollama_binding: { ttt: { temperature, max_tokens: maxTokens, top_p: topP, top_k: topK, repeat_penalty: repeatPenalty, seed } },
  openai_binding: {
    ttt: { temperature, max_tokens: maxTokens, top_p: topP, seed },
    tti: { width: p("int", 1024, 256, 1792, 256, "Image width in pixels."), height: p("int", 1024, 256, 1792, 256, "Image height in pixels.") },
    tts: { speed: p("float", 1, 0.25, 4, 0.05, "Speaking speed (1: normal).") },
  },
  dummy_binding: {
    ttt: { max_tokens: p("int", 512, 1, 4096, 1, "Longest reply, in words (the dummy echoes the prompt).") },
    tti: { width: p("int", 64, 1, 2048, 1, "Image width in pixels."), height: p("int", 64, 1, 2048, 1, "Image height in pixels.") },
  },
  diffusers_binding: {
    tti: {
      width, height,
      num_inference_steps: p("int", 25, 1, 150, 1, "Denoising steps: more is slower and finer."),
      guidance_scale: p("float", 7.5, 0, 20, 0.5, "How closely to follow the prompt."),
      seed,
    },
  },
  piper_tts_binding: { tts: { speed: p("float", 1, 0.2, 3, 0.05, "Speaking speed (1: normal).") } },
  whisper_stt_binding: { stt: {} },
};

export function paramsFor(typeName: string | undefined, kind: GenerationType, declared?: Record<string, ParamSpec>,
  declarations?: ParamDeclaration[]): Record<string, ParamSpec> {
  if (Array.isArray(declarations)) return specsFromDeclarations(declarations, kind);
  if (declared && Object.keys(declared).length) return declared;
  const known = typeName ? TYPE_PARAMS[typeName] : undefined;
  if (known) return known[kind] ?? {};
  return GENERIC_PARAMS[kind] ?? {};
}
