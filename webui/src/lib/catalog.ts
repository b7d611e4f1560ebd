// What the connected server offers (bindings, models, personalities), loaded after connecting.
import { reactive } from "vue";
import { LollmsClient } from "./api";
import type { BindingsListing, GenerationType, Health, ModelInfo, ParamSpec, Personality } from "./types";
import { paramsFor } from "./params";
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

/** Parameters an instance accepts for a mode (its card's generation_parameters, else the known tables). */
export function paramSpecs(instance: string, kind: GenerationType): Record<string, ParamSpec> {
  const typeName = typeOf(instance);
  return paramsFor(typeName, kind, catalog.bindings?.binding_types[typeName ?? ""]?.generation_parameters);
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
