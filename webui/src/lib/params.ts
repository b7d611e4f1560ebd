// Generation parameters the UI offers: the server's per-binding declarations (list_bindings:
// `binding_types[t].parameters`, or an instance's own `parameters` when its defaults differ), with real defaults.
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
