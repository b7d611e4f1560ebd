import { describe, expect, it } from "vitest";
import { specsFromDeclarations } from "./params";

describe("specsFromDeclarations", () => {
  it("keeps only the parameters of the mode (none listed: every mode)", () => {
    const declared = [
      { name: "max_tokens", type: "integer" as const, default: null, minimum: 1, generation_types: ["ttt"] },
      { name: "width", type: "integer" as const, default: 64, generation_types: ["tti", "i2i"] },
      { name: "seed", type: "integer" as const, default: null },
    ];
    expect(Object.keys(specsFromDeclarations(declared, "ttt"))).toEqual(["max_tokens", "seed"]);
    expect(Object.keys(specsFromDeclarations(declared, "tti"))).toEqual(["width", "seed"]);
    expect(specsFromDeclarations(declared, "tti").width.default).toBe(64);
  });
  it("ignores malformed entries", () => {
    expect(specsFromDeclarations([{ type: "integer" } as never, null as never], "ttt")).toEqual({});
  });
});
