import { describe, expect, it } from "vitest";
import { paramsFor } from "./params";

describe("paramsFor", () => {
  it("uses a card's declared parameters first", () => {
    const declared = { strength: { type: "float" as const, default: 0.5, min: 0, max: 1 } };
    expect(Object.keys(paramsFor("llamacpp_binding", "ttt", declared))).toEqual(["strength"]);
  });
  it("knows what the zoo bindings accept per mode", () => {
    expect(Object.keys(paramsFor("llamacpp_binding", "ttt"))).toContain("min_p");
    expect(Object.keys(paramsFor("diffusers_binding", "tti"))).toContain("num_inference_steps");
    expect(paramsFor("whisper_stt_binding", "stt")).toEqual({});
    expect(paramsFor("llamacpp_binding", "tti")).toEqual({});
  });
  it("falls back to the usual parameters for unknown types", () => {
    expect(Object.keys(paramsFor("someone_elses_binding", "ttt"))).toEqual(
      ["temperature", "max_tokens", "top_p", "top_k", "repeat_penalty", "seed"]);
    expect(paramsFor(undefined, "tts")).toEqual({});
  });
});
