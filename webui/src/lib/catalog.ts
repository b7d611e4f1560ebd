// What the connected server offers (bindings, models, personalities), loaded after connecting, and what the
// binding and model a conversation uses can accept.
import { reactive } from "vue";
import { LollmsClient } from "./api";
import { active } from "./active";
import type {
  BindingsListing, GenerationType, Health, ModelDetails, ModelInfo, ParamDeclaration, ParamSpec, ParamValue, Personality,
} from "./types";
import { specsFromDeclarations } from "./params";
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
  details: Record<string, ModelDetails | null>; // "instance:model" -> get_model_info (null: unknown)
  functions: string[]; // server-side functions a chat may offer the model
  error: string;
}

export const catalog = reactive<Catalog>({
  client: null, health: null, bindings: null, active: {}, defaults: {}, personalities: {}, icons: {}, models: {}, details: {}, functions: [], error: "",
});

export const MODE_LABELS: Record<GenerationType, string> = { ttt: "Chat", tti: "Image", tts: "Speech", stt: "Transcribe" };

/** Connect with the saved URL and key; throws ApiError (clear message) when refused. */
export async function connect(serverUrl: string, apiKey: string): Promise<void> {
  const client = new LollmsClient(serverUrl, apiKey);
  const health = await client.verify();
  await refreshCatalog(client); // the catalog is complete before the app shows itself connected
  catalog.client = client;
  catalog.health = health;
  settings.serverUrl = serverUrl;
  settings.apiKey = apiKey;
}

export function disconnect(): void {
  for (const url of Object.values(catalog.icons)) if (url) URL.revokeObjectURL(url);
  Object.assign(catalog, { client: null, health: null, bindings: null, active: {}, defaults: {}, personalities: {}, icons: {}, models: {}, details: {}, functions: [] });
}

export async function refreshCatalog(given?: LollmsClient): Promise<void> {
  const client = given ?? catalog.client;
  if (!client) return;
  const [bindings, activeBindings, defaults, personalities, functions] = await Promise.all([
    client.listBindings(), client.listActiveBindings(), client.defaultBindings(), client.listPersonalities(),
    client.listFunctions().catch(() => [] as string[]),
  ]);
  Object.assign(catalog, { bindings, active: activeBindings, defaults, personalities: personalities.personalities, functions, error: "" });
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

/** get_model_info for the model a request will use (cached); null when the server cannot say. */
export async function loadDetails(instance: string, model: string): Promise<ModelDetails | null> {
  const key = `${instance}:${model}`;
  if (!catalog.client || !instance) return null;
  if (!(key in catalog.details)) {
    catalog.details[key] = null;
    try {
      catalog.details[key] = await catalog.client.modelInfo(instance, model);
    } catch {
      catalog.details[key] = null;
    }
  }
  return catalog.details[key];
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

/** The server's default instance for a kind, else the first active instance able to serve it. */
export function serverChoice(kind: GenerationType): string {
  const fallback = catalog.defaults[`${kind}_binding`];
  if (typeof fallback === "string" && fallback && fallback in catalog.active) return fallback;
  return instancesFor(kind)[0] ?? "";
}

/** The instance a request of this kind will use: the conversation's choice, else the server's choice. */
export function effectiveInstance(kind: GenerationType): string {
  const chosen = active().bindings[kind];
  if (chosen && chosen in catalog.active) return chosen;
  return serverChoice(kind);
}

/** Whether the request must name the instance (the server has no default of its own for this kind). */
export function instanceToSend(kind: GenerationType): string | null {
  const chosen = active().bindings[kind];
  if (chosen && chosen in catalog.active) return chosen;
  const fallback = catalog.defaults[`${kind}_binding`];
  if (typeof fallback === "string" && fallback && fallback in catalog.active) return null;
  return serverChoice(kind) || null;
}

/** The model the conversation chose on an instance ("" = the instance's default). */
export function chosenModel(instance: string): string {
  return (instance && active().models[instance]) || "";
}

export interface Capabilities {
  images: boolean;
  audio: boolean;
  known: boolean; // false while the model's details are loading or unknown
  model: string;
  contextSize: number | null;
}

/** What the binding and model of this kind accept as inputs (card modalities and the model's own flags). */
export function capabilities(kind: GenerationType): Capabilities {
  const instance = effectiveInstance(kind);
  const model = chosenModel(instance);
  const card = catalog.bindings?.binding_types[typeOf(instance) ?? ""];
  const modalities = card?.supported_input_modalities ?? [];
  const listed = (catalog.models[instance] ?? []).find((m) => m.name === model);
  const details = catalog.details[`${instance}:${model}`] ?? null;
  const shownModel = model || details?.model_name || "";
  const vision = listed ? Boolean(listed.supports_vision) : Boolean(details?.supports_vision);
  const hears = listed ? Boolean(listed.supports_audio) : Boolean(details?.supports_audio);
  const contextSize = (listed?.context_size ?? details?.context_size) || null;
  const known = Boolean(listed || details);
  if (kind === "stt") return { images: false, audio: true, known: true, model: shownModel, contextSize };
  if (kind === "tts") return { images: false, audio: false, known: true, model: shownModel, contextSize };
  if (kind === "tti") {
    const i2i = card?.generation_types?.includes("i2i") ?? false;
    return { images: i2i && modalities.includes("image"), audio: false, known: true, model: shownModel, contextSize };
  }
  return { images: modalities.includes("image") && vision, audio: modalities.includes("audio") && hears, known, model: shownModel, contextSize };
}

/** Parameters an instance accepts for a mode, from the server's declarations (the instance's own defaults first). */
export function paramSpecs(instance: string, kind: GenerationType): Record<string, ParamSpec> {
  const own = catalog.bindings?.binding_instances[instance]?.parameters;
  const declared = Array.isArray(own) ? (own as ParamDeclaration[]) : catalog.bindings?.binding_types[typeOf(instance) ?? ""]?.parameters;
  return specsFromDeclarations(declared ?? [], kind);
}

export function paramKey(instance: string, kind: GenerationType): string {
  return `${instance || "default"}:${kind}`;
}

/** The parameters to send: only the values the user changed (the server applies its own defaults). */
export function requestParams(instance: string, kind: GenerationType): Record<string, ParamValue> {
  const specs = paramSpecs(instance, kind);
  const chosen = active().params[paramKey(instance, kind)] ?? {};
  const out: Record<string, ParamValue> = {};
  for (const name of Object.keys(specs)) {
    const value = chosen[name];
    if (value === null || value === undefined || value === "" || (typeof value === "number" && Number.isNaN(value))) continue;
    if (name === "seed" && typeof value === "number" && value < 0) continue;
    out[name] = value;
  }
  return out;
}

/** The server's default embedding instance when it is loaded (documents are then searched, not pasted). */
export function embeddingInstance(): string {
  const name = catalog.defaults.embedding_binding;
  return typeof name === "string" && name && name in catalog.active ? name : "";
}
