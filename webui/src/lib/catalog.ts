// What the connected server offers (bindings, models, personalities), loaded after connecting.
import { reactive } from "vue";
import { LollmsClient } from "./api";
import type { BindingsListing, GenerationType, Health, ModelInfo, ParamSpec, Personality } from "./types";
import { settings } from "./store";

export interface Catalog {
  client: LollmsClient | null;
  health: Health | null;
  bindings: BindingsListing | null;
  active: Record<string, Record<string, unknown>>;
  defaults: Record<string, unknown>;
  personalities: Record<string, Personality>;
  icons: Record<string, string | null>;
  models: Record<string, ModelInfo[]>;
  error: string;
}

export const catalog = reactive<Catalog>({
  client: null, health: null, bindings: null, active: {}, defaults: {}, personalities: {}, icons: {}, models: {}, error: "",
});

export const MODE_LABELS: Record<GenerationType, string> = { ttt: "Chat", tti: "Image", tts: "Speech", stt: "Transcribe" };

/** Connect with the saved URL and key; throws ApiError (clear message) when refused. */
export async function connect(serverUrl: string, apiKey: string): Promise<void> {
  const client = new LollmsClient(serverUrl, apiKey);
  const health = await client.verify();
  catalog.client = client;
  catalog.health = health;
  settings.serverUrl = serverUrl;
  settings.apiKey = apiKey;
  await refreshCatalog();
}

export function disconnect(): void {
  for (const url of Object.values(catalog.icons)) if (url) URL.revokeObjectURL(url);
  Object.assign(catalog, { client: null, health: null, bindings: null, active: {}, defaults: {}, personalities: {}, icons: {}, models: {} });
}

export async function refreshCatalog(): Promise<void> {
  const client = catalog.client;
  if (!client) return;
  const [bindings, active, defaults, personalities] = await Promise.all([
    client.listBindings(), client.listActiveBindings(), client.defaultBindings(), client.listPersonalities(),
  ]);
  Object.assign(catalog, { bindings, active, defaults, personalities: personalities.personalities, error: "" });
  for (const name of Object.keys(personalities.personalities)) {
    if (!(name in catalog.icons)) {
      catalog.icons[name] = null;
      void client.personalityIcon(name).then((url) => (catalog.icons[name] = url));
    }
  }
}

export async function loadModels(instance: string): Promise<ModelInfo[]> {
  if (!catalog.client || !instance) return [];
  if (!catalog.models[instance]) {
    try {
      catalog.models[instance] = await catalog.client.listAvailableModels(instance);
    } catch {
      catalog.models[instance] = [];
    }
  }
  return catalog.models[instance];
}

/** The binding instance's type card, if known. */
export function typeOf(instance: string): string | undefined {
  const cfg = catalog.active[instance] ?? catalog.bindings?.binding_instances[instance];
  return typeof cfg?.type === "string" ? cfg.type : undefined;
}

/** Active instances able to serve a generation type (from their type card's generation_types). */
export function instancesFor(kind: GenerationType): string[] {
  return Object.keys(catalog.active).filter((name) => {
    const card = catalog.bindings?.binding_types[typeOf(name) ?? ""];
    const types = card?.generation_types;
    return !types || types.length === 0 || types.includes(kind);
  });
}

/** The instance a request of this kind will use: the user's choice, else the server's default. */
export function effectiveInstance(kind: GenerationType): string {
  const chosen = settings.bindings[kind];
  if (chosen && chosen in catalog.active) return chosen;
  const fallback = catalog.defaults[`${kind}_binding`];
  return typeof fallback === "string" ? fallback : "";
}

const TEXT_PARAMS: Record<string, ParamSpec> = {
  temperature: { type: "float", default: 0.7, min: 0, max: 2, step: 0.05, help: "Randomness: 0 is deterministic." },
  max_tokens: { type: "int", default: 512, min: 1, max: 32768, step: 1, help: "Longest reply, in tokens." },
  top_p: { type: "float", default: 0.95, min: 0, max: 1, step: 0.01, help: "Nucleus sampling: keep the most likely tokens up to this mass." },
  top_k: { type: "int", default: 40, min: 0, max: 200, step: 1, help: "Sample among the k most likely tokens (0: all)." },
  repeat_penalty: { type: "float", default: 1.1, min: 0.5, max: 2, step: 0.01, help: "Discourage repeating tokens (1: off)." },
  seed: { type: "int", default: -1, min: -1, max: 2147483647, step: 1, help: "Random seed (-1: random)." },
};
const IMAGE_PARAMS: Record<string, ParamSpec> = {
  width: { type: "int", default: 512, min: 64, max: 2048, step: 64, help: "Image width in pixels." },
  height: { type: "int", default: 512, min: 64, max: 2048, step: 64, help: "Image height in pixels." },
  seed: { type: "int", default: -1, min: -1, max: 2147483647, step: 1, help: "Random seed (-1: random)." },
};

/** Parameters an instance accepts: its card's generation_parameters when declared, else the usual ones. */
export function paramSpecs(instance: string, kind: GenerationType): Record<string, ParamSpec> {
  const declared = catalog.bindings?.binding_types[typeOf(instance) ?? ""]?.generation_parameters;
  if (declared && Object.keys(declared).length) return declared;
  if (kind === "ttt") return TEXT_PARAMS;
  if (kind === "tti") return IMAGE_PARAMS;
  return {};
}

/** The parameters to send: only the values the user changed (the server applies its own defaults). */
export function requestParams(instance: string, kind: GenerationType): Record<string, number> {
  const specs = paramSpecs(instance, kind);
  const chosen = settings.params[`${instance || "default"}:${kind}`] ?? {};
  const out: Record<string, number> = {};
  for (const name of Object.keys(specs)) {
    const value = chosen[name];
    if (value === null || value === undefined || Number.isNaN(value)) continue;
    if (name === "seed" && value < 0) continue;
    out[name] = value;
  }
  return out;
}
